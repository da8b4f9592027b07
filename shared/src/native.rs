//! The native envelope spoken at `/ws`: contract 000's messages with its exact wire names,
//! plus the extensions the app needs (typing, history, member changes). `PROTOCOL.md` is the
//! prose version of this file.
//!
//! Every message is a JSON object whose `type` field names it; the other fields sit beside it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A message from a client to the server.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "type")]
pub enum ClientMessage {
    /// Authenticates the socket with a JWT. `userId`, when given, must equal the token's `sub`.
    #[serde(rename = "auth", rename_all = "camelCase")]
    Auth {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
        token: String,
    },
    /// Answered with `room:state`: the lobby when unauthenticated, else the caller's room.
    #[serde(rename = "ping")]
    Ping,
    #[serde(rename = "room:create", rename_all = "camelCase")]
    RoomCreate {
        room_type: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_users: Option<u32>,
        /// Extension: a display name (at most [`crate::limits::MAX_ROOM_NAME_CHARS`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    #[serde(rename = "room:join")]
    RoomJoin { code: String },
    #[serde(rename = "room:leave")]
    RoomLeave { code: String },
    #[serde(rename = "room:chat")]
    RoomChat { code: String, message: String },
    /// The state of room `code`, or of the caller's current room when `code` is absent.
    #[serde(rename = "room:state")]
    RoomState {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
    },
    #[serde(rename = "room:start", rename_all = "camelCase")]
    RoomStart { code: String, game_state: Value },
    /// Extension: the sender is (or stopped) typing in room `code`.
    #[serde(rename = "room:typing")]
    RoomTyping { code: String, typing: bool },
    /// Extension: stored messages of room `code`, oldest first and at most
    /// [`crate::limits::HISTORY_LEN`] a request, answered with `room:history`. With
    /// `afterSeq`, those after it (lossless resume); with `beforeSeq`, the newest ones
    /// before it (older history, a page at a time). Exactly one of the two.
    #[serde(rename = "room:history", rename_all = "camelCase")]
    RoomHistory {
        code: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after_seq: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before_seq: Option<u64>,
    },
    /// Extension: the caller's rooms, answered with `rooms:list`.
    #[serde(rename = "rooms:list")]
    RoomsList,
    /// Extension: the caller has read room `code` up to message `seq`. Kept per user, so
    /// every device shows the same unread count; not answered.
    #[serde(rename = "room:read")]
    RoomRead { code: String, seq: u64 },
}

/// A message from the server to a client.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "type")]
pub enum ServerMessage {
    #[serde(rename = "auth:ok", rename_all = "camelCase")]
    AuthOk {
        user_id: String,
        username: String,
        image_url: String,
        issuer: String,
        /// Unix seconds at which the token, and so this session, expires.
        exp: i64,
    },
    #[serde(rename = "auth:error")]
    AuthError { error: String },
    /// A generic error: bad JSON, an unknown `type`, a missing field, a missing `auth`.
    #[serde(rename = "error")]
    Error { error: String },
    #[serde(rename = "room:created")]
    RoomCreated { room: Room },
    #[serde(rename = "room:joined")]
    RoomJoined { room: Room, users: Vec<RoomUser> },
    #[serde(rename = "room:left")]
    RoomLeft { code: String },
    #[serde(rename = "room:chat")]
    RoomChat(ChatMessage),
    #[serde(rename = "room:state")]
    RoomState { room: RoomStateView },
    /// A room-scoped error. `code` names the room when the request named one.
    #[serde(rename = "room:error")]
    RoomError {
        error: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
    },
    #[serde(rename = "room:started")]
    RoomStarted { room: Room },
    /// Extension: stored messages, oldest first. Sent right after `room:joined` (the last
    /// [`crate::limits::HISTORY_LEN`]) and in answer to a `room:history` request.
    #[serde(rename = "room:history", rename_all = "camelCase")]
    RoomHistory {
        code: String,
        messages: Vec<ChatMessage>,
        /// The `beforeSeq` of the request this answers, when it asked for older history:
        /// fewer than [`crate::limits::HISTORY_LEN`] messages then means the room has none
        /// older.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before_seq: Option<u64>,
    },
    /// Extension: another member started or stopped typing.
    #[serde(rename = "room:typing", rename_all = "camelCase")]
    RoomTyping {
        code: String,
        user_id: String,
        username: String,
        typing: bool,
    },
    /// Extension: someone joined the room (sent to the other members).
    #[serde(rename = "room:user_joined")]
    RoomUserJoined { code: String, user: RoomUser },
    /// Extension: someone left the room (sent to the remaining members), or a moderator
    /// removed them (`removed`, sent to the removed user too).
    #[serde(rename = "room:user_left", rename_all = "camelCase")]
    RoomUserLeft {
        code: String,
        user_id: String,
        #[serde(default, skip_serializing_if = "is_false")]
        removed: bool,
    },
    /// Extension: a moderator deleted a stored message; history no longer has it.
    #[serde(rename = "room:deleted")]
    RoomDeleted { code: String, id: String, seq: u64 },
    /// Extension: a moderator closed the room. Its members were removed, and it takes no
    /// one from now on.
    #[serde(rename = "room:closed")]
    RoomClosed { code: String },
    /// Extension: the caller's rooms, the most recently active first.
    #[serde(rename = "rooms:list")]
    RoomsList { rooms: Vec<RoomSummary> },
    /// Extension: the user read room `code` up to `seq` on one of their connections (this
    /// one included); unread counts follow.
    #[serde(rename = "room:read")]
    RoomRead { code: String, seq: u64 },
}

/// A room in `rooms:list`: what a sidebar shows of it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RoomSummary {
    pub code: String,
    /// The display name given at creation; empty when none was.
    pub name: String,
    pub last_seq: u64,
    /// Messages after the caller's read position.
    pub unread: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message: Option<ChatMessage>,
}

