//! Core values → Socket.IO events, in the socket's contract: (event name, payload) pairs.

use serde_json::{json, value::RawValue, Value};

use std::sync::{Arc, Mutex};

use super::{Flavor, Namespace, Peer};
use crate::{
    core::{
        events::{Delivery, Event},
        model::{Message, Notification, Profile},
        now_ms,
        signals::MediaUpdate,
    },
    dialects::document,
    lock,
    timefmt::iso8601_millis,
};

/// Anonymous contract-001 users are kept as `anon:<their id>`, so they can never pass for
/// a token's user; 001 clients see their own id back.
pub const ANONYMOUS_PREFIX: &str = "anon:";

/// A user id as contract 001 clients know it.
pub fn id_001(user_id: &str) -> &str {
    user_id.strip_prefix(ANONYMOUS_PREFIX).unwrap_or(user_id)
}

fn avatar(profile: &Profile) -> Value {
    if profile.image_url.is_empty() {
        Value::Null
    } else {
        Value::String(profile.image_url.clone())
    }
}

/// Contract 001's message: `{id, content, userId, user: {username, avatar}, createdAt}`.
pub fn message_001(message: &Message) -> Value {
    json!({
        "id": message.id,
        "roomId": message.room_key,
        "content": message.body,
        "type": message.kind.as_str(),
        "userId": id_001(&message.sender.user_id),
        "user": {"username": message.sender.username, "avatar": avatar(&message.sender)},
        "createdAt": iso8601_millis(message.created_at_ms),
        "seq": message.seq,
    })
}

/// Contract 004's ChatMessage: `{id, content, roomId, userId, createdAt, user: {id, name,
/// avatar}}`.
pub fn message_004(message: &Message) -> Value {
    json!({
        "id": message.id,
        "content": message.body,
        "roomId": message.room_key,
        "userId": message.sender.user_id,
        "createdAt": iso8601_millis(message.created_at_ms),
        "user": {
            "id": message.sender.user_id,
            "name": message.sender.username,
            "avatar": avatar(&message.sender),
        },
        "seq": message.seq,
    })
}

/// Contract 002's notification: `{id, type, title, message, timestamp, data?}`.
pub fn notification_002(notification: &Notification) -> Value {
    let mut payload = json!({
        "id": notification.id,
        "type": notification.level.as_str(),
        "title": notification.title,
        "message": notification.message,
        "timestamp": iso8601_millis(notification.created_at_ms),
    });
    let data = notification.data.as_deref().map(document);
    set(&mut payload, "data", data);
    payload
}

/// Sets `payload[key]` to `value`, if there is one.
fn set(payload: &mut Value, key: &str, value: Option<impl Into<Value>>) {
    if let Some(value) = value {
        payload[key] = value.into();
    }
}

fn media(update: &MediaUpdate) -> (&'static str, Value) {
    match update {
        MediaUpdate::Progress {
            media_id,
            progress,
            stage,
            message,
        } => {
            let mut payload = json!({"mediaId": media_id, "progress": progress, "stage": stage});
            set(&mut payload, "message", message.as_deref());
            ("mediaProgress", payload)
        }
        MediaUpdate::Complete {
            media_id,
            url,
            thumbnail_url,
            metadata,
        } => {
            let mut payload = json!({"mediaId": media_id, "url": url});
            set(&mut payload, "thumbnailUrl", thumbnail_url.as_deref());
            set(&mut payload, "metadata", metadata.as_deref().map(document));
            ("mediaComplete", payload)
        }
        MediaUpdate::Failed {
            media_id,
            error,
            code,
        } => {
            let mut payload = json!({"mediaId": media_id, "error": error});
            set(&mut payload, "code", code.as_deref());
            ("mediaError", payload)
        }
    }
}

/// A delivery's renderings for Socket.IO sockets, one per kind of socket (namespace and
/// contract), so a broadcast is rendered and serialised once per kind rather than once per
/// socket.
#[derive(Default)]
struct Renderings(Mutex<Vec<(Kind, Arc<Emits>)>>);

type Kind = (Namespace, Flavor);
/// Events to emit: (name, payload) pairs, each payload already serialised, so that emitting
/// it to a socket copies its bytes instead of walking a JSON tree again.
pub type Emits = Vec<(String, Box<RawValue>)>;

