//! Contract 000 at `/ws`, end to end with real WebSocket clients, on SQLite and PostgreSQL.

use std::time::Duration;

use crate::common::{
    spawn_app_on, spawn_app_on_with, spawn_app_with, tokens, Backend, TestApp, WsClient,
};
use confab_server::{core::MAX_ROOMS_PER_USER, dialects::native::MAX_POSTS_IN_FLIGHT};
use confab_shared::limits::{is_room_code, DEFAULT_MAX_USERS, MAX_CHAT_CHARS, MAX_USERS_CAP};
use futures_util::StreamExt;
use serde_json::{json, Value};

/// Creates a room as `ws` and returns its code.
async fn create_room(ws: &mut WsClient, max_users: Option<u32>) -> String {
    let mut request = json!({"type": "room:create", "roomType": "trivia"});
    if let Some(max) = max_users {
        request["maxUsers"] = json!(max);
    }
    ws.send_json(request).await;
    let created = ws.recv_json().await;
    assert_eq!(created["type"], "room:created", "{created}");
    created["room"]["code"].as_str().unwrap().to_owned()
}

/// Joins `code` as `ws`, returning `room:joined` (and checking `room:history` follows).
async fn join(ws: &mut WsClient, code: &str) -> (Value, Value) {
    ws.send_json(json!({"type": "room:join", "code": code}))
        .await;
    let joined = ws.recv_json().await;
    assert_eq!(joined["type"], "room:joined", "{joined}");
    let history = ws.recv_json().await;
    assert_eq!(history["type"], "room:history", "{history}");
    (joined, history)
}

/// Ana creates a room, Ben joins it, and Ana has seen him arrive.
async fn ana_and_ben_in_a_room(app: &TestApp) -> (WsClient, WsClient, String) {
    let mut ana = app.user("ana").await;
    let code = create_room(&mut ana, None).await;
    let mut ben = app.user("ben").await;
    join(&mut ben, &code).await;
    ana.recv_type("room:user_joined").await;
    (ana, ben, code)
}

async fn chat(ws: &mut WsClient, code: &str, message: &str) {
    ws.send_json(json!({"type": "room:chat", "code": code, "message": message}))
        .await;
}

async fn expect_room_error(ws: &mut WsClient, contains: &str) -> Value {
    let reply = ws.recv_json().await;
    assert_eq!(reply["type"], "room:error", "{reply}");
    let text = reply["error"].as_str().unwrap();
    assert!(text.contains(contains), "expected {contains:?} in {text:?}");
    reply
}

async fn auth_ok_echoes_the_claims(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let mut ws = app.ws().await;
    let exp = tokens::now_secs() + 600;
    // Fallback claim names: `name` for the username, `picture` for the avatar.
    let token = tokens::hs256(
        json!({"sub": "u1", "name": "Ana", "picture": "https://img/a.png",
                                     "iss": "https://issuer.example", "exp": exp}),
    );
    ws.send_json(json!({"type": "auth", "userId": "u1", "token": token}))
        .await;
    assert_eq!(
        ws.recv_json().await,
        json!({"type": "auth:ok", "userId": "u1", "username": "Ana", "imageUrl": "https://img/a.png",
               "issuer": "https://issuer.example", "exp": exp})
    );
    // Then the current room state: the lobby, as the user is in no room.
    assert_eq!(
        ws.recv_json().await,
        json!({"type": "room:state", "room": {"state": "lobby"}})
    );

    // Missing profile claims are empty strings.
    let mut bare = app.ws().await;
    bare.send_json(
        json!({"type": "auth", "token": tokens::hs256(json!({"sub": "u2", "exp": exp}))}),
    )
    .await;
    let ok = bare.recv_json().await;
    assert_eq!(
        (
            ok["username"].as_str(),
            ok["imageUrl"].as_str(),
            ok["issuer"].as_str()
        ),
        (Some(""), Some(""), Some(""))
    );
    app.shutdown().await;
}

