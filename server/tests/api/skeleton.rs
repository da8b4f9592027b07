//! The server's skeleton: health, the site fallback, the first `/ws` exchange, frame limits
//! and graceful shutdown.

use crate::common::{assert_refused_frames_close, spawn_app, spawn_app_with, WsClient};
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
    // Large enough to be worth compressing (small bodies are sent as they are).
    let shell = format!(
        "<title>shell</title>{}",
        "<!-- the app loads here -->".repeat(20)
    );
    let script = format!("export {{}}\n{}", "// the app\n".repeat(50));
    std::fs::write(site.path().join("shell.html"), &shell).unwrap();
    std::fs::create_dir(site.path().join("pkg")).unwrap();
    std::fs::write(site.path().join("pkg/app.js"), &script).unwrap();
    std::fs::create_dir(site.path().join("assets")).unwrap();
    std::fs::write(site.path().join("assets/app-0123456789abcdef.js"), &script).unwrap();
    // What the build compressed ahead (any bytes will do: the server passes them on).
    let ahead = b"brotli made at build time".to_vec();
    std::fs::write(
        site.path().join("assets/app-0123456789abcdef.js.br"),
        &ahead,
    )
    .unwrap();
    let app = spawn_app_with(|c| c.site_dir = site.path().to_owned()).await;

    let js = reqwest::get(app.http_url("/pkg/app.js")).await.unwrap();
    assert_eq!(js.status(), 200);
    assert_eq!(js.text().await.unwrap(), script);
    for path in ["/", "/rooms/ABC234"] {
        let page = reqwest::get(app.http_url(path)).await.unwrap();
        assert_eq!(page.status(), 200, "{path}");
        assert_eq!(page.text().await.unwrap(), shell, "{path}");
    }
    // Compressed as the browser accepts, and revalidated on every load.
    for (path, encoding) in [("/pkg/app.js", "br"), ("/", "gzip")] {
        let page = app
            .http
            .get(app.http_url(path))
            .header("accept-encoding", encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(page.headers()["content-encoding"], encoding, "{path}");
        assert_eq!(page.headers()["cache-control"], "no-cache", "{path}");
    }
    // Files named by their content are kept for a year.
    let hashed = app
        .http
        .get(app.http_url("/assets/app-0123456789abcdef.js"))
        .header("accept-encoding", "br")
        .send()
        .await
        .unwrap();
    assert_eq!(hashed.status(), 200);
    assert_eq!(hashed.headers()["content-encoding"], "br");
    assert_eq!(
        hashed.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(
        hashed.bytes().await.unwrap().to_vec(),
        ahead,
        "sent as built"
    );
    // Without a precompressed one, gzip is made on the fly.
    let gzipped = app
        .http
        .get(app.http_url("/assets/app-0123456789abcdef.js"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    // Only navigations get the shell: a missing file or an unknown endpoint is a 404.
    for path in [
        "/x.png",
        "/pkg/missing.js",
        "/assets/missing-0123456789abcdef.js",
        "/api/nope",
        "/qf/nope",
        "/ws/x",
    ] {
        let miss = reqwest::get(app.http_url(path)).await.unwrap();
        assert_eq!(miss.status(), 404, "{path}");
        assert!(!miss.text().await.unwrap().contains("shell"), "{path}");
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
async fn refused_frames_close_with_a_code_the_client_reads() {
    let app = spawn_app().await;
    assert_refused_frames_close("/ws", || app.ws()).await;
    // The server carries on.
    let mut other = app.ws().await;
    other.send_json(json!({"type": "ping"})).await;
    assert_eq!(other.recv_json().await["type"], "room:state");
}

/// A client may send its first frame right behind the upgrade request, before it has read
/// the 101 answer: the frame is read once the connection is switched, not lost.
#[tokio::test]
async fn a_frame_sent_with_the_upgrade_request_is_answered() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        app.addr
    );
    let mut bytes = request.into_bytes();
    bytes.extend(masked_text_frame(br#"{"type":"ping"}"#));
    tcp.write_all(&bytes).await.unwrap();

    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let answer = tokio::time::timeout(crate::common::WAIT, async {
        loop {
            let read = tcp.read(&mut chunk).await.unwrap();
            assert!(read > 0, "closed: {}", String::from_utf8_lossy(&received));
            received.extend_from_slice(&chunk[..read]);
            let text = String::from_utf8_lossy(&received);
            if let Some(end) = text.find("\r\n\r\n") {
                assert!(text.starts_with("HTTP/1.1 101"), "{text}");
                let frame = &received[end + 4..];
                // An unmasked server text frame with a 7- or 16-bit length.
                if frame.len() >= 4 {
                    let (len, start) = match frame[1] {
                        126 => (usize::from(u16::from_be_bytes([frame[2], frame[3]])), 4),
                        len => (usize::from(len), 2),
                    };
                    if frame.len() >= start + len {
                        break String::from_utf8(frame[start..start + len].to_vec()).unwrap();
                    }
                }
            }
        }
    })
    .await
    .expect("an answer to the first frame");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["type"], "room:state", "{answer}");
}

/// A client's text frame (masked, as RFC 6455 requires), with a payload under 126 bytes.
fn masked_text_frame(payload: &[u8]) -> Vec<u8> {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0x81, 0x80 | u8::try_from(payload.len()).unwrap()];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
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
    tokio::time::timeout(crate::common::WAIT, shutdown)
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
