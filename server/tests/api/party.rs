//! Party sessions over `/qf`: REST lifecycle, the socket's snapshot and events, close codes,
//! host handoff, racing joins and persistence.

use std::sync::Arc;

use crate::common::{
    assert_refused_frames_close, spawn_app_with, tokens, Received, TestApp, WsClient,
};
use serde_json::{json, Value};

async fn call(app: &TestApp, user: &str, path: &str, body: Option<Value>) -> reqwest::Response {
    app.post_as(user, path, body).await
}

async fn ok(app: &TestApp, user: &str, path: &str, body: Option<Value>) -> Value {
    let response = call(app, user, path, body).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{user} {path}: {status} {text}");
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    }
}

async fn status(app: &TestApp, user: &str, path: &str, body: Option<Value>) -> u16 {
    call(app, user, path, body).await.status().as_u16()
}

async fn party_socket(app: &TestApp, user: &str, session_id: &str) -> WsClient {
    app.qf_socket(user, &format!("/qf/party/{session_id}/ws?context=lobby"))
        .await
}

async fn close_code(ws: &mut WsClient) -> (u16, String) {
    match ws.receive().await {
        Received::Closed(Some(frame)) => (u16::from(frame.code), frame.reason.to_string()),
        other => panic!("expected a close, got {other:?}"),
    }
}

/// Reads until a message of `kind` arrives.
async fn next(ws: &mut WsClient, kind: &str) -> Value {
    ws.recv_type(kind).await
}