async fn bad_tokens_get_auth_error_and_the_socket_stays_usable(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let mut ws = app.ws().await;
    let now = tokens::now_secs();
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": "u1", "exp": now + 600}),
        &jsonwebtoken::EncodingKey::from_secret(b"some-other-secret-some-other-secret"),
    )
    .unwrap();
    for (token, user_id, expected) in [
        ("not-a-jwt".to_owned(), None, "invalid token"),
        (forged, None, "invalid token"),
        (
            tokens::hs256(json!({"sub": "u1", "exp": now - 60})),
            None,
            "token expired",
        ),
        (
            tokens::hs256(json!({"exp": now + 60})),
            None,
            "invalid token",
        ),
        (
            tokens::token_for("u1", "Ana"),
            Some("someone-else"),
            "userId does not match",
        ),
    ] {
        let mut request = json!({"type": "auth", "token": token});
        if let Some(user_id) = user_id {
            request["userId"] = json!(user_id);
        }
        ws.send_json(request).await;
        let reply = ws.recv_json().await;
        assert_eq!(reply["type"], "auth:error", "{reply}");
        assert!(
            reply["error"].as_str().unwrap().contains(expected),
            "{reply}"
        );
    }
    // Still unauthenticated, still usable.
    ws.send_json(json!({"type": "room:create", "roomType": "trivia"}))
        .await;
    expect_room_error(&mut ws, "not authenticated").await;
    ws.send_json(json!({"type": "ping"})).await;
    assert_eq!(
        ws.recv_json().await,
        json!({"type": "room:state", "room": {"state": "lobby"}})
    );
    app.shutdown().await;
}

async fn a_configured_issuer_is_enforced(backend: Backend) {
    let app = spawn_app_on_with(backend, |c| {
        c.jwt_issuer = Some("https://issuer.example".into())
    })
    .await;
    let mut ws = app.ws().await;
    let wrong = tokens::hs256(
        json!({"sub": "u1", "iss": "https://evil.example", "exp": tokens::now_secs() + 60}),
    );
    ws.send_json(json!({"type": "auth", "token": wrong})).await;
    assert_eq!(
        ws.recv_json().await,
        json!({"type": "auth:error", "error": "token issuer not accepted"})
    );
    ws.send_json(json!({"type": "auth", "token": tokens::token_for("u1", "Ana")}))
        .await;
    assert_eq!(ws.recv_json().await["type"], "auth:ok");
    app.shutdown().await;
}

async fn room_create_validates_and_makes_the_creator_a_member(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let mut ws = app.user("host").await;
    ws.send_json(json!({"type": "room:create", "roomType": "trivia"}))
        .await;
    let created = ws.recv_json().await;
    assert_eq!(created["type"], "room:created");
    let room = &created["room"];
    assert!(is_room_code(room["code"].as_str().unwrap()), "{room}");
    assert_eq!(room["maxUsers"], DEFAULT_MAX_USERS);
    assert_eq!(
        (
            room["state"].as_str(),
            room["hostId"].as_str(),
            room["roomType"].as_str()
        ),
        (Some("lobby"), Some("host"), Some("trivia"))
    );
    assert_eq!(room["gameState"], Value::Null);

    for max in [0, MAX_USERS_CAP + 1] {
        ws.send_json(json!({"type": "room:create", "roomType": "trivia", "maxUsers": max}))
            .await;
        expect_room_error(&mut ws, "maximum number of users").await;
    }
    ws.send_json(json!({"type": "room:create", "roomType": "trivia", "maxUsers": MAX_USERS_CAP}))
        .await;
    assert_eq!(ws.recv_json().await["room"]["maxUsers"], MAX_USERS_CAP);
    for room_type in ["  ", "tri\u{0}via", "tri\nvia"] {
        ws.send_json(json!({"type": "room:create", "roomType": room_type}))
            .await;
        expect_room_error(&mut ws, "room type").await;
    }

    // The creator is a member: the room's state is theirs to read.
    let code = room["code"].as_str().unwrap();
    ws.send_json(json!({"type": "room:state", "code": code}))
        .await;
    assert_eq!(ws.recv_json().await["room"]["code"], code);
    app.shutdown().await;
}

