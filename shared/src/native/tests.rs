//! Round trips against the JSON shapes in contract 000, and decoder robustness.

use super::*;
use proptest::prelude::*;
use serde_json::json;

/// `value` decodes to `expected`, and `expected` encodes back to `value`.
fn assert_client_round_trip(value: Value, expected: ClientMessage) {
    let decoded = decode_client(&value.to_string()).expect("decodes");
    assert_eq!(decoded, expected);
    assert_eq!(serde_json::to_value(&expected).unwrap(), value);
}

fn assert_server_round_trip(value: Value, expected: ServerMessage) {
    let decoded = decode_server(&value.to_string()).expect("decodes");
    assert_eq!(decoded, expected);
    assert_eq!(serde_json::to_value(&expected).unwrap(), value);
}

fn sample_room() -> (Value, Room) {
    (
        json!({"code": "ABC234", "roomType": "trivia", "maxUsers": 4, "state": "lobby",
               "hostId": "u1", "gameState": null, "createdAt": 1700000000, "lastSeq": 0}),
        Room {
            code: "ABC234".into(),
            room_type: "trivia".into(),
            max_users: 4,
            state: RoomPhase::Lobby,
            host_id: "u1".into(),
            game_state: Value::Null,
            created_at: 1_700_000_000,
            last_seq: 0,
            name: String::new(),
        },
    )
}

#[test]
fn client_messages_of_contract_000() {
    assert_client_round_trip(
        json!({"type": "auth", "userId": "u1", "token": "t"}),
        ClientMessage::Auth {
            user_id: Some("u1".into()),
            token: "t".into(),
        },
    );
    assert_client_round_trip(
        json!({"type": "auth", "token": "t"}),
        ClientMessage::Auth {
            user_id: None,
            token: "t".into(),
        },
    );
    assert_client_round_trip(json!({"type": "ping"}), ClientMessage::Ping);
    assert_client_round_trip(
        json!({"type": "room:create", "roomType": "trivia", "maxUsers": 4}),
        ClientMessage::RoomCreate {
            room_type: "trivia".into(),
            max_users: Some(4),
            name: None,
        },
    );
    assert_client_round_trip(
        json!({"type": "room:create", "roomType": "trivia"}),
        ClientMessage::RoomCreate {
            room_type: "trivia".into(),
            max_users: None,
            name: None,
        },
    );
    assert_client_round_trip(
        json!({"type": "room:join", "code": "ABC234"}),
        ClientMessage::RoomJoin {
            code: "ABC234".into(),
        },
    );
    assert_client_round_trip(
        json!({"type": "room:leave", "code": "ABC234"}),
        ClientMessage::RoomLeave {
            code: "ABC234".into(),
        },
    );
    assert_client_round_trip(
        json!({"type": "room:chat", "code": "ABC234", "message": "hi"}),
        ClientMessage::RoomChat {
            code: "ABC234".into(),
            message: "hi".into(),
        },
    );
    assert_client_round_trip(
        json!({"type": "room:state", "code": "ABC234"}),
        ClientMessage::RoomState {
            code: Some("ABC234".into()),
        },
    );
    assert_client_round_trip(
        json!({"type": "room:state"}),
        ClientMessage::RoomState { code: None },
    );
    assert_client_round_trip(
        json!({"type": "room:start", "code": "ABC234", "gameState": {"round": 1, "deck": [1, 2]}}),
        ClientMessage::RoomStart {
            code: "ABC234".into(),
            game_state: json!({"round": 1, "deck": [1, 2]}),
        },
    );
}

#[test]
fn client_extensions() {
    assert_client_round_trip(
        json!({"type": "room:typing", "code": "ABC234", "typing": true}),
        ClientMessage::RoomTyping {
            code: "ABC234".into(),
            typing: true,
        },
    );
    assert_client_round_trip(
        json!({"type": "room:history", "code": "ABC234", "afterSeq": 7}),
        ClientMessage::RoomHistory {
            code: "ABC234".into(),
            after_seq: Some(7),
            before_seq: None,
        },
    );
    assert_client_round_trip(
        json!({"type": "room:history", "code": "ABC234", "beforeSeq": 51}),
        ClientMessage::RoomHistory {
            code: "ABC234".into(),
            after_seq: None,
            before_seq: Some(51),
        },
    );
    assert_client_round_trip(json!({"type": "rooms:list"}), ClientMessage::RoomsList);
    assert_client_round_trip(
        json!({"type": "room:read", "code": "ABC234", "seq": 9}),
        ClientMessage::RoomRead {
            code: "ABC234".into(),
            seq: 9,
        },
    );
    assert_client_round_trip(
        json!({"type": "room:create", "roomType": "chat", "name": "Book club"}),
        ClientMessage::RoomCreate {
            room_type: "chat".into(),
            max_users: None,
            name: Some("Book club".into()),
        },
    );
}

