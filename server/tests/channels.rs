//! Contract 003's channels: the short-lived token endpoint and the online-users channel.

mod common;

use common::{spawn_app_with, tokens, TestApp, WsClient};
use serde_json::{json, Value};

async fn ws_token(app: &TestApp, header: Option<(&str, String)>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(app.http_url("/qf/auth/ws-token"));
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_jwt_is_exchanged_for_a_short_lived_token() {
    let app = spawn_app_with(|_| {}).await;
    let jwt = tokens::token_for("ana", "Ana");
    for header in [
        ("authorization", format!("Bearer {jwt}")),
        ("cookie", format!("theme=dark; confab_token={jwt}")),
    ] {
        let response = ws_token(&app, Some(header.clone())).await;
        assert_eq!(response.status(), 200, "{header:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["expires_in"], 60);
        let token = body["token"].as_str().unwrap();
        assert!(token.starts_with("qf1.") && token != jwt, "{body}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn the_token_endpoint_needs_a_valid_jwt() {
    let app = spawn_app_with(|_| {}).await;
    let expired = tokens::hs256(json!({"sub": "ana", "exp": tokens::now_secs() - 60}));
    for header in [
        None,
        Some(("authorization", "Bearer".to_owned())),
        Some(("authorization", "Bearer not-a-jwt".to_owned())),
        Some(("authorization", format!("Bearer {expired}"))),
        Some((
            "authorization",
            format!("Basic {}", tokens::token_for("ana", "Ana")),
        )),
        Some(("cookie", "confab_token=".to_owned())),
    ] {
        let response = ws_token(&app, header.clone()).await;
        assert_eq!(response.status(), 401, "{header:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized", "{header:?}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn the_short_lived_token_is_not_a_jwt_anything_else_accepts() {
    let app = spawn_app_with(|_| {}).await;
    let response = ws_token(
        &app,
        Some((
            "authorization",
            format!("Bearer {}", tokens::token_for("ana", "Ana")),
        )),
    )
    .await;
    let token = response.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Not on /ws...
    let mut ws = app.ws().await;
    ws.send_json(json!({"type": "auth", "token": token})).await;
    assert_eq!(
        ws.recv_json().await,
        json!({"type": "auth:error", "error": "invalid token"})
    );
    // ...nor to get another one.
    assert_eq!(
        ws_token(&app, Some(("authorization", format!("Bearer {token}"))))
            .await
            .status(),
        401
    );
    app.shutdown().await;
}

#[tokio::test]
async fn the_token_lifetime_is_configurable() {
    let app = spawn_app_with(|c| c.ws_token_ttl_secs = 5).await;
    let response = ws_token(
        &app,
        Some((
            "authorization",
            format!("Bearer {}", tokens::token_for("ana", "Ana")),
        )),
    )
    .await;
    assert_eq!(response.json::<Value>().await.unwrap()["expires_in"], 5);
    app.shutdown().await;
}

/// A `/qf` token for `user_id`, from the token endpoint.
async fn qf_token(app: &TestApp, user_id: &str) -> String {
    qf_token_for_jwt(app, &tokens::token_for(user_id, user_id)).await
}

async fn qf_token_for_jwt(app: &TestApp, jwt: &str) -> String {
    let response = ws_token(app, Some(("authorization", format!("Bearer {jwt}")))).await;
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `user_id`'s socket on the online-users channel, past its first snapshot (returned).
async fn online_socket(app: &TestApp, user_id: &str) -> (WsClient, Value) {
    let token = qf_token(app, user_id).await;
    let mut ws =
        WsClient::connect(&app.ws_url(&format!("/qf/users/online/ws?token={token}"))).await;
    let first = ws.recv_json().await;
    assert_eq!(first["type"], "online_users_update", "{first}");
    (ws, first)
}

fn user_ids(update: &Value) -> Vec<String> {
    update["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Reads updates until one lists exactly `expected` (sorted); panics after the usual wait.
async fn until_online(ws: &mut WsClient, expected: &[&str]) -> Value {
    loop {
        let update = ws.recv_json().await;
        assert_eq!(update["type"], "online_users_update");
        assert_eq!(
            update["total_count"].as_u64().unwrap() as usize,
            update["users"].as_array().unwrap().len()
        );
        if user_ids(&update) == expected {
            return update;
        }
    }
}

#[tokio::test]
async fn channel_sockets_refuse_missing_invalid_and_expired_tokens_with_1008() {
    let app = spawn_app_with(|c| c.ws_token_ttl_secs = 1).await;
    let jwt = tokens::token_for("ana", "ana");
    let expired = qf_token_for_jwt(&app, &jwt).await;
    // Expiry is in whole seconds: the 1 s TTL plus the 2 s leeway can take up to 4 s to pass.
    tokio::time::sleep(std::time::Duration::from_millis(4_200)).await;
    for (query, reason) in [
        (String::new(), "missing token"),
        ("?token=".to_owned(), "missing token"),
        ("?token=qf1.bogus.token".to_owned(), "invalid token"),
        (format!("?token={jwt}"), "invalid token"),
        (format!("?token={expired}"), "token expired"),
    ] {
        let mut ws = WsClient::connect(&app.ws_url(&format!("/qf/users/online/ws{query}"))).await;
        match ws.receive().await {
            common::Received::Closed(Some(frame)) => {
                assert_eq!(u16::from(frame.code), 1008, "{query}");
                assert_eq!(frame.reason.as_str(), reason, "{query}");
            }
            other => panic!("{query}: expected a 1008 close, got {other:?}"),
        }
    }
    app.shutdown().await;
}

#[tokio::test]
async fn the_online_list_follows_arrivals_and_departures_across_tabs() {
    let app = spawn_app_with(|_| {}).await;
    let (mut ana, first) = online_socket(&app, "ana").await;
    assert_eq!(user_ids(&first), ["ana"]);
    assert_eq!(first["total_count"], 1);
    assert_eq!(
        first["users"][0],
        json!({"user_id": "ana", "username": "ana", "image_url": "https://img.example/ana.png"})
    );
    assert!(first["timestamp"].as_str().unwrap().ends_with('Z'));

    let (ben_tab_1, _) = online_socket(&app, "ben").await;
    until_online(&mut ana, &["ana", "ben"]).await;
    // A second tab of Ben's changes nothing: he counts once.
    let (ben_tab_2, second_tab_view) = online_socket(&app, "ben").await;
    assert_eq!(user_ids(&second_tab_view), ["ana", "ben"]);
    ana.assert_silent_for(std::time::Duration::from_millis(800))
        .await;
    // Closing one tab leaves him online; closing the last takes him off.
    drop(ben_tab_1);
    ana.assert_silent_for(std::time::Duration::from_millis(800))
        .await;
    drop(ben_tab_2);
    until_online(&mut ana, &["ana"]).await;
    app.shutdown().await;
}

#[tokio::test]
async fn a_burst_of_arrivals_is_coalesced() {
    let app = spawn_app_with(|_| {}).await;
    let (mut watcher, _) = online_socket(&app, "watcher").await;
    let started = std::time::Instant::now();
    let mut crowd = Vec::new();
    for i in 0..12 {
        crowd.push(online_socket(&app, &format!("user{i:02}")).await.0);
    }
    let mut expected: Vec<String> = (0..12).map(|i| format!("user{i:02}")).collect();
    expected.push("watcher".into());
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    let mut updates = 0;
    loop {
        let update = watcher.recv_json().await;
        updates += 1;
        if user_ids(&update) == expected {
            break;
        }
    }
    // Updates are at least 500 ms apart, however fast the twelve arrive.
    let allowed = 1 + started.elapsed().as_millis() as usize / 500 + 1;
    assert!(
        updates <= allowed && updates < 12,
        "{updates} updates in {:?}",
        started.elapsed()
    );
    drop(crowd);
    app.shutdown().await;
}

#[tokio::test]
async fn everyone_signed_in_on_any_dialect_is_online_and_rest_agrees() {
    let app = spawn_app_with(|_| {}).await;
    let (mut ana, _) = online_socket(&app, "ana").await;
    let native = app.user("ben").await; // signed in on /ws
    until_online(&mut ana, &["ana", "ben"]).await;

    let response = reqwest::Client::new()
        .get(app.http_url("/qf/users/online"))
        .bearer_auth(tokens::token_for("carl", "carl"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let listed: Value = response.json().await.unwrap();
    assert_eq!(user_ids(&listed), ["ana", "ben"]);
    assert_eq!(listed["total_count"], 2);
    assert!(
        listed.get("type").is_none(),
        "the REST shape is the payload: {listed}"
    );

    let refused = reqwest::get(app.http_url("/qf/users/online"))
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    drop(native);
    until_online(&mut ana, &["ana"]).await;
    app.shutdown().await;
}

#[tokio::test]
async fn a_channel_socket_closes_with_1008_when_its_session_expires() {
    let app = spawn_app_with(|_| {}).await;
    let jwt =
        tokens::hs256(json!({"sub": "brief", "username": "brief", "exp": tokens::now_secs() + 2}));
    let token = qf_token_for_jwt(&app, &jwt).await;
    let mut ws =
        WsClient::connect(&app.ws_url(&format!("/qf/users/online/ws?token={token}"))).await;
    assert_eq!(ws.recv_json().await["type"], "online_users_update");
    let started = std::time::Instant::now();
    let code = loop {
        match ws.receive_within(std::time::Duration::from_secs(6)).await {
            common::Received::Closed(frame) => break frame.map(|f| u16::from(f.code)),
            common::Received::Json(_) => continue,
        }
    };
    assert_eq!(code, Some(1008));
    assert!(
        started.elapsed() <= std::time::Duration::from_secs(4),
        "closed after {:?}",
        started.elapsed()
    );
    app.shutdown().await;
}
