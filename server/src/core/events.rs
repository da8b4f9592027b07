//! What the core tells connections: events, addressed to a topic.

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
}