async fn join_gives_members_and_history_and_tells_the_others(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let mut host = app.user("host").await;
    let code = create_room(&mut host, Some(2)).await;
    chat(&mut host, &code, "before you came").await;
    host.recv_type("room:chat").await;

    let mut guest = app.user("guest").await;
    let (joined, history) = join(&mut guest, &code).await;
    let users: Vec<&str> = joined["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userId"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["host", "guest"]);
    assert_eq!(joined["users"][0]["username"], "host");
    assert_eq!(
        joined["users"][0]["imageUrl"],
        "https://img.example/host.png"
    );
    assert_eq!(joined["users"][0]["online"], true);
    assert_eq!(history["messages"].as_array().unwrap().len(), 1);
    assert_eq!(history["messages"][0]["message"], "before you came");

    let announced = host.recv_json().await;
    assert_eq!(announced["type"], "room:user_joined");
    assert_eq!(
        (
            announced["code"].as_str(),
            announced["user"]["userId"].as_str()
        ),
        (Some(code.as_str()), Some("guest"))
    );

    // Joining twice is harmless and announces nothing.
    join(&mut guest, &code).await;
    host.assert_silent_for(Duration::from_millis(200)).await;

    // Unknown and full rooms are refused.
    guest
        .send_json(json!({"type": "room:join", "code": "ZZZZ99"}))
        .await;
    assert_eq!(
        expect_room_error(&mut guest, "room not found").await["code"],
        "ZZZZ99"
    );
    let mut third = app.user("third").await;
    third
        .send_json(json!({"type": "room:join", "code": code}))
        .await;
    expect_room_error(&mut third, "room is full").await;
    app.shutdown().await;
}

async fn chat_is_trimmed_stored_and_broadcast_to_every_member(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let (mut ana, mut ben, code) = ana_and_ben_in_a_room(&app).await;

    chat(&mut ana, &code, "  hello ben \n").await;
    for ws in [&mut ana, &mut ben] {
        let message = ws.recv_json().await;
        assert_eq!(message["type"], "room:chat");
        assert_eq!(message["message"], "hello ben");
        assert_eq!(
            (
                message["code"].as_str(),
                message["from"].as_str(),
                message["username"].as_str()
            ),
            (Some(code.as_str()), Some("ana"), Some("ana"))
        );
        assert_eq!(message["imageUrl"], "https://img.example/ana.png");
        assert_eq!(message["seq"], 1);
        assert!(
            (message["ts"].as_i64().unwrap() - tokens::now_secs()).abs() <= 5,
            "ts is Unix seconds: {message}"
        );
    }

    // Length limits, at the edge.
    chat(&mut ben, &code, &"x".repeat(MAX_CHAT_CHARS)).await;
    assert_eq!(ben.recv_json().await["seq"], 2);
    assert_eq!(ana.recv_json().await["seq"], 2);
    chat(&mut ben, &code, &"x".repeat(MAX_CHAT_CHARS + 1)).await;
    expect_room_error(&mut ben, "limit is 1000").await;
    chat(&mut ben, &code, "   ").await;
    expect_room_error(&mut ben, "empty").await;
    ana.assert_silent_for(Duration::from_millis(200)).await;
    app.shutdown().await;
}

async fn non_members_can_do_nothing_in_a_room(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let mut member = app.user("member").await;
    let code = create_room(&mut member, None).await;
    let mut outsider = app.user("outsider").await;
    for request in [
        json!({"type": "room:chat", "code": code, "message": "let me in"}),
        json!({"type": "room:state", "code": code}),
        json!({"type": "room:start", "code": code, "gameState": {}}),
        json!({"type": "room:typing", "code": code, "typing": true}),
        json!({"type": "room:history", "code": code, "afterSeq": 0}),
        json!({"type": "room:leave", "code": code}),
    ] {
        outsider.send_json(request.clone()).await;
        expect_room_error(&mut outsider, "not a member").await;
    }
    member.assert_silent_for(Duration::from_millis(200)).await;
    app.shutdown().await;
}