fn is_false(value: &bool) -> bool {
    !value
}

/// Whether a room is waiting for players or in a game.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RoomPhase {
    Lobby,
    Playing,
}

/// A room as the envelope shows it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    pub code: String,
    pub room_type: String,
    pub max_users: u32,
    pub state: RoomPhase,
    pub host_id: String,
    /// The state `room:start` stored, or `null` before the game starts.
    pub game_state: Value,
    /// Unix seconds.
    pub created_at: i64,
    /// The sequence number of the room's newest stored message (0 when there is none); a
    /// client that has seen it has missed nothing.
    pub last_seq: u64,
    /// Extension: the display name given at creation; left out when none was.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// What `room:state` carries: a room, or only the lobby state for a caller in no room (or
/// not signed in), as contract 000 shows it: `{"room": {"state": "lobby"}}`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(untagged)]
pub enum RoomStateView {
    Room(Room),
    Lobby { state: RoomPhase },
}

impl RoomStateView {
    /// `{"state": "lobby"}`.
    pub fn lobby() -> Self {
        Self::Lobby {
            state: RoomPhase::Lobby,
        }
    }
}

/// A room member.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RoomUser {
    pub user_id: String,
    pub username: String,
    pub image_url: String,
    /// Whether the member has a connection open now. Members stay members when they
    /// disconnect; only `room:leave` ends membership.
    #[serde(default)]
    pub online: bool,
}

/// A stored chat message, as `room:chat` broadcasts it and `room:history` lists it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    pub code: String,
    /// The sender's user id.
    pub from: String,
    pub message: String,
    /// Unix seconds.
    pub ts: i64,
    pub username: String,
    pub image_url: String,
    /// The message's id (a UUID).
    pub id: String,
    /// Its position in the room, from 1, without gaps.
    pub seq: u64,
}

impl ServerMessage {
    /// The message as one JSON text frame.
    pub fn to_json(&self) -> String {
        // Serialising these types cannot fail: every map key is a string.
        serde_json::to_string(self).expect("server messages always serialise")
    }
}

impl ClientMessage {
    /// The message as one JSON text frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("client messages always serialise")
    }
}

/// Why a client frame could not be decoded. Its `Display` is the text the server sends back
/// in `{"type":"error","error":...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Not JSON at all.
    Malformed(String),
    /// JSON, but not an object with a string `type`.
    NoType,
    /// A `type` this protocol does not have.
    UnknownType(String),
    /// A known `type` whose fields are missing or of the wrong type.
    InvalidFields { kind: String, detail: String },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(detail) => write!(f, "malformed JSON: {detail}"),
            Self::NoType => f.write_str("expected a JSON object with a string \"type\" field"),
            Self::UnknownType(kind) => write!(f, "unknown message type \"{kind}\""),
            Self::InvalidFields { kind, detail } => write!(f, "invalid \"{kind}\": {detail}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// The `type` names of every client message, for telling an unknown type from bad fields.
pub const CLIENT_MESSAGE_TYPES: &[&str] = &[
    "auth",
    "ping",
    "room:create",
    "room:join",
    "room:leave",
    "room:chat",
    "room:state",
    "room:start",
    "room:typing",
    "room:history",
    "rooms:list",
    "room:read",
];

/// Decodes one client text frame, with an error a person can act on.
pub fn decode_client(text: &str) -> Result<ClientMessage, DecodeError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let kind = match value.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        _ => return Err(DecodeError::NoType),
    };
    if !CLIENT_MESSAGE_TYPES.contains(&kind.as_str()) {
        return Err(DecodeError::UnknownType(kind));
    }
    serde_json::from_value(value).map_err(|e| DecodeError::InvalidFields {
        kind,
        detail: e.to_string(),
    })
}

/// Decodes one server text frame (the app's side), by hand rather than through the derive
/// (`decode.rs` says why); it accepts exactly what the derive accepts.
pub fn decode_server(text: &str) -> Result<ServerMessage, serde_json::Error> {
    crate::decode(text)
}

mod decode;

#[cfg(test)]
mod tests;
