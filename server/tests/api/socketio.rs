//! Contracts 001, 002 and 004 driven by the real `socket.io-client` npm package: each test
//! starts a server and runs one file of Node tests (`server/tests/socketio/*.test.mjs`)
//! against it. `scripts/bootstrap.sh test` installs the packages from the committed lock file.

use std::path::PathBuf;

use crate::common::{spawn_app_with, TestApp, WsClient};
use confab_server::config::{Anonymous, TEST_API_KEY, TEST_JWT_SECRET};
use confab_shared::limits::MAX_FRAME_BYTES;

/// Longest a file of Node tests may run.
const NODE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

fn node_tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/socketio")
}

/// Runs `file` with `node --test` against `app`; fails with Node's report.
async fn run_node_tests(app: &TestApp, file: &str) {
    run_node_tests_with(app, file, &[]).await;
}

/// Like [`run_node_tests`], with more variables in the Node process's environment.
pub async fn run_node_tests_with(app: &TestApp, file: &str, env: &[(&str, String)]) {
    let dir = node_tests_dir();
    assert!(
        dir.join("node_modules/socket.io-client").is_dir(),
        "socket.io-client is not installed: run scripts/bootstrap.sh test"
    );
    let run = tokio::process::Command::new("node")
        .args(["--test", "--test-force-exit", "--test-reporter=spec", file])
        .current_dir(&dir)
        .env("CONFAB_URL", app.http_url(""))
        .env("CONFAB_JWT_SECRET", TEST_JWT_SECRET)
        .env("CONFAB_API_KEY", TEST_API_KEY)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(NODE_TIMEOUT, run)
        .await
        .expect("the Node tests finish in time")
        .expect("node runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{report}");
    assert!(output.status.success(), "{file} failed:\n{report}");
    assert!(
        report.contains("ℹ fail 0") && !report.contains("ℹ pass 0"),
        "{file} ran no passing tests:\n{report}"
    );
}

#[tokio::test]
async fn contract_004_discussion_rooms() {
    let app = spawn_app_with(|_| {}).await;
    run_node_tests(&app, "contract004.test.mjs").await;
    app.shutdown().await;
}

#[tokio::test]
async fn contract_001_chat_rooms_beside_004_and_ws_clients() {
    let app = spawn_app_with(|config| config.anonymous = Anonymous::Allow).await;
    run_node_tests(&app, "contract001.test.mjs").await;
    app.shutdown().await;
}

#[tokio::test]
async fn contract_002_studio_namespaces_and_publish_api() {
    let app = spawn_app_with(|config| config.anonymous = Anonymous::Allow).await;
    run_node_tests(&app, "contract002.test.mjs").await;
    app.shutdown().await;
}

/// On the multi-threaded runtime the server has in production: there, a socket's reads run
/// on one worker while its connect handler may still wait for another, which is the race
/// this guards against (a single-threaded runtime always runs the handler first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_sent_at_connect_are_answered_on_every_namespace_and_transport() {
    let app = spawn_app_with(|config| config.anonymous = Anonymous::Allow).await;
    run_node_tests(&app, "first_event.test.mjs").await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_socket_io_clients_recover_what_they_missed() {
    let app = spawn_app_with(|config| {
        config.socketio_recovery = true;
        // The bound test sends its 501 messages at once.
        config.message_rate = 1000.0;
        config.message_burst = 1000;
    })
    .await;
    run_node_tests(&app, "recovery.test.mjs").await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_first_joins_of_new_rooms_all_succeed() {
    let app = spawn_app_with(|_| {}).await;
    run_node_tests(&app, "first_joins.test.mjs").await;
    app.shutdown().await;
}

/// The next Engine.IO packet, skipping the server's pings (`2`, the first right after the
/// open packet); `None` once the connection has ended.
pub async fn next_text(ws: &mut WsClient) -> Option<String> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let frame = tokio::time::timeout(crate::common::WAIT, ws.stream.next())
            .await
            .expect("the server answers or closes in time");
        match frame {
            Some(Ok(Message::Text(text))) if text.as_str() != "2" => return Some(text.to_string()),
            Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
            Some(Ok(_)) => continue,
        }
    }
}

/// Engine.IO over WebSocket takes messages of at most 64 KiB, like every other door, and
/// before any token is seen: a message over it ends the connection at once, whatever its
/// size, instead of being buffered.
#[tokio::test]
async fn socket_io_websocket_messages_are_bounded_before_any_token() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let app = spawn_app_with(|_| {}).await;
    let url = app.ws_url("/socket.io/?EIO=4&transport=websocket");
    // A pong packet ("3") padded to exactly the limit is read, and the session carries on.
    let mut ws = WsClient::connect(&url).await;
    assert!(
        next_text(&mut ws).await.unwrap().starts_with("0{"),
        "the open packet"
    );
    ws.send_text(&format!("3{}", "x".repeat(MAX_FRAME_BYTES - 1)))
        .await;
    ws.send_text("40").await;
    let refused = next_text(&mut ws).await.expect("the session is still open");
    assert!(
        refused.starts_with("44") && refused.contains("Authentication required"),
        "{refused}"
    );
    for size in [MAX_FRAME_BYTES + 1, 1 << 20, 16 << 20] {
        let mut ws = WsClient::connect(&url).await;
        assert!(next_text(&mut ws).await.unwrap().starts_with("0{"));
        let oversized = Message::text(format!("3{}", "x".repeat(size - 1)));
        let _ = ws.stream.send(oversized).await;
        ws.stream.send(Message::text("40")).await.ok();
        assert_eq!(
            next_text(&mut ws).await,
            None,
            "{size} bytes: the connection ends"
        );
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_io_flood_is_disconnected_at_its_bound() {
    let app = spawn_app_with(|_| {}).await;
    run_node_tests(&app, "flood.test.mjs").await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_message_is_answered_after_the_broadcasts_before_it() {
    let app = spawn_app_with(|config| {
        config.message_burst = 5;
        config.message_rate = 0.001;
    })
    .await;
    run_node_tests(&app, "rate_limit_order.test.mjs").await;
    app.shutdown().await;
}