async fn a_user_is_a_member_of_at_most_the_rooms_limit(backend: Backend) {
    // Hundreds of requests in a row: more than the message limits let through.
    let app = spawn_app_on_with(backend, |config| {
        config.message_rate = 10_000.0;
        config.message_burst = 10_000;
    })
    .await;
    // A room's creator is its first member, so two hosts make the rooms the joiner needs.
    let (mut first, mut second) = (app.user("host-1").await, app.user("host-2").await);
    let mut codes = Vec::new();
    for n in 0..=MAX_ROOMS_PER_USER {
        let host = if n % 2 == 0 { &mut first } else { &mut second };
        codes.push(create_room(host, None).await);
    }
    let mut joiner = app.user("joiner").await;
    for code in &codes[..MAX_ROOMS_PER_USER] {
        join(&mut joiner, code).await;
    }
    let one_too_many = &codes[MAX_ROOMS_PER_USER];
    joiner
        .send_json(json!({"type": "room:join", "code": one_too_many}))
        .await;
    expect_room_error(&mut joiner, "too many rooms").await;
    // The refused join left no membership behind: with one room left, it fits.
    joiner
        .send_json(json!({"type": "room:leave", "code": codes[0]}))
        .await;
    assert_eq!(joiner.recv_json().await["type"], "room:left");
    let (joined, _) = join(&mut joiner, one_too_many).await;
    assert_eq!(joined["room"]["code"], one_too_many.as_str());
    app.shutdown().await;
}

async fn start_stores_the_game_state_and_tells_every_member(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let (mut ana, mut ben, code) = ana_and_ben_in_a_room(&app).await;

    let game_state = json!({"round": 1, "deck": ["a", "b"], "scores": {"ana": 0}});
    ben.send_json(json!({"type": "room:start", "code": code, "gameState": game_state}))
        .await;
    for ws in [&mut ana, &mut ben] {
        let started = ws.recv_json().await;
        assert_eq!(started["type"], "room:started");
        assert_eq!(started["room"]["state"], "playing");
        assert_eq!(started["room"]["gameState"], game_state);
    }
    ana.send_json(json!({"type": "room:state", "code": code}))
        .await;
    assert_eq!(ana.recv_json().await["room"]["gameState"], game_state);
    ana.send_json(json!({"type": "room:start", "code": code, "gameState": {}}))
        .await;
    expect_room_error(&mut ana, "already started").await;
    app.shutdown().await;
}

async fn leave_ends_membership_and_tells_the_rest(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let (mut ana, mut ben, code) = ana_and_ben_in_a_room(&app).await;

    ben.send_json(json!({"type": "room:leave", "code": code}))
        .await;
    assert_eq!(
        ben.recv_json().await,
        json!({"type": "room:left", "code": code})
    );
    assert_eq!(
        ana.recv_json().await,
        json!({"type": "room:user_left", "code": code, "userId": "ben"})
    );

    chat(&mut ana, &code, "ben is gone").await;
    ana.recv_type("room:chat").await;
    ben.assert_silent_for(Duration::from_millis(200)).await;
    ben.send_json(json!({"type": "room:leave", "code": code}))
        .await;
    expect_room_error(&mut ben, "not a member").await;
    app.shutdown().await;
}

async fn room_state_and_ping_show_the_callers_room(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let mut ana = app.user("ana").await;
    ana.send_json(json!({"type": "room:state"})).await;
    assert_eq!(
        ana.recv_json().await,
        json!({"type": "room:state", "room": {"state": "lobby"}})
    );
    let code = create_room(&mut ana, Some(3)).await;
    for request in [
        json!({"type": "room:state"}),
        json!({"type": "ping"}),
        json!({"type": "room:state", "code": code}),
    ] {
        ana.send_json(request).await;
        let state = ana.recv_json().await;
        assert_eq!(state["type"], "room:state");
        assert_eq!(
            (
                state["room"]["code"].as_str(),
                state["room"]["maxUsers"].as_u64()
            ),
            (Some(code.as_str()), Some(3))
        );
    }
    // A new connection of the same user gets the room pushed right after auth.
    let mut again = app.ws().await;
    again
        .send_json(json!({"type": "auth", "token": tokens::token_for("ana", "ana")}))
        .await;
    assert_eq!(again.recv_json().await["type"], "auth:ok");
    assert_eq!(again.recv_json().await["room"]["code"], code);
    app.shutdown().await;
}

