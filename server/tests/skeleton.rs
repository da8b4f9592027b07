//! The server's skeleton: health, the site fallback, the first `/ws` exchange, frame limits
//! and graceful shutdown.

mod common;

use common::{spawn_app, spawn_app_with, WsClient};
use confab_shared::limits::MAX_FRAME_BYTES;
use serde_json::json;

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let response = reqwest::get(app.http_url("/healthz")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn without_a_built_site_the_root_explains_how_to_build_it() {
    let app = spawn_app().await;
    let response = reqwest::get(app.http_url("/")).await.unwrap();
    assert_eq!(response.status(), 404);
    let body = response.text().await.unwrap();
    assert!(body.contains("cargo leptos build --release"), "{body}");
    // ...and the sockets still work.
    let mut ws = app.ws().await;
    ws.send_json(json!({"type": "ping"})).await;
    assert_eq!(ws.recv_json().await["type"], "room:state");
}

#[tokio::test]
async fn a_built_site_is_served_with_the_shell_for_client_routes() {
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("shell.html"), "<title>shell</title>").unwrap();
    std::fs::create_dir(site.path().join("pkg")).unwrap();
    std::fs::write(site.path().join("pkg/app.js"), "export {}").unwrap();
    let app = spawn_app_with(|c| c.site_dir = site.path().to_owned()).await;

    let js = reqwest::get(app.http_url("/pkg/app.js")).await.unwrap();
    assert_eq!(js.status(), 200);
    assert_eq!(js.text().await.unwrap(), "export {}");
    for path in ["/", "/rooms/ABC234"] {
        let page = reqwest::get(app.http_url(path)).await.unwrap();
        assert_eq!(page.status(), 200, "{path}");
        assert_eq!(page.text().await.unwrap(), "<title>shell</title>", "{path}");
    }
}

#[tokio::test]
async fn an_unauthenticated_ping_gets_the_lobby_state() {
    let app = spawn_app().await;
    let mut ws = app.ws().await;
    ws.send_json(json!({"type": "ping"})).await;
    assert_eq!(
        ws.recv_json().await,
        json!({"type": "room:state", "room": {"state": "lobby"}})
    );
}

#[tokio::test]
async fn bad_frames_get_typed_errors_and_the_socket_carries_on() {
    let app = spawn_app().await;
    let mut ws = app.ws().await;
    for (frame, expected) in [
        ("{not json", "malformed JSON"),
        ("[]", "\"type\""),
        (
            r#"{"type":"room:explode"}"#,
            "unknown message type \"room:explode\"",
        ),
        (r#"{"type":"room:join"}"#, "missing field `code`"),
    ] {
        ws.send_text(frame).await;
        let reply = ws.recv_json().await;
        assert_eq!(reply["type"], "error", "{frame}");
        let text = reply["error"].as_str().unwrap();
        assert!(text.contains(expected), "{frame}: {text}");
    }
    ws.send_json(json!({"type": "ping"})).await;
    assert_eq!(ws.recv_json().await["type"], "room:state");
}

#[tokio::test]
async fn a_frame_at_the_limit_is_read_and_one_over_it_closes_with_1009() {
    let app = spawn_app().await;
    let mut ws = app.ws().await;
    // Exactly MAX_FRAME_BYTES of JSON: accepted (and refused for its content only).
    let padding = MAX_FRAME_BYTES - r#"{"type":"ping","pad":""}"#.len();
    let at_limit = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(padding));
    assert_eq!(at_limit.len(), MAX_FRAME_BYTES);
    ws.send_text(&at_limit).await;
    assert_eq!(ws.recv_json().await["type"], "room:state");

    let over = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(padding + 1));
    ws.send_text(&over).await;
    assert_eq!(ws.recv_close_code().await, 1009);

    // Nobody else is affected.
    let mut other = app.ws().await;
    other.send_json(json!({"type": "ping"})).await;
    assert_eq!(other.recv_json().await["type"], "room:state");
}

#[tokio::test]
async fn shutdown_closes_open_websockets_with_1001() {
    let app = spawn_app().await;
    let mut first = app.ws().await;
    let mut second = WsClient::connect(&app.ws_url("/ws")).await;
    first.send_json(json!({"type": "ping"})).await;
    first.recv_json().await;
    let shutdown = tokio::spawn(app.shutdown());
    assert_eq!(first.recv_close_code().await, 1001);
    assert_eq!(second.recv_close_code().await, 1001);
    tokio::time::timeout(common::WAIT, shutdown)
        .await
        .expect("shutdown finishes")
        .unwrap();
}

#[tokio::test]
async fn a_request_that_is_not_a_websocket_upgrade_is_refused_with_a_reason() {
    let app = spawn_app().await;
    let plain = reqwest::get(app.http_url("/ws")).await.unwrap();
    assert_eq!(plain.status(), 426);
    assert!(plain.text().await.unwrap().contains("WebSocket upgrade"));

    let old_version = reqwest::Client::new()
        .get(app.http_url("/ws"))
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "8")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(old_version.status(), 400);
    assert!(old_version.text().await.unwrap().contains("expected 13"));
}

/// `/ws` frames its own writes: a history frame over 64 KiB (the 64-bit length form) and the
/// frames around it arrive whole and in order.
#[tokio::test]
async fn a_history_frame_over_64_kib_arrives_whole() {
    let app = spawn_app_with(|c| {
        c.message_rate = 1000.0;
        c.message_burst = 100;
    })
    .await;
    let mut ana = app.user("ana").await;
    ana.send_json(json!({"type": "room:create", "roomType": "trivia"}))
        .await;
    let created = ana.recv_json().await;
    let code = created["room"]["code"].as_str().unwrap().to_owned();
    // 1,000 two-byte characters: 2,000 bytes a message, 50 of them in the history.
    let long = "é".repeat(confab_shared::limits::MAX_CHAT_CHARS);
    for _ in 0..confab_shared::limits::HISTORY_LEN {
        ana.send_json(json!({"type": "room:chat", "code": code, "message": long}))
            .await;
        assert_eq!(ana.recv_type("room:chat").await["message"], long.as_str());
    }
    let mut ben = app.user("ben").await;
    ben.send_json(json!({"type": "room:join", "code": code}))
        .await;
    assert_eq!(ben.recv_json().await["type"], "room:joined");
    let history = ben.recv_json().await;
    assert_eq!(history["type"], "room:history");
    let messages = history["messages"].as_array().unwrap();
    assert_eq!(messages.len(), confab_shared::limits::HISTORY_LEN);
    assert!(history.to_string().len() > 0xFFFF);
    assert!(messages.iter().all(|m| m["message"] == long.as_str()));
    // The stream is still in step after it.
    ben.send_json(json!({"type": "ping"})).await;
    assert_eq!(ben.recv_json().await["type"], "room:state");
}