/// The events a delivery becomes on this socket (none when its contract has no such event).
pub fn delivery(peer: &Peer, delivery: &Delivery) -> Arc<Emits> {
    let kind = (peer.namespace, peer.flavor());
    let renderings = delivery.rendered.get_or_render(Renderings::default);
    let mut renderings = lock(&renderings.0);
    if let Some((_, found)) = renderings.iter().find(|(k, _)| *k == kind) {
        return Arc::clone(found);
    }
    let made = Arc::new(
        event(kind, &delivery.event)
            .into_iter()
            .filter_map(|(name, payload)| Some((name, serialised(&payload)?)))
            .collect(),
    );
    renderings.push((kind, Arc::clone(&made)));
    made
}

fn serialised(payload: &Value) -> Option<Box<RawValue>> {
    // A `Value` always serialises; `None` would only drop an event that could not be sent.
    serde_json::value::to_raw_value(payload).ok()
}

/// `user_left`, in the socket's contract; `removed` (an extension) when a moderator removed
/// the user, which the removed user is sent too.
fn user_left(
    flavor: Flavor,
    room_key: &str,
    user: &Profile,
    removed: bool,
) -> Vec<(String, Value)> {
    let mut payload = match flavor {
        Flavor::Chat001 => json!({"roomId": room_key, "userId": id_001(&user.user_id)}),
        Flavor::Discussion004 => json!({"roomId": room_key, "userId": user.user_id,
            "email": user.email, "timestamp": iso8601_millis(now_ms())}),
        Flavor::Undecided => return vec![],
    };
    if removed {
        payload["removed"] = Value::Bool(true);
    }
    vec![("user_left".to_owned(), payload)]
}

fn event((namespace, flavor): Kind, event: &Event) -> Vec<(String, Value)> {
    let one = |name: &str, payload: Value| vec![(name.to_owned(), payload)];
    match (event, namespace) {
        (Event::Message(m), Namespace::Default) => match flavor {
            Flavor::Chat001 => one("message_received", message_001(m)),
            Flavor::Discussion004 => one("new_message", message_004(m)),
            Flavor::Undecided => vec![],
        },
        (Event::MemberJoined { room_key, member }, Namespace::Default) => {
            let user = &member.profile;
            match flavor {
                Flavor::Chat001 => one(
                    "user_joined",
                    json!({"roomId": room_key, "userId": id_001(&user.user_id), "username": user.username}),
                ),
                Flavor::Discussion004 => one(
                    "user_joined",
                    json!({"roomId": room_key, "userId": user.user_id, "email": user.email,
                           "timestamp": iso8601_millis(member.joined_at_ms)}),
                ),
                Flavor::Undecided => vec![],
            }
        }
        (Event::MemberLeft { room_key, user }, Namespace::Default) => {
            user_left(flavor, room_key, user, false)
        }
        // Extensions: what a moderator did. Clients that do not listen for them lose nothing.
        (Event::MemberRemoved { room_key, user }, Namespace::Default) => {
            user_left(flavor, room_key, user, true)
        }
        (Event::MessageDeleted(deleted), Namespace::Default) => one(
            "message_deleted",
            json!({"roomId": deleted.room_key, "messageId": deleted.id, "seq": deleted.seq}),
        ),
        (Event::RoomClosed { room_key }, Namespace::Default) => {
            one("room_closed", json!({"roomId": room_key}))
        }
        (
            Event::Typing {
                room_key,
                user,
                typing,
            },
            Namespace::Default,
        ) => match (flavor, typing) {
            (Flavor::Chat001, _) => one(
                "user_typing",
                json!({"roomId": room_key, "userId": id_001(&user.user_id), "isTyping": typing}),
            ),
            (Flavor::Discussion004, true) => one(
                "user_typing",
                json!({"roomId": room_key, "userId": user.user_id, "email": user.email}),
            ),
            (Flavor::Discussion004, false) => one(
                "user_stopped_typing",
                json!({"roomId": room_key, "userId": user.user_id}),
            ),
            (Flavor::Undecided, _) => vec![],
        },
        (Event::RoomEvent { name, data, .. }, Namespace::Default) => {
            one(name, data.as_deref().map_or(Value::Null, document))
        }
        (Event::Notification(n), Namespace::Notifications) => {
            one("notification", notification_002(n))
        }
        (Event::Media(update), Namespace::Media) => {
            let (name, payload) = media(update);
            one(name, payload)
        }
        _ => vec![],
    }
}
