//! The default namespace's chat: contracts 001 and 004, which share event names with
//! different payloads. Each event is read by its shape (004 sends a bare room id where 001
//! sends an object with `userId`), and the socket's first chat event fixes the contract its
//! broadcasts are rendered in. Failures are `error` {code, message}: 001's codes and 004's
//! message in one payload.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};
use socketioxide::{
    extract::{SocketRef, State, TryData},
    handler::ConnectHandler,
    SocketIo,
};

use super::{
    admit, connected, handshake_token, new_peer, peer_of, recovery,
    render::{self, ANONYMOUS_PREFIX},
    studio,
    turn::Turn,
    Flavor, Handshake, Namespace, Peer,
};
use crate::{
    auth::{is_safe_image_url, sanitize_username},
    config::Anonymous,
    core::{
        model::{MessageKind, Profile},
        CoreError, IfMissing, Joined, QueuedMessage, RoomSpec,
    },
    lock,
    timefmt::iso8601_millis,
    AppState,
};

/// Room type of rooms created by joining a name that has no room yet (contract 004).
pub const DISCUSSION_ROOM_TYPE: &str = "discussion";
/// Room type of contract 001's `create_room`.
pub const CHAT_ROOM_TYPE: &str = "chat";
/// Longest contract-001 `userId`, in characters.
pub const MAX_USER_ID_CHARS: usize = 128;
/// Longest room name of `create_room`, in characters.
pub const MAX_ROOM_NAME_CHARS: usize = 100;

pub fn register(io: &SocketIo) {
    io.ns("/", connected.with(authenticate));
}

/// Why a handshake was refused; the text is what the client's `connect_error` carries.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(&'static str);

/// Contract 004's handshake rule for the default namespace: no token, "Authentication
/// required" (unless anonymous clients are allowed); a bad or expired one, "Invalid token".
/// An accepted socket is signed in, and its handlers registered, before it is connected.
async fn authenticate(
    socket: SocketRef,
    TryData(auth): TryData<Value>,
    State(state): State<AppState>,
) -> Result<(), Refusal> {
    let auth = auth.ok();
    let identity = match handshake_token(&socket, auth.as_ref()) {
        None if state.config().anonymous == Anonymous::Allow => None,
        None => return Err(Refusal("Authentication required")),
        Some(token) => match state.verifier().verify(&token).await {
            Ok(identity) => Some(identity),
            Err(_) => return Err(Refusal("Invalid token")),
        },
    };
    let peer = new_peer(&state, Namespace::Default);
    if let Some(identity) = identity {
        if let Err(err) = peer.sign_in(&identity).await {
            return Err(Refusal(super::sign_in_refusal(&err)));
        }
        *lock(&peer.handshake) = Some(Handshake::Authenticated(identity));
        if let Some(pids) = state.socketio_pids() {
            recovery::offer(&socket, &peer, pids, auth.as_ref()).await;
        }
    }
    admit(&socket, peer, handlers);
    Ok(())
}

/// The default namespace's events: contract 002's common ones, and 001's and 004's chat.
fn handlers(socket: &SocketRef) {
    studio::register_common(socket);
    socket.on("create_room", create_room);
    socket.on("join_room", join_room);
    socket.on("send_message", send_message);
    socket.on("typing", typing);
    socket.on(
        "typing_start",
        async |s: SocketRef, turn: Turn, TryData(d): TryData<Value>| {
            typing_004(&s, turn, d.ok(), true).await;
        },
    );
    socket.on(
        "typing_stop",
        async |s: SocketRef, turn: Turn, TryData(d): TryData<Value>| {
            typing_004(&s, turn, d.ok(), false).await;
        },
    );
    socket.on("leave_room", leave_room);
}

/// A failure as the `error` event carries it.
struct Failure {
    code: &'static str,
    message: String,
}

impl Failure {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn bad_payload(what: impl Into<String>) -> Self {
        Self::new("INVALID_PAYLOAD", what)
    }

    fn rate_limited() -> Self {
        Self::new("RATE_LIMITED", "rate limit exceeded; slow down")
    }
}

