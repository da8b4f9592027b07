//! Core values → the native envelope.

use confab_shared::native::{self as wire, ChatMessage, RoomPhase, RoomUser, ServerMessage};
use serde_json::Value;

use crate::{
    core::{
        events::Event,
        model::{Member, Message, Phase, Room, RoomSummary},
    },
    dialects::document,
};

pub fn room(room: &Room) -> wire::Room {
    wire::Room {
        code: room.key.clone(),
        room_type: room.room_type.clone(),
        max_users: room.max_users,
        state: match room.phase {
            Phase::Lobby => RoomPhase::Lobby,
            Phase::Playing => RoomPhase::Playing,
        },
        host_id: room.host_id.clone(),
        // Stored from a JSON value by this dialect or another; a document that is not JSON
        // is passed on as a string rather than lost.
        game_state: room.game_state.as_deref().map_or(Value::Null, document),
        created_at: room.created_at_ms / 1000,
        last_seq: room.last_seq,
        name: room.name.clone(),
    }
}

pub fn room_summary(summary: &RoomSummary) -> wire::RoomSummary {
    wire::RoomSummary {
        code: summary.room.key.clone(),
        name: summary.room.name.clone(),
        last_seq: summary.room.last_seq,
        unread: summary.unread(),
        last_message: summary.last_message.as_ref().map(message),
    }
}

pub fn member(member: &Member) -> RoomUser {
    RoomUser {
        user_id: member.profile.user_id.clone(),
        username: member.profile.username.clone(),
        image_url: member.profile.image_url.clone(),
        online: member.online,
    }
}

pub fn message(message: &Message) -> ChatMessage {
    ChatMessage {
        code: message.room_key.clone(),
        from: message.sender.user_id.clone(),
        message: message.body.clone(),
        ts: message.created_at_ms / 1000,
        username: message.sender.username.clone(),
        image_url: message.sender.image_url.clone(),
        id: message.id.clone(),
        seq: message.seq,
    }
}

/// The event as this dialect shows it; `None` for events `/ws` clients are not sent.
pub fn event(event: &Event) -> Option<ServerMessage> {
    Some(match event {
        Event::Message(m) => ServerMessage::RoomChat(message(m)),
        Event::MemberJoined {
            room_key,
            member: m,
        } => ServerMessage::RoomUserJoined {
            code: room_key.clone(),
            user: member(m),
        },
        Event::MemberLeft { room_key, user } | Event::MemberRemoved { room_key, user } => {
            ServerMessage::RoomUserLeft {
                code: room_key.clone(),
                user_id: user.user_id.clone(),
                removed: matches!(event, Event::MemberRemoved { .. }),
            }
        }
        Event::MessageDeleted(deleted) => ServerMessage::RoomDeleted {
            code: deleted.room_key.clone(),
            id: deleted.id.clone(),
            seq: deleted.seq,
        },
        Event::RoomClosed { room_key } => ServerMessage::RoomClosed {
            code: room_key.clone(),
        },
        Event::Typing {
            room_key,
            user,
            typing,
        } => ServerMessage::RoomTyping {
            code: room_key.clone(),
            user_id: user.user_id.clone(),
            username: user.username.clone(),
            typing: *typing,
        },
        Event::GameStarted(r) => ServerMessage::RoomStarted { room: room(r) },
        Event::PresenceChanged
        | Event::Notification(_)
        | Event::Ping { .. }
        | Event::Party { .. }
        | Event::Media(_)
        | Event::RoomEvent { .. }
        | Event::AccessRevoked => return None,
        Event::ReadUpTo { room_key, seq } => ServerMessage::RoomRead {
            code: room_key.clone(),
            seq: *seq,
        },
    })
}