#[tokio::test]
async fn three_players_from_creation_to_completion() {
    let app = spawn_app_with(|_| {}).await;
    let created = ok(&app, "ana", "/qf/party", Some(json!({"max_players": 4}))).await;
    let id = created["session_id"].as_str().unwrap().to_owned();
    let code = created["code"].as_str().unwrap().to_owned();
    assert_eq!(
        (created["host_id"].as_str(), created["phase"].as_str()),
        (Some("ana"), Some("lobby"))
    );
    assert_eq!(
        created["players"],
        json!([{"user_id": "ana", "username": "ana", "ready": false, "is_host": true}])
    );

    let mut ana = party_socket(&app, "ana", &id).await;
    let snapshot = next(&mut ana, "session_update").await;
    assert_eq!(
        (snapshot["code"].as_str(), snapshot["min_players"].as_u64()),
        (Some(code.as_str()), Some(2))
    );

    ok(&app, "ben", "/qf/party/join", Some(json!({"code": code}))).await;
    let joined = next(&mut ana, "player_joined").await;
    assert_eq!(
        (
            joined["session_id"].as_str(),
            joined["player"]["user_id"].as_str()
        ),
        (Some(id.as_str()), Some("ben"))
    );
    ok(&app, "carl", "/qf/party/join", Some(json!({"code": code}))).await;
    assert_eq!(
        next(&mut ana, "player_joined").await["player"]["user_id"],
        "carl"
    );
    let mut ben = party_socket(&app, "ben", &id).await;
    let mut carl = party_socket(&app, "carl", &id).await;
    for ws in [&mut ben, &mut carl] {
        assert_eq!(
            next(ws, "session_update").await["players"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
    }

    // Not everyone is ready, and only the host may start.
    assert_eq!(
        status(&app, "ana", &format!("/qf/party/{id}/start"), None).await,
        409
    );
    for who in ["ana", "ben", "carl"] {
        ok(
            &app,
            who,
            &format!("/qf/party/{id}/ready"),
            Some(json!({"ready": true})),
        )
        .await;
        let ready = next(&mut ana, "player_ready").await;
        assert_eq!(
            (ready["user_id"].as_str(), ready["ready"].as_bool()),
            (Some(who), Some(true))
        );
    }
    assert_eq!(
        status(&app, "ben", &format!("/qf/party/{id}/start"), None).await,
        403
    );
    let started = ok(&app, "ana", &format!("/qf/party/{id}/start"), None).await;
    assert_eq!(started["phase"], "playing");
    for ws in [&mut ana, &mut ben, &mut carl] {
        let transition = next(ws, "phase_transition").await;
        assert_eq!(
            (transition["from"].as_str(), transition["to"].as_str()),
            (Some("lobby"), Some("playing"))
        );
        assert_eq!(next(ws, "session_started").await["phase"], "playing");
    }
    // Started sessions take nobody new.
    assert_eq!(
        status(&app, "dave", "/qf/party/join", Some(json!({"code": code}))).await,
        409
    );

    ok(
        &app,
        "ana",
        &format!("/qf/party/{id}/phase"),
        Some(json!({"phase": "voting"})),
    )
    .await;
    ok(
        &app,
        "ana",
        &format!("/qf/party/{id}/progress"),
        Some(json!({"progress": {"round": 2, "of": 5}})),
    )
    .await;
    ok(
        &app,
        "ana",
        &format!("/qf/party/{id}/host-ping"),
        Some(json!({"message": "hurry up"})),
    )
    .await;
    assert_eq!(
        status(
            &app,
            "carl",
            &format!("/qf/party/{id}/phase"),
            Some(json!({"phase": "x"}))
        )
        .await,
        403
    );
    for ws in [&mut ana, &mut ben, &mut carl] {
        let transition = next(ws, "phase_transition").await;
        assert_eq!(
            (transition["from"].as_str(), transition["to"].as_str()),
            (Some("playing"), Some("voting"))
        );
        assert_eq!(
            next(ws, "progress_update").await["progress"],
            json!({"round": 2, "of": 5})
        );
        let ping = next(ws, "host_ping").await;
        assert_eq!(
            (ping["from_username"].as_str(), ping["message"].as_str()),
            (Some("ana"), Some("hurry up"))
        );
    }

    let done = ok(&app, "ana", &format!("/qf/party/{id}/complete"), None).await;
    assert_eq!(done["phase"], "completed");
    for ws in [&mut ana, &mut ben, &mut carl] {
        assert_eq!(next(ws, "phase_transition").await["to"], "completed");
        assert_eq!(
            next(ws, "session_completed").await["session_id"],
            id.as_str()
        );
    }
    assert_eq!(
        status(
            &app,
            "ana",
            &format!("/qf/party/{id}/phase"),
            Some(json!({"phase": "again"}))
        )
        .await,
        409
    );
    app.shutdown().await;
}

#[tokio::test]
async fn party_sockets_close_with_documented_codes() {
    let app = spawn_app_with(|_| {}).await;
    let id = ok(&app, "ana", "/qf/party", None).await["session_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut no_token =
        WsClient::connect(&app.ws_url(&format!("/qf/party/{id}/ws?context=lobby"))).await;
    assert_eq!(
        close_code(&mut no_token).await,
        (1008, "missing token".into())
    );
    let mut unknown = party_socket(&app, "ana", "no-such-session").await;
    assert_eq!(
        close_code(&mut unknown).await,
        (4001, "session not found".into())
    );
    let mut outsider = party_socket(&app, "eve", &id).await;
    assert_eq!(
        close_code(&mut outsider).await,
        (4403, "not a player in this session".into())
    );

    // The last player out ends the session; its sockets are refused from then on.
    assert_eq!(
        status(&app, "ana", &format!("/qf/party/{id}/leave"), None).await,
        204
    );
    let mut ended = party_socket(&app, "ana", &id).await;
    assert_eq!(close_code(&mut ended).await, (4002, "session ended".into()));
    app.shutdown().await;
}

#[tokio::test]
async fn a_leaving_host_hands_over_and_the_leavers_socket_closes() {
    let app = spawn_app_with(|_| {}).await;
    let created = ok(&app, "ana", "/qf/party", None).await;
    let (id, code) = (
        created["session_id"].as_str().unwrap().to_owned(),
        created["code"].as_str().unwrap().to_owned(),
    );
    for who in ["ben", "carl"] {
        ok(&app, who, "/qf/party/join", Some(json!({"code": code}))).await;
    }
    let mut ana = party_socket(&app, "ana", &id).await;
    next(&mut ana, "session_update").await;
    let mut carl = party_socket(&app, "carl", &id).await;
    next(&mut carl, "session_update").await;

    assert_eq!(
        status(&app, "ana", &format!("/qf/party/{id}/leave"), None).await,
        204
    );
    let left = next(&mut carl, "player_left").await;
    assert_eq!(
        (left["user_id"].as_str(), left["host_id"].as_str()),
        (Some("ana"), Some("ben")),
        "the next to have joined hosts"
    );
    let update = next(&mut carl, "session_update").await;
    assert_eq!(update["host_id"], "ben");
    assert_eq!(update["players"].as_array().unwrap().len(), 2);
    assert_eq!(next(&mut ana, "player_left").await["user_id"], "ana");
    assert_eq!(ana.recv_close_code().await, 1000);

    // The new host has the host's rights; the old one has none.
    assert_eq!(
        status(&app, "ben", &format!("/qf/party/{id}/host-ping"), None).await,
        204
    );
    assert_eq!(
        status(&app, "ana", &format!("/qf/party/{id}/host-ping"), None).await,
        403
    );
    assert_eq!(
        status(&app, "ana", &format!("/qf/party/{id}/leave"), None).await,
        403
    );
    app.shutdown().await;
}

/// A body that may be left out is read as JSON when there is one: a form post (as another
/// site's page can send with the user's cookie) is refused, not taken for "no body".
#[tokio::test]
async fn a_body_that_is_not_json_is_refused_not_read_as_empty() {
    let app = spawn_app_with(|_| {}).await;
    for (content_type, body) in [
        ("application/x-www-form-urlencoded", "max_players=4"),
        ("text/plain", "{\"max_players\": 4}"),
        ("multipart/form-data; boundary=x", "--x--"),
    ] {
        let response = app
            .http
            .post(app.http_url("/qf/party"))
            .bearer_auth(tokens::token_for("ana", "ana"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{content_type}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "bad_request", "{error}");
    }
    // No body, with no content type or a JSON one: the defaults.
    let created = ok(&app, "ana", "/qf/party", None).await;
    assert_eq!(created["players"].as_array().unwrap().len(), 1);
    let empty_json = app
        .http
        .post(app.http_url("/qf/party"))
        .bearer_auth(tokens::token_for("ben", "ben"))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(empty_json.status(), 201);
    app.shutdown().await;
}

#[tokio::test]
async fn creating_sessions_is_rate_limited_per_user() {
    use confab_server::dialects::channels::party::CREATED_BURST;
    let app = spawn_app_with(|_| {}).await;
    for _ in 0..CREATED_BURST {
        assert_eq!(status(&app, "ana", "/qf/party", None).await, 201);
    }
    let refused = call(&app, "ana", "/qf/party", None).await;
    assert_eq!(refused.status(), 429);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["code"], "rate_limited", "{error}");
    assert_eq!(
        status(&app, "ben", "/qf/party", None).await,
        201,
        "others are not limited"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn party_input_is_validated_with_json_errors() {
    let app = spawn_app_with(|_| {}).await;
    for body in [
        json!({"max_players": 1}),
        json!({"max_players": 17}),
        json!({"size": 4}),
    ] {
        let response = call(&app, "ana", "/qf/party", Some(body.clone())).await;
        assert_eq!(response.status(), 400, "{body}");
        assert!(response.json::<Value>().await.unwrap()["error"]["message"].is_string());
    }
    let created = ok(&app, "ana", "/qf/party", Some(json!({"max_players": 2}))).await;
    let (id, code) = (
        created["session_id"].as_str().unwrap().to_owned(),
        created["code"].as_str().unwrap().to_owned(),
    );
    assert_eq!(
        status(
            &app,
            "ben",
            "/qf/party/join",
            Some(json!({"code": "ZZZZZZ"}))
        )
        .await,
        404
    );
    assert_eq!(
        status(&app, "ben", "/qf/party/join", Some(json!({}))).await,
        400
    );
    ok(&app, "ben", "/qf/party/join", Some(json!({"code": code}))).await;
    ok(&app, "ben", "/qf/party/join", Some(json!({"code": code}))).await; // twice is harmless
    assert_eq!(
        status(&app, "carl", "/qf/party/join", Some(json!({"code": code}))).await,
        409,
        "full"
    );
    assert_eq!(
        status(
            &app,
            "carl",
            &format!("/qf/party/{id}/ready"),
            Some(json!({"ready": true}))
        )
        .await,
        403
    );
    for who in ["ana", "ben"] {
        ok(
            &app,
            who,
            &format!("/qf/party/{id}/ready"),
            Some(json!({"ready": true})),
        )
        .await;
    }
    ok(&app, "ana", &format!("/qf/party/{id}/start"), None).await;
    for phase in ["lobby", "completed", "ended", "", &"x".repeat(65)] {
        assert_eq!(
            status(
                &app,
                "ana",
                &format!("/qf/party/{id}/phase"),
                Some(json!({"phase": phase}))
            )
            .await,
            400,
            "{phase:?}"
        );
    }
    let unauthenticated = app
        .http
        .post(app.http_url("/qf/party"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    app.shutdown().await;
}

#[tokio::test]
async fn racing_joins_never_overfill_a_session_and_sessions_persist() {
    let app = Arc::new(spawn_app_with(|_| {}).await);
    let created = ok(&app, "host", "/qf/party", Some(json!({"max_players": 4}))).await;
    let (id, code) = (
        created["session_id"].as_str().unwrap().to_owned(),
        created["code"].as_str().unwrap().to_owned(),
    );
    let joins = futures_util::future::join_all((0..12).map(|i| {
        let (app, code) = (app.clone(), code.clone());
        async move {
            status(
                &app,
                &format!("player{i}"),
                "/qf/party/join",
                Some(json!({"code": code})),
            )
            .await
        }
    }))
    .await;
    assert_eq!(joins.iter().filter(|s| **s == 200).count(), 3);
    assert_eq!(joins.iter().filter(|s| **s == 409).count(), 9);

    let app = Arc::into_inner(app).unwrap().restart().await;
    let response = app
        .http
        .get(app.http_url(&format!("/qf/party/{id}")))
        .bearer_auth(tokens::token_for("host", "host"))
        .send()
        .await
        .unwrap();
    let session: Value = response.json().await.unwrap();
    assert_eq!(session["players"].as_array().unwrap().len(), 4, "{session}");
    assert_eq!(session["host_id"], "host");
    app.shutdown().await;
}

#[tokio::test]
async fn party_sockets_close_on_refused_frames_and_on_shutdown() {
    let app = spawn_app_with(|_| {}).await;
    let id = ok(&app, "ana", "/qf/party", None).await["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_refused_frames_close("/qf/party/{id}/ws", || async {
        let mut ws = party_socket(&app, "ana", &id).await;
        next(&mut ws, "session_update").await;
        ws
    })
    .await;

    let mut open = party_socket(&app, "ana", &id).await;
    next(&mut open, "session_update").await;
    let shutdown = tokio::spawn(app.shutdown());
    assert_eq!(close_code(&mut open).await.0, 1001);
    shutdown.await.unwrap();
}