impl From<CoreError> for Failure {
    fn from(err: CoreError) -> Self {
        err.log_if_internal();
        let code = match &err {
            CoreError::NotSignedIn => {
                return Self::new("UNAUTHENTICATED", "Authentication required")
            }
            CoreError::RoomNotFound => "ROOM_NOT_FOUND",
            CoreError::PartyNotFound
            | CoreError::NotificationNotFound
            | CoreError::MessageNotFound
            | CoreError::NotBanned => "NOT_FOUND",
            CoreError::RoomFull => "ROOM_FULL",
            CoreError::RoomClosed => "ROOM_CLOSED",
            CoreError::Banned => "BANNED",
            CoreError::NotAMember | CoreError::NotAPlayer => "NOT_IN_ROOM",
            CoreError::TooManyRooms(_) => "TOO_MANY_ROOMS",
            CoreError::CreatingTooFast => "RATE_LIMITED",
            CoreError::Invalid(_) => "VALIDATION_ERROR",
            CoreError::NotHost
            | CoreError::Conflict(_)
            | CoreError::AlreadyPlaying
            | CoreError::PartyEnded => "CONFLICT",
            CoreError::Internal(_) => "INTERNAL_ERROR",
        };
        Self::new(code, err.to_string())
    }
}

/// Reports `failure` once everything the socket was sent before it is out: its answer
/// comes after the broadcasts of the events sent before it, as the events were sent.
async fn refuse(socket: &SocketRef, peer: &Peer, failure: Failure) {
    peer.after_deliveries_so_far().await;
    let error = json!({"code": failure.code, "message": failure.message});
    let _ = peer.emit(socket, "error", &error);
}

/// Runs a chat event in its turn (after every earlier event of the socket): the socket's
/// state and rate limit first, any failure as `error`.
async fn run<F, Fut>(socket: &SocketRef, mut turn: Turn, action: F)
where
    F: FnOnce(Arc<Peer>) -> Fut,
    Fut: std::future::Future<Output = Result<(), Failure>>,
{
    turn.wait().await;
    let Some(peer) = peer_of(socket) else {
        return;
    };
    let outcome = if peer.allow() {
        action(Arc::clone(&peer)).await
    } else {
        Err(Failure::rate_limited())
    };
    if let Err(failure) = outcome {
        refuse(socket, &peer, failure).await;
    }
}

/// A 001 payload's `userId` as the core knows it: the token's user must name themselves;
/// without a token (anonymous clients allowed) the socket takes that id, kept apart from
/// token users by [`ANONYMOUS_PREFIX`]. The socket speaks contract 001 from then on.
async fn act_as_001(
    peer: &Peer,
    user_id: &str,
    update: Option<(&str, Option<&str>)>,
) -> Result<(), Failure> {
    peer.decide(Flavor::Chat001);
    let user_id = user_id.trim();
    if !crate::core::is_one_line(user_id, MAX_USER_ID_CHARS) {
        return Err(Failure::bad_payload(format!(
            "userId must be 1 to {MAX_USER_ID_CHARS} characters"
        )));
    }
    let current = peer.user();
    let core = peer.state.core();
    match current {
        Some(user) if render::id_001(&user.user_id) == user_id => {
            if let Some((username, avatar)) = update {
                core.update_profile(
                    &peer.conn,
                    profile_001(&user.user_id, username, avatar, &user.email),
                )
                .await?;
            }
            Ok(())
        }
        Some(user) if !user.user_id.starts_with(ANONYMOUS_PREFIX) => Err(Failure::new(
            "USER_MISMATCH",
            "userId does not match the token",
        )),
        _ if peer.state.config().anonymous == Anonymous::Deny => {
            Err(Failure::new("UNAUTHENTICATED", "Authentication required"))
        }
        _ => {
            let (username, avatar) = update.unwrap_or((user_id, None));
            let id = format!("{ANONYMOUS_PREFIX}{user_id}");
            let profile = profile_001(&id, username, avatar, "");
            core.sign_in(&peer.conn, profile, &core.admit().await)
                .await?;
            Ok(())
        }
    }
}