async fn typing_reaches_only_the_others_and_stops(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let (mut ana, mut ben, code) = ana_and_ben_in_a_room(&app).await;

    ana.send_json(json!({"type": "room:typing", "code": code, "typing": true}))
        .await;
    assert_eq!(
        ben.recv_json().await,
        json!({"type": "room:typing", "code": code, "userId": "ana", "username": "ana", "typing": true})
    );
    ana.send_json(json!({"type": "room:typing", "code": code, "typing": false}))
        .await;
    assert_eq!(ben.recv_json().await["typing"], false);
    ana.assert_silent_for(Duration::from_millis(200)).await;

    // Sending a message ends the indicator too.
    ana.send_json(json!({"type": "room:typing", "code": code, "typing": true}))
        .await;
    assert_eq!(ben.recv_json().await["typing"], true);
    chat(&mut ana, &code, "done typing").await;
    assert_eq!(ben.recv_json().await["typing"], false);
    assert_eq!(ben.recv_json().await["type"], "room:chat");
    app.shutdown().await;
}

async fn typing_expires_by_itself(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let (mut ana, mut ben, code) = ana_and_ben_in_a_room(&app).await;

    ana.send_json(json!({"type": "room:typing", "code": code, "typing": true}))
        .await;
    let started = std::time::Instant::now();
    assert_eq!(ben.recv_json().await["typing"], true);
    // Nothing within the TTL (5 s), then the stop.
    let stop = ben.recv_json_within(Duration::from_secs(8)).await;
    assert_eq!(stop["typing"], false);
    let after = started.elapsed();
    assert!(
        after >= Duration::from_millis(4_900) && after < Duration::from_millis(6_500),
        "expired after {after:?}"
    );
    app.shutdown().await;
}

async fn history_after_a_sequence_number_resumes_without_gaps(backend: Backend) {
    let app = spawn_app_on_with(backend, |c| c.message_rate = 1000.0).await;
    let mut ana = app.user("ana").await;
    let code = create_room(&mut ana, None).await;
    for i in 1..=5 {
        chat(&mut ana, &code, &format!("m{i}")).await;
        ana.recv_type("room:chat").await;
    }
    ana.send_json(json!({"type": "room:history", "code": code, "afterSeq": 2}))
        .await;
    let history = ana.recv_json().await;
    assert_eq!(history["type"], "room:history");
    let seqs: Vec<u64> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [3, 4, 5]);
    assert_eq!(history["messages"][0]["message"], "m3");
    app.shutdown().await;
}