#[test]
fn server_extensions() {
    assert_server_round_trip(
        json!({"type": "room:read", "code": "ABC234", "seq": 4}),
        ServerMessage::RoomRead {
            code: "ABC234".into(),
            seq: 4,
        },
    );
    assert_server_round_trip(
        json!({"type": "room:deleted", "code": "ABC234", "id": "m-1", "seq": 2}),
        ServerMessage::RoomDeleted {
            code: "ABC234".into(),
            id: "m-1".into(),
            seq: 2,
        },
    );
    assert_server_round_trip(
        json!({"type": "room:user_left", "code": "ABC234", "userId": "u2", "removed": true}),
        ServerMessage::RoomUserLeft {
            code: "ABC234".into(),
            user_id: "u2".into(),
            removed: true,
        },
    );
    assert_server_round_trip(
        json!({"type": "rooms:list", "rooms": [{"code": "ABC234", "name": "Book club",
               "lastSeq": 3, "unread": 1}]}),
        ServerMessage::RoomsList {
            rooms: vec![crate::native::RoomSummary {
                code: "ABC234".into(),
                name: "Book club".into(),
                last_seq: 3,
                unread: 1,
                last_message: None,
            }],
        },
    );
}

#[test]
fn server_messages_of_contract_000() {
    let (room_json, room) = sample_room();
    assert_server_round_trip(
        json!({"type": "auth:ok", "userId": "u1", "username": "Ana", "imageUrl": "",
               "issuer": "confab", "exp": 1700000060}),
        ServerMessage::AuthOk {
            user_id: "u1".into(),
            username: "Ana".into(),
            image_url: String::new(),
            issuer: "confab".into(),
            exp: 1_700_000_060,
        },
    );
    assert_server_round_trip(
        json!({"type": "auth:error", "error": "invalid token"}),
        ServerMessage::AuthError {
            error: "invalid token".into(),
        },
    );
    assert_server_round_trip(
        json!({"type": "error", "error": "bad"}),
        ServerMessage::Error {
            error: "bad".into(),
        },
    );
    assert_server_round_trip(
        json!({"type": "room:created", "room": room_json.clone()}),
        ServerMessage::RoomCreated { room: room.clone() },
    );
    assert_server_round_trip(
        json!({"type": "room:joined", "room": room_json.clone(),
               "users": [{"userId": "u1", "username": "Ana", "imageUrl": "https://a/x.png", "online": true}]}),
        ServerMessage::RoomJoined {
            room: room.clone(),
            users: vec![RoomUser {
                user_id: "u1".into(),
                username: "Ana".into(),
                image_url: "https://a/x.png".into(),
                online: true,
            }],
        },
    );
    assert_server_round_trip(
        json!({"type": "room:left", "code": "ABC234"}),
        ServerMessage::RoomLeft {
            code: "ABC234".into(),
        },
    );
    assert_server_round_trip(
        json!({"type": "room:chat", "code": "ABC234", "from": "u1", "message": "hi", "ts": 1700000001,
               "username": "Ana", "imageUrl": "", "id": "m1", "seq": 1}),
        ServerMessage::RoomChat(ChatMessage {
            code: "ABC234".into(),
            from: "u1".into(),
            message: "hi".into(),
            ts: 1_700_000_001,
            username: "Ana".into(),
            image_url: String::new(),
            id: "m1".into(),
            seq: 1,
        }),
    );
    assert_server_round_trip(
        json!({"type": "room:state", "room": room_json.clone()}),
        ServerMessage::RoomState {
            room: RoomStateView::Room(room.clone()),
        },
    );
    assert_server_round_trip(
        json!({"type": "room:error", "error": "room not found", "code": "ZZZ999"}),
        ServerMessage::RoomError {
            error: "room not found".into(),
            code: Some("ZZZ999".into()),
        },
    );
    assert_server_round_trip(
        json!({"type": "room:error", "error": "not in a room"}),
        ServerMessage::RoomError {
            error: "not in a room".into(),
            code: None,
        },
    );
    assert_server_round_trip(
        json!({"type": "room:started", "room": room_json}),
        ServerMessage::RoomStarted { room },
    );
}

#[test]
fn the_unauthenticated_ping_answer_is_exactly_the_lobby() {
    let lobby = ServerMessage::RoomState {
        room: RoomStateView::lobby(),
    };
    assert_eq!(
        lobby.to_json(),
        r#"{"type":"room:state","room":{"state":"lobby"}}"#
    );
    assert_eq!(decode_server(&lobby.to_json()).unwrap(), lobby);
}