fn profile_001(user_id: &str, username: &str, avatar: Option<&str>, email: &str) -> Profile {
    let username = sanitize_username(username);
    Profile {
        user_id: user_id.to_owned(),
        username: if username.is_empty() {
            render::id_001(user_id).to_owned()
        } else {
            username
        },
        image_url: avatar
            .filter(|url| is_safe_image_url(url))
            .unwrap_or_default()
            .to_owned(),
        email: email.to_owned(),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(data: Option<Value>, what: &str) -> Result<T, Failure> {
    data.and_then(|value| serde_json::from_value(value).ok())
        .ok_or_else(|| Failure::bad_payload(what))
}

/// A bare room id (004's payloads), if that is what was sent.
fn room_id(data: Option<&Value>) -> Option<&str> {
    data.and_then(Value::as_str)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateRoom {
    name: String,
    user_id: String,
}

/// 001 `create_room` {name, userId} → `room_created` {id, name, createdAt}.
async fn create_room(socket: SocketRef, turn: Turn, TryData(data): TryData<Value>) {
    run(&socket, turn, async |peer| {
        let request: CreateRoom = parse(data.ok(), "create_room takes {name, userId}")?;
        act_as_001(&peer, &request.user_id, None).await?;
        let name = request.name.trim();
        if name.is_empty() || name.chars().count() > MAX_ROOM_NAME_CHARS {
            return Err(Failure::new(
                "VALIDATION_ERROR",
                format!("name must be 1 to {MAX_ROOM_NAME_CHARS} characters"),
            ));
        }
        let spec = RoomSpec {
            key: Some(uuid::Uuid::new_v4().to_string()),
            name: name.to_owned(),
            room_type: CHAT_ROOM_TYPE.into(),
            max_users: Some(confab_shared::limits::MAX_USERS_CAP),
        };
        let core = peer.state.core();
        let room = core
            .create_room(&peer.conn, spec, &core.admit().await)
            .await?;
        peer.emit_history(
            &socket,
            "room_created",
            &json!({"id": room.key, "name": room.name, "createdAt": iso8601_millis(room.created_at_ms)}),
            &room.key,
            room.last_seq,
        );
        Ok(())
    })
    .await;
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Join001 {
    room_id: String,
    user_id: String,
    username: String,
    #[serde(default)]
    avatar: Option<String>,
}

/// 004 `join_room` "room" → `room_history` {roomId, messages}, creating the room on first
/// use; 001 `join_room` {roomId, userId, username, avatar?} upserts the user → `history`.
/// Both announce `user_joined` to the room.
async fn join_room(socket: SocketRef, turn: Turn, TryData(data): TryData<Value>) {
    run(&socket, turn, async |peer| {
        let data = data.ok();
        let core = peer.state.core();
        if let Some(room) = room_id(data.as_ref()) {
            peer.decide(Flavor::Discussion004);
            let if_missing = IfMissing::Create {
                room_type: DISCUSSION_ROOM_TYPE.into(),
            };
            let joined = core
                .join_room(&peer.conn, room, if_missing, &core.admit().await)
                .await?;
            let messages: Vec<Value> = joined.history.iter().map(render::message_004).collect();
            peer.emit_history(
                &socket,
                "room_history",
                &json!({"roomId": joined.room.key, "messages": messages}),
                &joined.room.key,
                sent_up_to(&joined),
            );
            return Ok(());
        }
        let request: Join001 = parse(
            data,
            "join_room takes a room id, or {roomId, userId, username, avatar?}",
        )?;
        act_as_001(
            &peer,
            &request.user_id,
            Some((&request.username, request.avatar.as_deref())),
        )
        .await?;
        let joined = core
            .join_room(
                &peer.conn,
                &request.room_id,
                IfMissing::Refuse,
                &core.admit().await,
            )
            .await?;
        let messages: Vec<Value> = joined.history.iter().map(render::message_001).collect();
        peer.emit_history(
            &socket,
            "history",
            &messages,
            &joined.room.key,
            sent_up_to(&joined),
        );
        Ok(())
    })
    .await;
}

/// The last message a join's history gives the socket of its room.
fn sent_up_to(joined: &Joined) -> u64 {
    let newest = joined.history.last().map_or(0, |m| m.seq);
    newest.max(joined.room.last_seq)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendMessage {
    room_id: String,
    content: String,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

/// `send_message`: 004's {roomId, content} or 001's {roomId, userId, content, type}. The
/// message is trimmed, checked (1 to 1000 characters), stored, then broadcast to the room,
/// sender included, as `new_message` (004) or `message_received` (001).
///
/// The next event of the socket may start once this message is queued for storage, so a
/// socket's messages share commits; the store's writer broadcasts them in the order queued.
/// Any failure (rate limit, refusal, storage) is reported only after every earlier event's
/// answer and broadcast, so no later message of the socket is broadcast before it.
async fn send_message(socket: SocketRef, mut turn: Turn, TryData(data): TryData<Value>) {
    turn.wait_queued().await;
    let Some(peer) = peer_of(&socket) else {
        return;
    };
    let outcome = if peer.allow() {
        match queue_message(&peer, data.ok()).await {
            Ok(queued) => {
                turn.release_queued();
                queued.announced().await.map_err(Failure::from)
            }
            Err(failure) => Err(failure),
        }
    } else {
        Err(Failure::rate_limited())
    };
    turn.wait().await;
    if let Err(failure) = outcome {
        refuse(&socket, &peer, failure).await;
    }
}

async fn queue_message(peer: &Peer, data: Option<Value>) -> Result<QueuedMessage, Failure> {
    let request: SendMessage = parse(data, "send_message takes {roomId, content}")?;
    let kind = match &request.user_id {
        Some(user_id) => {
            act_as_001(peer, user_id, None).await?;
            match request.kind.as_deref().unwrap_or("text") {
                "text" => MessageKind::Text,
                "image" => MessageKind::Image,
                _ => return Err(Failure::bad_payload("type must be text or image")),
            }
        }
        None => {
            peer.decide(Flavor::Discussion004);
            MessageKind::Text
        }
    };
    let core = peer.state.core();
    let queued = core
        .queue_message(&peer.conn, &request.room_id, request.content.trim(), kind)
        .await?;
    Ok(queued)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Typing001 {
    room_id: String,
    user_id: String,
    is_typing: bool,
}

/// 001 `typing` {roomId, userId, isTyping} → `user_typing` to the others.
async fn typing(socket: SocketRef, turn: Turn, TryData(data): TryData<Value>) {
    run(&socket, turn, async |peer| {
        let request: Typing001 = parse(data.ok(), "typing takes {roomId, userId, isTyping}")?;
        act_as_001(&peer, &request.user_id, None).await?;
        let core = peer.state.core();
        core.set_typing(&peer.conn, &request.room_id, request.is_typing)
            .await?;
        Ok(())
    })
    .await;
}

/// 004 `typing_start` / `typing_stop` "room" → `user_typing` / `user_stopped_typing` to the
/// others.
async fn typing_004(socket: &SocketRef, turn: Turn, data: Option<Value>, typing: bool) {
    run(socket, turn, async |peer| {
        let room = room_id(data.as_ref())
            .ok_or_else(|| Failure::bad_payload("typing_start and typing_stop take a room id"))?;
        peer.decide(Flavor::Discussion004);
        let core = peer.state.core();
        core.set_typing(&peer.conn, room, typing).await?;
        Ok(())
    })
    .await;
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Leave001 {
    room_id: String,
    user_id: String,
}

/// `leave_room`: 004's "room" or 001's {roomId, userId} → `user_left` to the room.
async fn leave_room(socket: SocketRef, turn: Turn, TryData(data): TryData<Value>) {
    run(&socket, turn, async |peer| {
        let data = data.ok();
        let room = match room_id(data.as_ref()) {
            Some(room) => {
                peer.decide(Flavor::Discussion004);
                room.to_owned()
            }
            None => {
                let request: Leave001 =
                    parse(data, "leave_room takes a room id, or {roomId, userId}")?;
                act_as_001(&peer, &request.user_id, None).await?;
                request.room_id
            }
        };
        peer.state.core().leave_room(&peer.conn, &room).await?;
        peer.forget_room(&room);
        Ok(())
    })
    .await;
}
