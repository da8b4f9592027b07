//! Server messages read by hand from a parsed `Value`, for the browser app.
//!
//! serde's derived decoder for an internally tagged enum buffers every message into its own
//! `Content` tree and carries a visitor per variant and field: about 80 KB of the app's
//! wasm. This reads the same shapes with the field readers of `fields.rs`. The derive stays
//! the definition: the tests hold this decoder to it, message by message and field by
//! field (`native/tests.rs`).

use serde_json::Value;

use super::{ChatMessage, Room, RoomPhase, RoomStateView, RoomSummary, RoomUser, ServerMessage};
use crate::{
    fields::{Fields, Result},
    FromJson,
};

fn phase(fields: &Fields, name: &str) -> Result<RoomPhase> {
    match fields.get(name)?.as_str() {
        Some("lobby") => Ok(RoomPhase::Lobby),
        Some("playing") => Ok(RoomPhase::Playing),
        _ => Err(format!("`{name}`: expected \"lobby\" or \"playing\"")),
    }
}

fn room(value: &Value) -> Result<Room> {
    let f = Fields::of(value, "room")?;
    Ok(Room {
        code: f.text("code")?,
        room_type: f.text("roomType")?,
        max_users: f.u32("maxUsers")?,
        state: phase(&f, "state")?,
        host_id: f.text("hostId")?,
        game_state: f.get("gameState")?.clone(),
        created_at: f.i64("createdAt")?,
        last_seq: f.u64("lastSeq")?,
        name: f.text_or_empty("name")?,
    })
}

fn room_user(value: &Value) -> Result<RoomUser> {
    let f = Fields::of(value, "user")?;
    Ok(RoomUser {
        user_id: f.text("userId")?,
        username: f.text("username")?,
        image_url: f.text("imageUrl")?,
        online: f.flag_or_false("online")?,
    })
}

fn chat_message(value: &Value) -> Result<ChatMessage> {
    let f = Fields::of(value, "message")?;
    Ok(ChatMessage {
        code: f.text("code")?,
        from: f.text("from")?,
        message: f.text("message")?,
        ts: f.i64("ts")?,
        username: f.text("username")?,
        image_url: f.text("imageUrl")?,
        id: f.text("id")?,
        seq: f.u64("seq")?,
    })
}

fn room_summary(value: &Value) -> Result<RoomSummary> {
    let f = Fields::of(value, "room")?;
    Ok(RoomSummary {
        code: f.text("code")?,
        name: f.text("name")?,
        last_seq: f.u64("lastSeq")?,
        unread: f.u64("unread")?,
        last_message: f.optional("lastMessage").map(chat_message).transpose()?,
    })
}

/// `room:state`'s room: a whole room, or `{"state": "lobby"}` alone (serde's `untagged`
/// tries the room first).
fn room_state(value: &Value) -> Result<RoomStateView> {
    room(value).map(RoomStateView::Room).or_else(|_| {
        let f = Fields::of(value, "room")?;
        Ok(RoomStateView::Lobby {
            state: phase(&f, "state")?,
        })
    })
}

/// A server message from its parsed JSON.
impl FromJson for ServerMessage {
    fn from_json(value: &Value) -> Result<Self> {
        let f = Fields::of(value, "message")?;
        let kind = f.text("type")?;
        Ok(match kind.as_str() {
            "auth:ok" => ServerMessage::AuthOk {
                user_id: f.text("userId")?,
                username: f.text("username")?,
                image_url: f.text("imageUrl")?,
                issuer: f.text("issuer")?,
                exp: f.i64("exp")?,
            },
            "auth:error" => ServerMessage::AuthError {
                error: f.text("error")?,
            },
            "error" => ServerMessage::Error {
                error: f.text("error")?,
            },
            "room:created" => ServerMessage::RoomCreated {
                room: room(f.get("room")?)?,
            },
            "room:joined" => ServerMessage::RoomJoined {
                room: room(f.get("room")?)?,
                users: f.list("users", room_user)?,
            },
            "room:left" => ServerMessage::RoomLeft {
                code: f.text("code")?,
            },
            "room:chat" => ServerMessage::RoomChat(chat_message(value)?),
            "room:state" => ServerMessage::RoomState {
                room: room_state(f.get("room")?)?,
            },
            "room:error" => ServerMessage::RoomError {
                error: f.text("error")?,
                code: f.optional_text("code")?,
            },
            "room:started" => ServerMessage::RoomStarted {
                room: room(f.get("room")?)?,
            },
            "room:history" => ServerMessage::RoomHistory {
                code: f.text("code")?,
                messages: f.list("messages", chat_message)?,
                before_seq: f.optional_u64("beforeSeq")?,
            },
            "room:typing" => ServerMessage::RoomTyping {
                code: f.text("code")?,
                user_id: f.text("userId")?,
                username: f.text("username")?,
                typing: f.flag("typing")?,
            },
            "room:user_joined" => ServerMessage::RoomUserJoined {
                code: f.text("code")?,
                user: room_user(f.get("user")?)?,
            },
            "room:user_left" => ServerMessage::RoomUserLeft {
                code: f.text("code")?,
                user_id: f.text("userId")?,
                removed: f.flag_or_false("removed")?,
            },
            "room:deleted" => ServerMessage::RoomDeleted {
                code: f.text("code")?,
                id: f.text("id")?,
                seq: f.u64("seq")?,
            },
            "room:closed" => ServerMessage::RoomClosed {
                code: f.text("code")?,
            },
            "rooms:list" => ServerMessage::RoomsList {
                rooms: f.list("rooms", room_summary)?,
            },
            "room:read" => ServerMessage::RoomRead {
                code: f.text("code")?,
                seq: f.u64("seq")?,
            },
            other => return Err(format!("unknown message type \"{other}\"")),
        })
    }
}