#[test]
fn decode_errors_say_what_is_wrong() {
    assert!(matches!(
        decode_client("{nope"),
        Err(DecodeError::Malformed(_))
    ));
    assert_eq!(decode_client("[1,2]"), Err(DecodeError::NoType));
    assert_eq!(decode_client(r#"{"type": 3}"#), Err(DecodeError::NoType));
    assert_eq!(
        decode_client(r#"{"type": "room:explode"}"#),
        Err(DecodeError::UnknownType("room:explode".into()))
    );
    let err = decode_client(r#"{"type": "room:join"}"#).unwrap_err();
    assert!(matches!(&err, DecodeError::InvalidFields { kind, .. } if kind == "room:join"));
    assert!(err.to_string().contains("missing field `code`"), "{err}");
    let err = decode_client(r#"{"type": "room:create", "roomType": "x", "maxUsers": "four"}"#)
        .unwrap_err();
    assert!(
        err.to_string().starts_with("invalid \"room:create\""),
        "{err}"
    );
}

proptest! {
    #[test]
    fn the_decoder_never_panics_on_arbitrary_text(text in ".{0,200}") {
        let _ = decode_client(&text);
    }

    #[test]
    fn the_decoder_never_panics_on_arbitrary_typed_objects(
        kind in prop::sample::select(CLIENT_MESSAGE_TYPES.to_vec()),
        key in "[a-zA-Z]{1,10}",
        value in prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,20}".prop_map(Value::from),
        ],
    ) {
        let text = json!({"type": kind, key: value.clone(), "code": value.clone(), "token": value}).to_string();
        let _ = decode_client(&text);
    }
}

/// One of every server message, with every optional field both set and left out.
fn every_server_message() -> Vec<ServerMessage> {
    let (_, room) = sample_room();
    let named = Room {
        name: "Friday quiz".into(),
        state: RoomPhase::Playing,
        game_state: json!({"round": 1}),
        ..room.clone()
    };
    let user = RoomUser {
        user_id: "u1".into(),
        username: "ana".into(),
        image_url: String::new(),
        online: true,
    };
    let chat = ChatMessage {
        code: "ABC234".into(),
        from: "u1".into(),
        message: "hi".into(),
        ts: 1_700_000_000,
        username: "ana".into(),
        image_url: "https://example.com/a.png".into(),
        id: "m1".into(),
        seq: 7,
    };
    let code = || "ABC234".to_owned();
    vec![
        ServerMessage::AuthOk {
            user_id: "u1".into(),
            username: "ana".into(),
            image_url: String::new(),
            issuer: "confab".into(),
            exp: 1_700_003_600,
        },
        ServerMessage::AuthError {
            error: "bad".into(),
        },
        ServerMessage::Error {
            error: "bad".into(),
        },
        ServerMessage::RoomCreated {
            room: named.clone(),
        },
        ServerMessage::RoomJoined {
            room: room.clone(),
            users: vec![
                user.clone(),
                RoomUser {
                    online: false,
                    ..user.clone()
                },
            ],
        },
        ServerMessage::RoomLeft { code: code() },
        ServerMessage::RoomChat(chat.clone()),
        ServerMessage::RoomState {
            room: RoomStateView::Room(named.clone()),
        },
        ServerMessage::RoomState {
            room: RoomStateView::lobby(),
        },
        ServerMessage::RoomError {
            error: "full".into(),
            code: Some(code()),
        },
        ServerMessage::RoomError {
            error: "full".into(),
            code: None,
        },
        ServerMessage::RoomStarted { room: named },
        ServerMessage::RoomHistory {
            code: code(),
            messages: vec![chat.clone()],
            before_seq: Some(8),
        },
        ServerMessage::RoomHistory {
            code: code(),
            messages: vec![],
            before_seq: None,
        },
        ServerMessage::RoomTyping {
            code: code(),
            user_id: "u1".into(),
            username: "ana".into(),
            typing: true,
        },
        ServerMessage::RoomUserJoined { code: code(), user },
        ServerMessage::RoomUserLeft {
            code: code(),
            user_id: "u1".into(),
            removed: true,
        },
        ServerMessage::RoomUserLeft {
            code: code(),
            user_id: "u1".into(),
            removed: false,
        },
        ServerMessage::RoomDeleted {
            code: code(),
            id: "m1".into(),
            seq: 7,
        },
        ServerMessage::RoomClosed { code: code() },
        ServerMessage::RoomsList {
            rooms: vec![
                RoomSummary {
                    code: code(),
                    name: "Friday quiz".into(),
                    last_seq: 7,
                    unread: 2,
                    last_message: Some(chat),
                },
                RoomSummary {
                    code: code(),
                    name: String::new(),
                    last_seq: 0,
                    unread: 0,
                    last_message: None,
                },
            ],
        },
        ServerMessage::RoomRead {
            code: code(),
            seq: 7,
        },
    ]
}

#[test]
fn every_server_message_decodes_as_the_derive_decodes_it() {
    crate::fields::assert_decodes_as_derived(&every_server_message(), decode_server);
}