async fn older_history_comes_a_page_at_a_time(backend: Backend) {
    let app = spawn_app_on_with(backend, |c| c.message_rate = 1000.0).await;
    let mut ana = app.user("ana").await;
    let code = create_room(&mut ana, None).await;
    for i in 1..=60 {
        chat(&mut ana, &code, &format!("m{i}")).await;
        ana.recv_type("room:chat").await;
    }
    let page = |history: &Value| -> Vec<u64> {
        history["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_u64().unwrap())
            .collect()
    };
    let mut ben = app.user("ben").await;
    ben.send_json(json!({"type": "room:join", "code": code}))
        .await;
    let joined = ben.recv_type("room:history").await;
    assert_eq!(page(&joined), (11..=60).collect::<Vec<_>>());
    assert!(joined.get("beforeSeq").is_none(), "{joined}");

    ben.send_json(json!({"type": "room:history", "code": code, "beforeSeq": 11}))
        .await;
    let older = ben.recv_json().await;
    assert_eq!(older["type"], "room:history");
    assert_eq!(older["beforeSeq"], 11);
    assert_eq!(page(&older), (1..=10).collect::<Vec<_>>());
    assert_eq!(older["messages"][0]["message"], "m1");
    ben.send_json(json!({"type": "room:history", "code": code, "beforeSeq": 1}))
        .await;
    assert_eq!(page(&ben.recv_json().await), Vec::<u64>::new());

    for request in [
        json!({"type": "room:history", "code": code}),
        json!({"type": "room:history", "code": code, "afterSeq": 1, "beforeSeq": 5}),
    ] {
        ben.send_json(request).await;
        expect_room_error(&mut ben, "either afterSeq or beforeSeq").await;
    }
    let mut outsider = app.user("outsider").await;
    outsider
        .send_json(json!({"type": "room:history", "code": code, "beforeSeq": 11}))
        .await;
    expect_room_error(&mut outsider, "not a member").await;
    app.shutdown().await;
}

async fn rooms_list_names_last_messages_and_unread_counts_per_user(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let mut ana = app.user("ana").await;
    ana.send_json(json!({"type": "room:create", "roomType": "chat", "name": "  Book club "}))
        .await;
    let created = ana.recv_type("room:created").await;
    assert_eq!(created["room"]["name"], "Book club", "{created}");
    let named = created["room"]["code"].as_str().unwrap().to_owned();
    let plain = create_room(&mut ana, None).await;
    let mut ben = app.user("ben").await;
    ben.send_json(json!({"type": "room:join", "code": named}))
        .await;
    ben.recv_type("room:history").await;
    for text in ["one", "two", "three"] {
        chat(&mut ben, &named, text).await;
        ben.recv_type("room:chat").await;
    }

    async fn list(ws: &mut WsClient) -> Vec<Value> {
        ws.send_json(json!({"type": "rooms:list"})).await;
        let list = ws.recv_type("rooms:list").await;
        list["rooms"].as_array().unwrap().clone()
    }
    let rooms = list(&mut ana).await;
    assert_eq!(rooms.len(), 2, "{rooms:?}");
    assert_eq!(rooms[0]["code"], named, "the most recently active first");
    assert_eq!(rooms[0]["name"], "Book club");
    assert_eq!(
        (rooms[0]["unread"].as_u64(), rooms[0]["lastSeq"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(rooms[0]["lastMessage"]["message"], "three");
    assert_eq!(rooms[0]["lastMessage"]["from"], "ben");
    assert_eq!(rooms[1]["code"], plain);
    assert!(rooms[1].get("lastMessage").is_none());

    // Read on one connection, the same count on every other of the user's, which are told.
    let mut ana_elsewhere = app.user("ana").await;
    ana.send_json(json!({"type": "room:read", "code": named, "seq": 2}))
        .await;
    for ws in [&mut ana_elsewhere, &mut ana] {
        assert_eq!(
            ws.recv_type("room:read").await,
            json!({"type": "room:read", "code": named, "seq": 2})
        );
    }
    let rooms = list(&mut ana_elsewhere).await;
    assert_eq!(rooms[0]["unread"], 1);
    assert_eq!(list(&mut ben).await[0]["unread"], 3, "ben has read nothing");

    ana.send_json(json!({"type": "room:read", "code": named, "seq": 9}))
        .await;
    expect_room_error(&mut ana, "past the room's newest message").await;
    let mut outsider = app.user("outsider").await;
    outsider
        .send_json(json!({"type": "room:read", "code": named, "seq": 1}))
        .await;
    expect_room_error(&mut outsider, "not a member").await;
    assert_eq!(list(&mut outsider).await.len(), 0);
    let long = "x".repeat(confab_shared::limits::MAX_ROOM_NAME_CHARS + 1);
    ana.send_json(json!({"type": "room:create", "roomType": "chat", "name": long}))
        .await;
    expect_room_error(&mut ana, "room name must be at most 100 characters").await;
    app.shutdown().await;
}

async fn rooms_and_history_survive_a_restart(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let mut ana = app.user("ana").await;
    let code = create_room(&mut ana, None).await;
    chat(&mut ana, &code, "remember me").await;
    ana.recv_type("room:chat").await;
    ana.send_json(json!({"type": "room:start", "code": code, "gameState": {"round": 7}}))
        .await;
    ana.recv_type("room:started").await;

    let app = app.restart().await;
    // Still a member after reconnecting: the room and its history are there.
    let mut ana = app.ws().await;
    ana.send_json(json!({"type": "auth", "token": tokens::token_for("ana", "ana")}))
        .await;
    ana.recv_type("auth:ok").await;
    let state = ana.recv_json().await;
    assert_eq!(
        (
            state["room"]["code"].as_str(),
            state["room"]["state"].as_str()
        ),
        (Some(code.as_str()), Some("playing"))
    );
    assert_eq!(state["room"]["gameState"], json!({"round": 7}));
    let (_, history) = join(&mut ana, &code).await;
    assert_eq!(history["messages"][0]["message"], "remember me");
    // And a reconnected member receives the room again without re-joining.
    let mut ben = app.user("ben").await;
    join(&mut ben, &code).await;
    assert_eq!(
        ana.recv_type("room:user_joined").await["user"]["userId"],
        "ben"
    );
    app.shutdown().await;
}

async fn a_session_ends_when_its_token_expires(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let mut ws = app.ws().await;
    let token = tokens::hs256(json!({"sub": "brief", "exp": tokens::now_secs() + 1}));
    ws.send_json(json!({"type": "auth", "token": token})).await;
    ws.recv_type("auth:ok").await;
    ws.recv_type("room:state").await;
    // exp + the 2 s leeway: within about three seconds the socket is told.
    let expired = ws.recv_json_within(Duration::from_secs(5)).await;
    assert_eq!(
        expired,
        json!({"type": "auth:error", "error": "token expired"})
    );
    ws.send_json(json!({"type": "room:create", "roomType": "trivia"}))
        .await;
    expect_room_error(&mut ws, "not authenticated").await;
    app.shutdown().await;
}

async fn a_client_that_sends_too_fast_is_told_and_kept(backend: Backend) {
    let app = spawn_app_on_with(backend, |c| {
        c.message_burst = 5;
        c.message_rate = 0.5;
    })
    .await;
    let mut ws = app.ws().await;
    for _ in 0..5 {
        ws.send_json(json!({"type": "ping"})).await;
        assert_eq!(ws.recv_json().await["type"], "room:state");
    }
    ws.send_json(json!({"type": "ping"})).await;
    assert_eq!(
        ws.recv_json().await,
        json!({"type": "error", "error": "rate limit exceeded; slow down"})
    );
    app.shutdown().await;
}

async fn a_client_that_cannot_keep_up_is_cut_off_without_stalling_the_room(backend: Backend) {
    let app = spawn_app_on_with(backend, |c| {
        c.outbound_queue = 8;
        c.message_rate = 100_000.0;
        c.message_burst = 100_000;
    })
    .await;
    let mut sender = app.user("sender").await;
    let code = create_room(&mut sender, None).await;
    let mut slow = app.user("slow").await;
    join(&mut slow, &code).await;
    sender.recv_type("room:user_joined").await;
    let mut fast = app.user("fast").await;
    join(&mut fast, &code).await;
    sender.recv_type("room:user_joined").await;

    // The slow client stops reading; the sender floods the room until the slow client's
    // socket buffers and then its queue fill up. The fast member keeps up throughout.
    const FLOOD: u64 = 4000;
    let reader = tokio::spawn(async move {
        let mut last_seq = 0;
        while last_seq < FLOOD {
            let message = fast.recv_json().await;
            if message["type"] == "room:chat" {
                last_seq = message["seq"].as_u64().unwrap();
            }
        }
        last_seq
    });
    let body = "y".repeat(MAX_CHAT_CHARS);
    for _ in 0..FLOOD {
        chat(&mut sender, &code, &body).await;
        sender.recv_type("room:chat").await;
    }
    assert_eq!(
        reader.await.unwrap(),
        FLOOD,
        "the room kept flowing to members who read"
    );

    // The slow client was cut off: with a 1013 close frame when its buffers had room for
    // one, else by dropping the connection. It never receives the whole flood.
    let mut received = 0;
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(10), slow.stream.next())
            .await
            .expect("the slow client is cut off")
        {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(_))) => received += 1,
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => {
                break frame.map(|f| u16::from(f.code))
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break None,
        }
    };
    assert!(end.is_none_or(|code| code == 1013), "closed with {end:?}");
    assert!(
        received < FLOOD,
        "the slow client should not have received everything"
    );
    app.shutdown().await;
}

/// The `room:chat` events `ws` receives until it has `count`, skipping anything else.
async fn chats(ws: &mut WsClient, count: usize) -> Vec<Value> {
    let mut chats = Vec::with_capacity(count);
    while chats.len() < count {
        let event = ws.recv_json().await;
        if event["type"] == "room:chat" {
            chats.push(event);
        }
    }
    chats
}

/// A sender that does not wait between messages has several being stored at once, up to a
/// bound; they still arrive in the order sent, numbered without gaps, and a request sent
/// after them is answered after them.
async fn a_burst_of_chat_arrives_in_order_and_before_the_next_answer(backend: Backend) {
    let burst = MAX_POSTS_IN_FLIGHT * 3 + 1;
    let app = spawn_app_on_with(backend, |c| c.message_burst = burst as u32 + 10).await;
    let (mut ana, mut ben, code) = ana_and_ben_in_a_room(&app).await;

    for i in 0..burst {
        chat(&mut ana, &code, &format!("m{i}")).await;
    }
    ana.send_json(json!({"type": "ping"})).await;
    for ws in [&mut ben, &mut ana] {
        let got = chats(ws, burst).await;
        for (i, event) in got.iter().enumerate() {
            assert_eq!(event["message"], format!("m{i}"), "{event}");
            assert_eq!(event["seq"], i + 1, "{event}");
        }
    }
    let answer = ana.recv_json().await;
    assert_eq!(answer["type"], "room:state", "{answer}");
    ben.assert_silent_for(Duration::from_millis(200)).await;
    app.shutdown().await;
}

/// Messages still being stored when their sender goes away are broadcast all the same.
async fn chat_sent_just_before_closing_still_reaches_the_room(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let (mut ana, mut ben, code) = ana_and_ben_in_a_room(&app).await;
    const SENT: usize = 20;
    for i in 0..SENT {
        chat(&mut ana, &code, &format!("last words {i}")).await;
    }
    ana.stream.close(None).await.unwrap();
    drop(ana);
    let got = chats(&mut ben, SENT).await;
    assert_eq!(got[SENT - 1]["message"], format!("last words {}", SENT - 1));
    assert_eq!(got[SENT - 1]["seq"], SENT);
    app.shutdown().await;
}

macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $case() { super::$case(super::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $case() { super::$case(super::Backend::Postgres).await } )*
        }
    };
}

