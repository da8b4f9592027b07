//! Contract 003's channels: the short-lived token endpoint, online users, notifications and
//! pings, and the notification API.

use crate::common::{assert_refused_frames_close, spawn_app_with, tokens, TestApp, WsClient};
use confab_server::core::MAX_BACKLOG;
use serde_json::{json, Value};
use std::{collections::HashSet, time::Duration};

async fn ws_token(app: &TestApp, header: Option<(&str, String)>) -> reqwest::Response {
    let mut request = app.http.get(app.http_url("/qf/auth/ws-token"));
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_jwt_is_exchanged_for_a_short_lived_token() {
    let app = spawn_app_with(|_| {}).await;
    let jwt = tokens::token_for("ana", "Ana");
    for header in [("authorization", format!("Bearer {jwt}"))] {
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
        // No cookie authenticates a REST call, a valid JWT in one neither.
        Some((
            "cookie",
            format!("confab_token={}", tokens::token_for("ana", "Ana")),
        )),
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

/// `user_id`'s socket on the online-users channel, past its first snapshot (returned).
async fn online_socket(app: &TestApp, user_id: &str) -> (WsClient, Value) {
    let mut ws = app.qf_socket(user_id, "/qf/users/online/ws").await;
    let first = ws.recv_json().await;
    assert_eq!(first["type"], "online_users_update", "{first}");
    (ws, first)
}

pub fn user_ids(update: &Value) -> Vec<String> {
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
    let expired = app.qf_token_for_jwt(&jwt).await;
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
            crate::common::Received::Closed(Some(frame)) => {
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

    let response = app
        .http
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
    let token = app.qf_token_for_jwt(&jwt).await;
    let mut ws =
        WsClient::connect(&app.ws_url(&format!("/qf/users/online/ws?token={token}"))).await;
    assert_eq!(ws.recv_json().await["type"], "online_users_update");
    let started = std::time::Instant::now();
    let code = loop {
        match ws.receive_within(std::time::Duration::from_secs(6)).await {
            crate::common::Received::Closed(frame) => break frame.map(|f| u16::from(f.code)),
            crate::common::Received::Json(_) => continue,
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

/// `user_id`'s notification socket.
#[tokio::test]
async fn channel_sockets_close_refused_frames_with_a_code_the_client_reads() {
    let app = spawn_app_with(|_| {}).await;
    assert_refused_frames_close("/qf/users/online/ws", || async {
        online_socket(&app, "ana").await.0
    })
    .await;
    assert_refused_frames_close("/qf/notifications/ws", || notification_socket(&app, "ana")).await;
    app.shutdown().await;
}

async fn notification_socket(app: &TestApp, user_id: &str) -> WsClient {
    app.qf_socket(user_id, "/qf/notifications/ws").await
}

async fn publish(app: &TestApp, key: Option<&str>, body: Value) -> reqwest::Response {
    let mut request = app
        .http
        .post(app.http_url("/api/notifications"))
        .json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap()
}

const KEY: &str = confab_server::config::TEST_API_KEY;

fn round_result(user_id: &str) -> Value {
    json!({"userId": user_id, "notificationType": "round_result", "actorUsername": "host",
           "action": "finished", "recipientRole": "player", "phraseText": "You won round 3",
           "data": {"round": 3}})
}

#[tokio::test]
async fn a_published_notification_reaches_every_open_socket_of_its_user_only() {
    let app = spawn_app_with(|_| {}).await;
    let mut tab_1 = notification_socket(&app, "ana").await;
    let mut tab_2 = notification_socket(&app, "ana").await;
    let mut ben = notification_socket(&app, "ben").await;
    // Published before or after the sockets subscribe, it arrives once: live, or from the
    // backlog read right after subscribing.

    let response = publish(&app, Some(KEY), round_result("ana")).await;
    assert_eq!(response.status(), 201);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for tab in [&mut tab_1, &mut tab_2] {
        let message = tab.recv_json().await;
        assert_eq!(message["type"], "notification");
        assert_eq!(message["id"], id.as_str());
        assert_eq!(
            (
                message["notification_type"].as_str(),
                message["actor_username"].as_str(),
                message["action"].as_str(),
                message["recipient_role"].as_str(),
                message["phrase_text"].as_str()
            ),
            (
                Some("round_result"),
                Some("host"),
                Some("finished"),
                Some("player"),
                Some("You won round 3")
            )
        );
        assert!(message["timestamp"].as_str().unwrap().ends_with('Z'));
    }
    ben.assert_silent_for(std::time::Duration::from_millis(300))
        .await;
    app.shutdown().await;
}

#[tokio::test]
async fn notifications_made_while_offline_arrive_on_connect_once() {
    let app = spawn_app_with(|_| {}).await;
    // Many published back to back, several in the same millisecond: still oldest first.
    const PUBLISHED: usize = 30;
    for i in 0..PUBLISHED {
        let mut body = round_result("ana");
        body["phraseText"] = json!(format!("phrase {i}"));
        assert_eq!(publish(&app, Some(KEY), body).await.status(), 201);
    }
    let mut ana = notification_socket(&app, "ana").await;
    for i in 0..PUBLISHED {
        assert_eq!(ana.recv_json().await["phrase_text"], format!("phrase {i}"));
    }
    drop(ana);
    // Delivered once: the next connection starts empty.
    let mut again = notification_socket(&app, "ana").await;
    again
        .assert_silent_for(std::time::Duration::from_millis(400))
        .await;
    app.shutdown().await;
}

#[tokio::test]
async fn a_notification_whose_write_fails_is_sent_on_the_next_connect() {
    // A socket that stops reading stalls its writes; with a queue of 8 the next deliveries
    // overflow it, which cuts the stalled write short and closes the socket.
    let app = spawn_app_with(|c| c.outbound_queue = 8).await;
    let token = app.qf_token("ana").await;
    let url = app.ws_url(&format!("/qf/notifications/ws?token={token}"));
    let mut stalled = WsClient::connect_with_receive_buffer(&url, 4096).await;
    // More than the kernel buffers between the two ends hold (a few MiB here), one at a
    // time, so that the socket keeps up until its writes stall.
    const PUBLISHED: usize = 2500;
    let mut published = HashSet::new();
    for i in 0..PUBLISHED {
        let mut body = round_result("ana");
        body["phraseText"] = json!(format!("{i} {}", "x".repeat(1990)));
        for field in ["actorUsername", "action", "recipientRole"] {
            body[field] = json!("y".repeat(128));
        }
        let response = publish(&app, Some(KEY), body).await;
        assert_eq!(response.status(), 201);
        let id = response.json::<Value>().await.unwrap()["id"].clone();
        published.insert(id.as_str().unwrap().to_owned());
    }
    let ids = |frames: Vec<Value>| -> Vec<String> {
        frames
            .iter()
            .map(|frame| frame["id"].as_str().expect("a notification").to_owned())
            .collect()
    };
    // What reached the stalled socket's buffers before it was cut off, then what each new
    // socket gets from the backlog (100 at a time) until nothing is left.
    let mut received: HashSet<String> = ids(stalled.drain(QUIET).await).into_iter().collect();
    assert!(received.len() < PUBLISHED, "the stalled socket was cut off");
    loop {
        let mut socket = notification_socket(&app, "ana").await;
        // A full backlog means there is more; a short one, that this was the rest. A busy
        // machine may take a while to mark a hundred rows before the first is sent.
        let backlog = ids(socket
            .drain_up_to(MAX_BACKLOG, Duration::from_secs(3))
            .await);
        let rest = backlog.len() < MAX_BACKLOG;
        received.extend(backlog);
        if rest {
            break;
        }
    }
    let missing: Vec<_> = published.difference(&received).collect();
    assert!(missing.is_empty(), "never sent: {missing:?}");
    app.shutdown().await;
}

/// How long a socket is quiet before a test takes it that nothing more is coming.
const QUIET: std::time::Duration = std::time::Duration::from_millis(500);

#[tokio::test]
async fn the_app_lists_notifications_and_marks_them_read() {
    let app = spawn_app_with(|_| {}).await;
    let body = json!({"userId": "ana", "type": "success", "title": "Saved", "message": "Your deck is saved"});
    let id = publish(&app, Some(KEY), body)
        .await
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let list = |who: &'static str| app.get_as(who, "/api/notifications");
    let listed: Value = list("ana").await.json().await.unwrap();
    let entry = &listed["notifications"][0];
    assert_eq!(
        (
            entry["id"].as_str(),
            entry["type"].as_str(),
            entry["title"].as_str()
        ),
        (Some(id.as_str()), Some("success"), Some("Saved"))
    );
    // Each shape is filled from the other.
    assert_eq!(
        (
            entry["phraseText"].as_str(),
            entry["notificationType"].as_str()
        ),
        (Some("Your deck is saved"), Some("success"))
    );
    assert_eq!(entry["read"], false);

    let mark_read = format!("/api/notifications/{id}/read");
    let mark = |who: &'static str| app.post_as(who, &mark_read, None);
    assert_eq!(mark("ben").await.status(), 404, "not Ben's");
    assert_eq!(mark("ana").await.status(), 204);
    assert_eq!(
        list("ana").await.json::<Value>().await.unwrap()["notifications"][0]["read"],
        true
    );
    assert_eq!(
        list("ben").await.json::<Value>().await.unwrap()["notifications"],
        json!([])
    );
    assert_eq!(
        app.http
            .get(app.http_url("/api/notifications"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    app.shutdown().await;
}

#[tokio::test]
async fn publishing_needs_the_service_key_and_valid_input() {
    let app = spawn_app_with(|_| {}).await;
    assert_eq!(publish(&app, None, round_result("ana")).await.status(), 401);
    assert_eq!(
        publish(&app, Some("wrong-key"), round_result("ana"))
            .await
            .status(),
        401
    );
    // A user's JWT is not the service key.
    assert_eq!(
        publish(
            &app,
            Some(&tokens::token_for("ana", "ana")),
            round_result("ana")
        )
        .await
        .status(),
        401
    );
    let with_header = app
        .http
        .post(app.http_url("/api/notifications"))
        .header("x-api-key", KEY)
        .json(&round_result("ana"))
        .send()
        .await
        .unwrap();
    assert_eq!(with_header.status(), 201);

    for (body, expected) in [
        (json!({"userId": "", "message": "x"}), "userId is required"),
        (
            json!({"userId": "ana"}),
            "message or phraseText is required",
        ),
        (
            json!({"userId": "ana", "message": "x", "type": "urgent"}),
            "type must be",
        ),
        (
            json!({"userId": "ana", "message": "x".repeat(2001)}),
            "longer than 2000",
        ),
        (
            json!({"userId": "ana", "message": "x", "data": {"blob": "y".repeat(17_000)}}),
            "data is larger",
        ),
        (
            json!({"userId": "ana", "message": "x", "colour": "red"}),
            "unknown field",
        ),
        (json!({"message": "x"}), "missing field"),
    ] {
        let response = publish(&app, Some(KEY), body.clone()).await;
        assert!(response.status().is_client_error(), "{body}");
        let error: Value = response.json().await.unwrap();
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains(expected),
            "{body}: {error}"
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn publishing_is_off_without_a_configured_key() {
    let app = spawn_app_with(|c| c.api_key = None).await;
    let response = publish(&app, Some(KEY), round_result("ana")).await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        "forbidden"
    );
    app.shutdown().await;
}

/// Polls the REST online list until `user_id` is on it (pings reach only online users).
async fn wait_until_online(app: &TestApp, user_id: &str) {
    let deadline = std::time::Instant::now() + crate::common::WAIT;
    loop {
        let listed: Value = app
            .http
            .get(app.http_url("/qf/users/online"))
            .bearer_auth(tokens::token_for("observer", "observer"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if user_ids(&listed).iter().any(|id| id == user_id) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{user_id} never came online"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn ping_user(
    app: &TestApp,
    from: &str,
    username: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app
        .http
        .post(app.http_url(&format!("/qf/users/online/{username}/ping")))
        .bearer_auth(tokens::token_for(from, from));
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_ping_reaches_an_online_users_notification_socket() {
    let app = spawn_app_with(|_| {}).await;
    let mut ben = notification_socket(&app, "ben").await;
    wait_until_online(&app, "ben").await;
    let response = ping_user(
        &app,
        "ana",
        "ben",
        Some(json!({"join_url": "https://play.example/party/ABC234"})),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["delivered_to"], 1);
    let ping = ben.recv_json().await;
    assert_eq!(
        (ping["type"].as_str(), ping["from_username"].as_str()),
        (Some("ping"), Some("ana"))
    );
    assert_eq!(ping["join_url"], "https://play.example/party/ABC234");

    // Without a body, no link; to nobody online, 404; a bad link, 400.
    assert_eq!(ping_user(&app, "ana", "ben", None).await.status(), 200);
    let plain = ben.recv_json().await;
    assert!(plain.get("join_url").is_none(), "{plain}");
    assert_eq!(ping_user(&app, "ana", "nobody", None).await.status(), 404);
    assert_eq!(
        ping_user(
            &app,
            "ana",
            "ben",
            Some(json!({"join_url": "javascript:x"}))
        )
        .await
        .status(),
        400
    );
    app.shutdown().await;
}

#[tokio::test]
async fn pings_are_rate_limited_per_sender() {
    let app = spawn_app_with(|_| {}).await;
    let _ben = notification_socket(&app, "ben").await;
    wait_until_online(&app, "ben").await;
    for _ in 0..confab_server::PINGS_BURST {
        assert_eq!(ping_user(&app, "ana", "ben", None).await.status(), 200);
    }
    assert_eq!(ping_user(&app, "ana", "ben", None).await.status(), 429);
    assert_eq!(
        ping_user(&app, "carl", "ben", None).await.status(),
        200,
        "another sender has their own budget"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn presence_stays_right_under_racing_arrivals_and_departures() {
    let app = std::sync::Arc::new(spawn_app_with(|_| {}).await);
    let (mut watcher, _) = online_socket(&app, "watcher").await;
    // 20 users with two tabs each connect at once.
    let tabs = futures_util::future::join_all((0..40).map(|i| {
        let app = app.clone();
        async move { online_socket(&app, &format!("user{:02}", i % 20)).await.0 }
    }))
    .await;
    let mut everyone: Vec<String> = (0..20).map(|i| format!("user{i:02}")).collect();
    everyone.push("watcher".into());
    until_online(
        &mut watcher,
        &everyone.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;

    // All tabs of the even users and one tab of each odd user close at once: the odd users
    // stay online (one tab left), the even ones go.
    let (closing, staying): (Vec<_>, Vec<_>) = tabs
        .into_iter()
        .enumerate()
        .partition(|(i, _)| (i % 20) % 2 == 0 || *i >= 20);
    let closers = closing
        .into_iter()
        .map(|(_, mut tab)| tokio::spawn(async move { tab.stream.close(None).await }));
    futures_util::future::join_all(closers).await;
    let mut remaining: Vec<String> = (0..20)
        .filter(|i| i % 2 == 1)
        .map(|i| format!("user{i:02}"))
        .collect();
    remaining.push("watcher".into());
    let remaining: Vec<&str> = remaining.iter().map(String::as_str).collect();
    until_online(&mut watcher, &remaining).await;
    // And it stays that way: no late departure sneaks in.
    watcher
        .assert_silent_for(std::time::Duration::from_millis(800))
        .await;
    assert_eq!(staying.len(), 10);
    drop(staying);
    drop(watcher);
    std::sync::Arc::into_inner(app)
        .expect("no other handle")
        .shutdown()
        .await;
}

/// Opens `path` with `headers` on the upgrade request; the HTTP status when it is refused.
async fn open_with_headers(
    app: &TestApp,
    path: &str,
    headers: &[(&str, String)],
) -> Result<WsClient, u16> {
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http, Error};
    let mut request = app.ws_url(path).into_client_request().unwrap();
    for (name, value) in headers {
        let name = http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((stream, _)) => Ok(WsClient { stream }),
        Err(Error::Http(response)) => Err(response.status().as_u16()),
        Err(err) => panic!("{err}"),
    }
}

#[tokio::test]
async fn the_token_cookie_opens_a_socket_only_from_an_allowed_origin() {
    let app = spawn_app_with(|config| {
        config.allowed_origins = vec!["https://app.example".into()];
    })
    .await;
    let own = format!("http://{}", app.addr);
    let path = "/qf/users/online/ws";
    let cookie = |token: &str| ("cookie", format!("confab_ws_token={token}"));
    for origin in [None, Some(own.as_str()), Some("https://app.example")] {
        let token = app.qf_token("ana").await;
        let mut headers = vec![cookie(&token)];
        headers.extend(origin.map(|origin| ("origin", origin.to_owned())));
        let mut ws = open_with_headers(&app, path, &headers)
            .await
            .unwrap_or_else(|status| panic!("{origin:?}: refused with {status}"));
        assert_eq!(ws.recv_json().await["type"], "online_users_update");
    }
    // Another site's page: the browser would send the cookie, the server refuses it.
    let token = app.qf_token("ana").await;
    let evil = ("origin", "https://evil.example".to_owned());
    let refused = open_with_headers(&app, path, &[cookie(&token), evil.clone()]).await;
    assert_eq!(refused.err(), Some(403));
    // A token the page itself sends is its own, from any Origin.
    let query = format!("{path}?token={token}");
    let mut ws = open_with_headers(&app, &query, &[evil]).await.unwrap();
    assert_eq!(ws.recv_json().await["type"], "online_users_update");
    app.shutdown().await;
}

#[tokio::test]
async fn cors_answers_the_allowed_origins_only() {
    let app = spawn_app_with(|config| {
        config.allowed_origins = vec!["https://app.example".into()];
    })
    .await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.http_url("/api/notifications"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let allowed = preflight("https://app.example").await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert!(allowed
        .headers()
        .get("access-control-allow-credentials")
        .is_none());
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    app.shutdown().await;
}
