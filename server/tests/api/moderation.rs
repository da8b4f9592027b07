//! The moderation API: each action against a real server, on SQLite and PostgreSQL, seen
//! from `/ws`, `/qf` and REST (the Socket.IO dialects in `moderation.test.mjs`, other
//! nodes in `cluster.rs`).

use std::time::Duration;

use confab_server::config::TEST_API_KEY;
use serde_json::{json, Value};

use crate::common::{spawn_app_on, tokens, Backend, TestApp, WsClient};

/// A moderation request with the service key, and its answer.
async fn admin(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = app
        .http
        .request(method, app.http_url(path))
        .header("x-api-key", TEST_API_KEY);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn create_room(ws: &mut WsClient) -> String {
    ws.send_json(json!({"type": "room:create", "roomType": "trivia"}))
        .await;
    let created = ws.recv_type("room:created").await;
    created["room"]["code"].as_str().unwrap().to_owned()
}

async fn join(ws: &mut WsClient, code: &str) -> Value {
    ws.send_json(json!({"type": "room:join", "code": code}))
        .await;
    let joined = ws.recv_json().await;
    if joined["type"] == "room:joined" {
        ws.recv_type("room:history").await;
    }
    joined
}

/// `ana` and `ben` in a new room of `ana`'s.
async fn room_of_two(app: &TestApp) -> (WsClient, WsClient, String) {
    let mut ana = app.user("ana").await;
    let code = create_room(&mut ana).await;
    let mut ben = app.user("ben").await;
    assert_eq!(join(&mut ben, &code).await["type"], "room:joined");
    ana.recv_type("room:user_joined").await;
    (ana, ben, code)
}

async fn chat(ws: &mut WsClient, code: &str, text: &str) -> Value {
    ws.send_json(json!({"type": "room:chat", "code": code, "message": text}))
        .await;
    ws.recv_type("room:chat").await
}

async fn history(ws: &mut WsClient, code: &str) -> Vec<String> {
    ws.send_json(json!({"type": "room:history", "code": code, "afterSeq": 0}))
        .await;
    let history = ws.recv_type("room:history").await;
    history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"].as_str().unwrap().to_owned())
        .collect()
}

async fn audit(app: &TestApp) -> Vec<Value> {
    let (status, body) = admin(app, "GET", "/api/admin/audit", None).await;
    assert_eq!(status, 200, "{body}");
    body["entries"].as_array().unwrap().clone()
}

async fn a_deleted_message_leaves_history_and_every_member_is_told(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let (mut ana, mut ben, code) = room_of_two(&app).await;
    let first = chat(&mut ana, &code, "keep me").await;
    ben.recv_type("room:chat").await;
    let second = chat(&mut ana, &code, "delete me").await;
    ben.recv_type("room:chat").await;
    let id = second["id"].as_str().unwrap();

    // Without the service key nothing happens.
    let anonymous = app
        .http
        .delete(app.http_url(&format!("/api/admin/messages/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let as_a_user = app
        .http
        .delete(app.http_url(&format!("/api/admin/messages/{id}")))
        .bearer_auth(tokens::token_for("ana", "ana"))
        .send()
        .await
        .unwrap();
    assert_eq!(as_a_user.status(), 401);

    let body = json!({"moderator": "mo", "reason": "spam"});
    let (status, deleted) = admin(
        &app,
        "DELETE",
        &format!("/api/admin/messages/{id}"),
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted, json!({"id": id, "roomId": code, "seq": 2}));
    for ws in [&mut ana, &mut ben] {
        let told = ws.recv_type("room:deleted").await;
        assert_eq!(
            told,
            json!({"type": "room:deleted", "code": code, "id": id, "seq": 2})
        );
    }
    assert_eq!(history(&mut ben, &code).await, ["keep me"]);
    // The number is not given again: the next message is 3.
    assert_eq!(chat(&mut ana, &code, "after").await["seq"], 3);
    assert_ne!(first["id"], second["id"]);

    let (status, again) = admin(&app, "DELETE", &format!("/api/admin/messages/{id}"), None).await;
    assert_eq!(
        (status, &again["error"]["code"]),
        (404, &json!("not_found"))
    );

    let entries = audit(&app).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert_eq!(
        (
            &entry["moderator"],
            &entry["action"],
            &entry["target"],
            &entry["reason"]
        ),
        (
            &json!("mo"),
            &json!("delete_message"),
            &json!(id),
            &json!("spam")
        )
    );
    app.shutdown().await;
}

async fn a_removed_member_is_told_and_receives_the_room_no_more(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let (mut ana, mut ben, code) = room_of_two(&app).await;
    let path = format!("/api/admin/rooms/{code}/members/ben");
    let (status, body) = admin(&app, "DELETE", &path, None).await;
    assert_eq!(status, 204, "{body}");
    for ws in [&mut ana, &mut ben] {
        let told = ws.recv_type("room:user_left").await;
        assert_eq!(
            told,
            json!({"type": "room:user_left", "code": code, "userId": "ben", "removed": true})
        );
    }
    chat(&mut ana, &code, "ben is gone").await;
    ben.assert_silent_for(Duration::from_millis(300)).await;
    ben.send_json(json!({"type": "room:chat", "code": code, "message": "still here?"}))
        .await;
    let refused = ben.recv_type("room:error").await;
    assert_eq!(refused["error"], "not a member of this room", "{refused}");

    // Removed is not banned: ben may join again.
    assert_eq!(join(&mut ben, &code).await["type"], "room:joined");
    let (status, _) = admin(
        &app,
        "DELETE",
        &format!("/api/admin/rooms/{code}/members/nobody"),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = admin(&app, "DELETE", "/api/admin/rooms/NOROOM/members/ben", None).await;
    assert_eq!(status, 404);
    let entries = audit(&app).await;
    assert_eq!(entries[0]["action"], "remove_member");
    assert_eq!(entries[0]["target"], format!("{code}/ben"));
    assert_eq!(entries[0]["moderator"], "service key");
    app.shutdown().await;
}

async fn a_closed_room_has_no_members_and_takes_no_one(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let (mut ana, mut ben, code) = room_of_two(&app).await;
    let path = format!("/api/admin/rooms/{code}/close");
    let (status, body) = admin(&app, "POST", &path, Some(json!({"reason": "raid"}))).await;
    assert_eq!(status, 204, "{body}");
    for ws in [&mut ana, &mut ben] {
        assert_eq!(
            ws.recv_type("room:closed").await,
            json!({"type": "room:closed", "code": code})
        );
    }
    let refused = join(&mut ben, &code).await;
    assert_eq!(
        (refused["type"].as_str(), refused["error"].as_str()),
        (Some("room:error"), Some("room is closed")),
        "{refused}"
    );
    ana.send_json(json!({"type": "room:chat", "code": code, "message": "hello?"}))
        .await;
    assert_eq!(
        ana.recv_type("room:error").await["error"],
        "not a member of this room"
    );
    ben.assert_silent_for(Duration::from_millis(300)).await;

    let (status, again) = admin(&app, "POST", &path, None).await;
    assert_eq!(
        (status, &again["error"]["message"]),
        (409, &json!("room is closed"))
    );
    let (status, _) = admin(&app, "POST", "/api/admin/rooms/NOROOM/close", None).await;
    assert_eq!(status, 404);
    let entries = audit(&app).await;
    assert_eq!(
        (
            &entries[0]["action"],
            &entries[0]["target"],
            &entries[0]["reason"]
        ),
        (&json!("close_room"), &json!(code), &json!("raid"))
    );
    app.shutdown().await;
}

async fn a_ban_closes_the_users_sockets_and_refuses_their_tokens(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let (mut ana, mut ben, code) = room_of_two(&app).await;
    let mut ben_notifications = app.qf_socket("ben", "/qf/notifications/ws").await;
    let mut ben_online = app.qf_socket("ben", "/qf/users/online/ws").await;
    ben_online.recv_json().await;
    let ben_jwt = tokens::token_for("ben", "ben");

    let (status, ban) = admin(
        &app,
        "PUT",
        "/api/admin/bans/ben",
        Some(json!({"moderator": "mo", "reason": "abuse"})),
    )
    .await;
    assert_eq!(status, 200, "{ban}");
    assert_eq!(
        (&ban["userId"], &ban["reason"], &ban["moderator"]),
        (&json!("ben"), &json!("abuse"), &json!("mo"))
    );
    assert_eq!(ben.recv_close_code().await, 1008);
    assert_eq!(ben_notifications.recv_close_code().await, 4003);
    assert_eq!(ben_online.recv_close_code().await, 4003);

    // Every door refuses the same token from now on.
    let mut again = app.ws().await;
    again
        .send_json(json!({"type": "auth", "token": ben_jwt}))
        .await;
    let refused = again.recv_type("auth:error").await;
    assert_eq!(refused["error"], "this account is banned");
    let listed = app.get_as("ben", "/api/notifications").await;
    assert_eq!(listed.status(), 403);
    let qf = app
        .http
        .get(app.http_url("/qf/auth/ws-token"))
        .bearer_auth(&ben_jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(qf.status(), 403);
    // A /qf token issued before the ban opens nothing either.
    let (status, _) = admin(&app, "DELETE", "/api/admin/bans/ben", None).await;
    assert_eq!(status, 204);
    let early_token = app.qf_token("ben").await;
    admin(&app, "PUT", "/api/admin/bans/ben", None).await;
    let mut late =
        WsClient::connect(&app.ws_url(&format!("/qf/notifications/ws?token={early_token}"))).await;
    assert_eq!(late.recv_close_code().await, 4003);

    // The others carry on.
    chat(&mut ana, &code, "still talking").await;
    let (status, bans) = admin(&app, "GET", "/api/admin/bans", None).await;
    assert_eq!(status, 200);
    assert_eq!(bans["bans"].as_array().unwrap().len(), 1, "{bans}");

    // Lifted, the same token works again, and ben is still a member.
    let (status, _) = admin(&app, "DELETE", "/api/admin/bans/ben", None).await;
    assert_eq!(status, 204);
    let (status, _) = admin(&app, "DELETE", "/api/admin/bans/ben", None).await;
    assert_eq!(status, 404);
    let mut back = app.user("ben").await;
    assert_eq!(join(&mut back, &code).await["type"], "room:joined");

    let actions: Vec<Value> = audit(&app)
        .await
        .iter()
        .map(|e| e["action"].clone())
        .collect();
    assert_eq!(actions, ["unban", "ban", "unban", "ban"]);
    app.shutdown().await;
}

async fn moderation_requests_are_checked(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let long = "x".repeat(confab_server::core::MAX_REASON_CHARS + 1);
    let (status, body) = admin(
        &app,
        "PUT",
        "/api/admin/bans/ben",
        Some(json!({"reason": long})),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("bad_request")),
        "{body}"
    );
    let form = app
        .http
        .put(app.http_url("/api/admin/bans/ben"))
        .header("x-api-key", TEST_API_KEY)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("reason=x")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 400);
    let at_limit = "u".repeat(confab_server::core::MAX_USER_ID_CHARS);
    let (status, _) = admin(&app, "PUT", &format!("/api/admin/bans/{at_limit}x"), None).await;
    assert_eq!(status, 400, "a user id one past the limit");
    let (status, _) = admin(&app, "PUT", &format!("/api/admin/bans/{at_limit}"), None).await;
    assert_eq!(status, 200, "a user id at the limit");
    let (status, _) = admin(&app, "DELETE", &format!("/api/admin/bans/{at_limit}"), None).await;
    assert_eq!(status, 204);
    let (status, _) = admin(&app, "GET", "/api/admin/audit?limit=0", None).await;
    assert_eq!(status, 400);
    let (status, _) = admin(&app, "GET", "/api/admin/audit?limit=501", None).await;
    assert_eq!(status, 400);
    // Nothing refused was done, and nothing was logged.
    let (_, bans) = admin(&app, "GET", "/api/admin/bans", None).await;
    assert_eq!(bans, json!({"bans": []}));
    let actions: Vec<Value> = audit(&app)
        .await
        .iter()
        .map(|e| e["action"].clone())
        .collect();
    assert_eq!(actions, ["unban", "ban"], "only the two that took effect");
    app.shutdown().await;
}

macro_rules! on_both_databases {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::Backend::Postgres).await;
                }
            )*
        }
    };
}

on_both_databases!(
    a_deleted_message_leaves_history_and_every_member_is_told,
    a_removed_member_is_told_and_receives_the_room_no_more,
    a_closed_room_has_no_members_and_takes_no_one,
    a_ban_closes_the_users_sockets_and_refuses_their_tokens,
    moderation_requests_are_checked,
);

/// Socket.IO clients of contracts 001, 002 and 004 are told, and a ban disconnects them.
#[tokio::test]
async fn socket_io_clients_are_told_and_banned() {
    let app = crate::common::spawn_app_with(|c| {
        c.anonymous = confab_server::config::Anonymous::Allow;
    })
    .await;
    crate::socketio::run_node_tests_with(&app, "moderation.test.mjs", &[]).await;
    app.shutdown().await;
}
