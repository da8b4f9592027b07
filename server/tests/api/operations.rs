//! What an operator relies on: `/healthz` says the process answers, `/readyz` whether the
//! node can serve, and why not.

use std::time::{Duration, Instant};

use confab_server::{config::Config, Server};
use serde_json::{json, Value};

use crate::common::{db, spawn_app_on, Backend, WsClient, WAIT};

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
