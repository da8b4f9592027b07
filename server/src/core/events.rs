//! What the core tells connections: events, addressed to a topic.

use std::{
    any::{Any, TypeId},
    sync::{Arc, Mutex},
};

use super::model::{Member, Message, Notification, Profile, Room};

/// Who an event is for. Connections subscribe to topics; fan-out delivers by topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Everyone subscribed to a room.
    Room(String),
    /// Everyone watching who is online.
    Presence,
    /// Every notification socket of one user.
    User(String),
    /// Every socket following a party session.
    Party(String),
    /// Every socket following a media job.
    Media(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A stored chat message.
    Message(Message),
    MemberJoined {
        room_key: String,
        member: Member,
    },
    MemberLeft {
        room_key: String,
        user: Profile,
    },
    Typing {
        room_key: String,
        user: Profile,
        typing: bool,
    },
    GameStarted(Room),
    /// Someone came online or went offline; [`super::Core::online_users`] has the list.
    PresenceChanged,
    /// A stored notification for the topic's user.
    Notification(Notification),
    /// A direct ping (an invitation, a nudge) for the topic's user; not stored.
    Ping {
        from_username: String,
        join_url: Option<String>,
        at_ms: i64,
    },
    /// A media job's progress, completion or failure.
    Media(super::signals::MediaUpdate),
    /// A named event with an opaque JSON document, published to a room by another backend.
    RoomEvent {
        room_key: String,
        name: String,
        data: Option<String>,
    },
    /// A party session changed; `view` is the session after the change.
    Party {
        view: super::party::PartyView,
        change: super::party::PartyChange,
    },
}

/// An event on its way to the subscribers of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub topic: Topic,
    pub event: Event,
    /// Not delivered to this user's connections (e.g. their own typing indicator).
    pub skip_user: Option<String>,
    /// Each dialect's rendering of the event, made by the first of its connections that
    /// needs it and shared with the rest: a broadcast is serialised once per dialect, not
    /// once per recipient.
    pub rendered: RenderCache,
}

impl Delivery {
    pub fn new(topic: Topic, event: Event, skip_user: Option<String>) -> Self {
        Self {
            topic,
            event,
            skip_user,
            rendered: RenderCache::default(),
        }
    }
}

/// Renderings keyed by a dialect's own type. The core stores them and never looks inside.
#[derive(Default)]
pub struct RenderCache(Mutex<Vec<(TypeId, Arc<dyn Any + Send + Sync>)>>);

impl RenderCache {
    /// The rendering of type `R`, made by `render` if no connection has made it yet.
    pub fn get_or_render<R: Any + Send + Sync>(&self, render: impl FnOnce() -> R) -> Arc<R> {
        let mut cached = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = TypeId::of::<R>();
        if let Some((_, found)) = cached.iter().find(|(k, _)| *k == key) {
            if let Ok(found) = Arc::clone(found).downcast::<R>() {
                return found;
            }
        }
        let made = Arc::new(render());
        cached.push((key, Arc::clone(&made) as Arc<dyn Any + Send + Sync>));
        made
    }
}

/// A copy starts with nothing rendered (renderings are made again, not shared).
impl Clone for RenderCache {
    fn clone(&self) -> Self {
        Self::default()
    }
}

/// Renderings follow from the event, so they take no part in comparisons.
impl PartialEq for RenderCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for RenderCache {}

impl std::fmt::Debug for RenderCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RenderCache")
    }
}
