//! What an operator relies on: `/healthz` says the process answers, `/readyz` whether the
//! node can serve, and why not.

use std::time::{Duration, Instant};

use confab_server::{config::Config, Server};
use serde_json::{json, Value};

use crate::common::{db, free_addr, spawn_app_on, Backend, ServerProcess, WsClient, WAIT};

async fn get(url: String) -> (u16, Value) {
    let response = reqwest::get(url).await.expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Polls `url` until it answers `status`; returns the body.
pub async fn until_status(url: &str, status: u16, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (got, body) = get(url.to_owned()).await;
        if got == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{url} still answers {got} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn readyz_says_ready_and_why_not_once_the_database_is_gone() {
    let app = spawn_app_on(Backend::Postgres).await;
    let readyz = app.http_url("/readyz");
    assert_eq!(get(readyz.clone()).await, (200, json!({"ready": true})));

    db::drop_database(Backend::Postgres, app.config.database_url.as_ref().unwrap()).await;
    let refused = until_status(&readyz, 503, WAIT).await;
    assert_eq!(
        refused,
        json!({"ready": false, "reason": "database unavailable"})
    );
    assert_eq!(
        get(app.http_url("/healthz")).await.0,
        200,
        "the process still answers"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn readyz_turns_unready_before_shutdown_closes_anything() {
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(data.path());
    config.shutdown_delay_secs = 1;
    let server = Server::start(config).await.unwrap();
    let addr = server.addr();
    let mut ws = WsClient::connect(&format!("ws://{addr}/ws")).await;
    let shutting_down = tokio::spawn(server.shutdown());

    let body = until_status(&format!("http://{addr}/readyz"), 503, WAIT).await;
    assert_eq!(body, json!({"ready": false, "reason": "shutting down"}));
    // During the delay the node still serves what it has.
    ws.send_json(json!({"type": "ping"})).await;
    assert_eq!(ws.recv_json().await["type"], "room:state");
    shutting_down.await.unwrap().unwrap();
    assert_eq!(ws.recv_close_code().await, 1001);
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_keeps_the_clients_own() {
    let app = crate::common::spawn_app().await;
    let answered = app.http.get(app.http_url("/healthz")).send().await.unwrap();
    let id = answered.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let again = app.http.get(app.http_url("/healthz")).send().await.unwrap();
    assert_ne!(
        again.headers()["x-request-id"],
        id.as_str(),
        "one per request"
    );
    let own = app
        .http
        .get(app.http_url("/readyz"))
        .header("x-request-id", "trace-4711")
        .send()
        .await
        .unwrap();
    assert_eq!(own.headers()["x-request-id"], "trace-4711");
    app.shutdown().await;
}

/// Prometheus text → (name with sorted labels → value).
async fn scrape(url: &str) -> std::collections::HashMap<String, f64> {
    let response = reqwest::get(url).await.expect("/metrics answers");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.unwrap();
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let series = match series.split_once('{') {
                None => series.to_owned(),
                Some((name, labels)) => {
                    let mut labels: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
                    labels.sort_unstable();
                    format!("{name}{{{}}}", labels.join(","))
                }
            };
            Some((series, value.parse().ok()?))
        })
        .collect()
}

fn value(metrics: &std::collections::HashMap<String, f64>, series: &str) -> f64 {
    metrics.get(series).copied().unwrap_or(0.0)
}

/// A Socket.IO client over a plain WebSocket, connected to the default namespace.
async fn raw_socket_io(addr: std::net::SocketAddr, token: &str) -> WsClient {
    let mut sio =
        WsClient::connect(&format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")).await;
    let open = crate::socketio::next_text(&mut sio).await.unwrap();
    assert!(open.starts_with("0{"), "{open}");
    sio.send_text(&format!("40{}", json!({"token": token})))
        .await;
    let connected = crate::socketio::next_text(&mut sio).await.unwrap();
    assert!(connected.starts_with("40{"), "{connected}");
    sio
}

#[tokio::test]
async fn metrics_count_what_a_scripted_session_did() {
    let server =
        ServerProcess::start(&[("CONFAB_API_KEY", confab_server::config::TEST_API_KEY)]).await;
    let metrics_url = format!("http://{}/metrics", server.addr);
    let ws_url = format!("ws://{}/ws", server.addr);
    let before = scrape(&metrics_url).await;
    assert_eq!(value(&before, "confab_messages_stored_total"), 0.0);

    let mut ana = crate::common::signed_in_at(&ws_url, "ana").await;
    ana.send_json(json!({"type": "room:create", "roomType": "chat"}))
        .await;
    let code = ana.recv_type("room:created").await["room"]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut ben = crate::common::signed_in_at(&ws_url, "ben").await;
    ben.send_json(json!({"type": "room:join", "code": code}))
        .await;
    ben.recv_type("room:history").await;
    for i in 0..3 {
        ana.send_json(json!({"type": "room:chat", "code": code, "message": format!("m{i}")}))
            .await;
        ben.recv_type("room:chat").await;
    }
    // Two refused tokens, for two reasons.
    let mut forged = WsClient::connect(&ws_url).await;
    forged
        .send_json(json!({"type": "auth", "token": "not-a-jwt"}))
        .await;
    forged.recv_type("auth:error").await;
    let expired = crate::common::tokens::hs256(json!({
        "sub": "old", "exp": crate::common::tokens::now_secs() - 3600
    }));
    forged
        .send_json(json!({"type": "auth", "token": expired}))
        .await;
    forged.recv_type("auth:error").await;
    // One Socket.IO socket, signed in.
    let _sio = raw_socket_io(
        server.addr,
        &crate::common::tokens::token_for("cleo", "Cleo"),
    )
    .await;
    // The guest-token limit refuses the eleventh at once.
    let guest = format!("http://{}/api/auth/guest", server.addr);
    let client = reqwest::Client::new();
    let mut refused = 0;
    for _ in 0..11 {
        let status = client
            .post(&guest)
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .status();
        refused += u32::from(status == 429);
    }
    assert_eq!(refused, 1);
    // A party session, created in its lobby.
    let created = client
        .post(format!("http://{}/qf/party", server.addr))
        .bearer_auth(crate::common::tokens::token_for("dora", "Dora"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    // A moderator bans someone, and lifts it.
    for method in [reqwest::Method::PUT, reqwest::Method::DELETE] {
        let moderated = client
            .request(method, format!("http://{}/api/admin/bans/zed", server.addr))
            .header("x-api-key", confab_server::config::TEST_API_KEY)
            .send()
            .await
            .unwrap();
        assert!(moderated.status().is_success(), "{}", moderated.status());
    }

    let during = scrape(&metrics_url).await;
    for action in ["ban", "unban"] {
        let counted = format!(r#"confab_moderation_actions_total{{action="{action}"}}"#);
        assert_eq!(value(&during, &counted), 1.0, "{action}");
    }
    assert_eq!(value(&during, "confab_messages_stored_total"), 3.0);
    assert_eq!(value(&during, "confab_store_batch_size_sum"), 3.0);
    // Every sign-in of a new user wrote a profile, every join a seat: in batches of one or
    // more.
    let join_batches = value(&during, "confab_store_join_batch_size_count");
    assert!(join_batches >= 1.0, "{join_batches}");
    assert!(value(&during, "confab_store_join_batch_size_sum") >= join_batches);
    assert_eq!(
        value(
            &during,
            r#"confab_party_transitions_total{from="none",to="lobby"}"#
        ),
        1.0
    );
    assert_eq!(
        value(&during, r#"confab_connections_open{dialect="ws"}"#),
        3.0
    );
    assert_eq!(
        value(&during, r#"confab_connections_open{dialect="socket.io"}"#),
        1.0
    );
    // Its greeting: `welcome` and `authenticated`.
    assert_eq!(
        value(
            &during,
            r#"confab_messages_sent_total{dialect="socket.io"}"#
        ),
        2.0
    );
    assert_eq!(
        value(&during, r#"confab_auth_failures_total{reason="invalid"}"#),
        1.0
    );
    assert_eq!(
        value(&during, r#"confab_auth_failures_total{reason="expired"}"#),
        1.0
    );
    assert_eq!(
        value(&during, r#"confab_rate_limited_total{limit="guest"}"#),
        1.0
    );
    // Ben was sent: auth:ok, room:state, room:history, room:state (his join), 3 chats.
    let sent = value(&during, r#"confab_messages_sent_total{dialect="ws"}"#);
    assert!(sent >= 7.0, "{sent} frames sent on /ws");
    assert!(value(&during, r#"confab_bytes_sent_total{dialect="ws"}"#) > sent * 10.0);

    drop(ben);
    drop(forged);
    let deadline = Instant::now() + WAIT;
    // The gauge and the counter move at two moments of a socket's end: wait for both.
    let after = loop {
        let after = scrape(&metrics_url).await;
        let closed = r#"confab_connections_closed_total{close="none",dialect="ws"}"#;
        if (value(&after, r#"confab_connections_open{dialect="ws"}"#) == 1.0
            && value(&after, closed) == 2.0)
            || Instant::now() > deadline
        {
            break after;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        value(&after, r#"confab_connections_open{dialect="ws"}"#),
        1.0
    );
    assert_eq!(
        value(
            &after,
            r#"confab_connections_closed_total{close="none",dialect="ws"}"#
        ),
        2.0,
        "two peers went without a close frame"
    );
    drop(ana);
    drop(server);
}

#[tokio::test]
async fn metrics_can_have_a_listener_of_their_own() {
    let metrics_addr = free_addr();
    let metrics_addr_text = metrics_addr.to_string();
    let server = ServerProcess::start(&[("CONFAB_METRICS_ADDR", &metrics_addr_text)]).await;
    let _ana = crate::common::signed_in_at(&format!("ws://{}/ws", server.addr), "ana").await;
    let public = reqwest::get(format!("http://{}/metrics", server.addr))
        .await
        .unwrap();
    let public = public.text().await.unwrap();
    assert!(
        !public.contains("confab_"),
        "not on the public listener: {public}"
    );
    let own = scrape(&format!("http://{metrics_addr}/metrics")).await;
    assert_eq!(value(&own, r#"confab_connections_open{dialect="ws"}"#), 1.0);
}