on_both_backends!(
    auth_ok_echoes_the_claims,
    bad_tokens_get_auth_error_and_the_socket_stays_usable,
    a_configured_issuer_is_enforced,
    room_create_validates_and_makes_the_creator_a_member,
    join_gives_members_and_history_and_tells_the_others,
    chat_is_trimmed_stored_and_broadcast_to_every_member,
    non_members_can_do_nothing_in_a_room,
    a_user_is_a_member_of_at_most_the_rooms_limit,
    start_stores_the_game_state_and_tells_every_member,
    leave_ends_membership_and_tells_the_rest,
    room_state_and_ping_show_the_callers_room,
    typing_reaches_only_the_others_and_stops,
    typing_expires_by_itself,
    history_after_a_sequence_number_resumes_without_gaps,
    older_history_comes_a_page_at_a_time,
    rooms_list_names_last_messages_and_unread_counts_per_user,
    rooms_and_history_survive_a_restart,
    a_session_ends_when_its_token_expires,
    a_client_that_sends_too_fast_is_told_and_kept,
    a_client_that_cannot_keep_up_is_cut_off_without_stalling_the_room,
    a_burst_of_chat_arrives_in_order_and_before_the_next_answer,
    chat_sent_just_before_closing_still_reaches_the_room,
);

#[tokio::test]
async fn a_connection_that_never_authenticates_is_closed_at_the_deadline() {
    let app = spawn_app_with(|config| config.auth_deadline_secs = 1).await;
    let mut idle = app.ws().await;
    let mut ana = app.user("ana").await;
    let opened = std::time::Instant::now();
    assert_eq!(idle.recv_close_code().await, 1008);
    assert!(
        opened.elapsed() >= Duration::from_millis(900),
        "not before the deadline: {:?}",
        opened.elapsed()
    );
    // A connection that signed in in time stays open past it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    ana.send_json(json!({"type": "ping"})).await;
    assert_eq!(ana.recv_json().await["type"], "room:state");
    app.shutdown().await;
}
