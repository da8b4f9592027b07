//! What the core tells connections: events, addressed to a topic. They derive serde's
//! traits so that a fan-out can carry them between nodes; the core itself never
//! serialises them.

use std::{
    any::{Any, TypeId},
    sync::OnceLock,
};

use super::model::{Member, Message, Notification, Profile, Room};

/// Who an event is for. Connections subscribe to topics; fan-out delivers by topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// A moderator deleted a stored chat message.
    MessageDeleted(super::model::DeletedMessage),
    /// A moderator removed a member. It reaches the removed user's connections too; the hub
    /// then stops them receiving the room.
    MemberRemoved {
        room_key: String,
        user: Profile,
    },
    /// A moderator closed the room. The hub ends every subscription to it once delivered.
    RoomClosed {
        room_key: String,
    },
    /// The topic's user was banned: the hub closes every connection signed in as them,
    /// whatever they follow.
    AccessRevoked,
    /// The topic's user has read room `room_key` up to `seq` (on one of their devices).
    ReadUpTo {
        room_key: String,
        seq: u64,
    },
}

impl Event {
    /// Whether the event may wait up to [`super::ANNOUNCEMENT_DELAY`] before it wakes a
    /// connection: announcements of who joined, left, is typing or is online. A member of
    /// a big room in a storm of joins then gets them a few at a time, in one write, instead
    /// of one write each. Anything else wakes the connection at once and takes them along.
    pub fn may_wait(&self) -> bool {
        matches!(
            self,
            Self::MemberJoined { .. }
                | Self::MemberLeft { .. }
                | Self::Typing { .. }
                | Self::PresenceChanged
        )
    }
}

/// An event on its way to the subscribers of a topic.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Delivery {
    pub topic: Topic,
    pub event: Event,
    /// Which of the topic's subscribers it is for.
    pub audience: Audience,
    /// Each dialect's rendering of the event, made by the first of its connections that
    /// needs it and shared with the rest: a broadcast is serialised once per dialect, not
    /// once per recipient. Never crosses to another node: each renders its own.
    #[serde(skip)]
    pub rendered: RenderCache,
}

impl Delivery {
    /// A delivery for every subscriber of `topic`, but `skip_user`'s connections if given.
    pub fn new(topic: Topic, event: Event, skip_user: Option<String>) -> Self {
        Self::for_audience(
            topic,
            event,
            skip_user.map_or(Audience::Everyone, Audience::AllBut),
        )
    }

    /// A delivery for the subscribers of `topic` in `audience`.
    pub fn for_audience(topic: Topic, event: Event, audience: Audience) -> Self {
        Self {
            topic,
            event,
            audience,
            rendered: RenderCache::default(),
        }
    }
}

/// Which of a topic's subscribers a delivery is for, by the user each is signed in as.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Audience {
    Everyone,
    /// All but this user's connections (e.g. their own typing indicator).
    AllBut(String),
    /// This user's connections only (e.g. the owner of a media job).
    Only(String),
}

impl Audience {
    /// Whether a subscriber signed in as `user` (`None`: not signed in) is in the audience.
    pub fn includes(&self, user: Option<&str>) -> bool {
        match self {
            Self::Everyone => true,
            Self::AllBut(skipped) => user != Some(skipped.as_str()),
            Self::Only(only) => user == Some(only.as_str()),
        }
    }
}

/// How many kinds of rendering one delivery caches (each dialect that shares renderings
/// uses one kind). A kind past these is rendered afresh for each connection: correct, only
/// slower.
pub const RENDER_SLOTS: usize = 4;

/// Renderings keyed by a dialect's own type. The core stores them and never looks inside.
///
/// Lock-free: a message to a room of a thousand is looked up here a thousand times, and a
/// lock per lookup was a twentieth of a server's time at its fan-out limit. Each slot is
/// set once; the first connection of a dialect to need its rendering claims the first free
/// slot.
#[derive(Default)]
pub struct RenderCache([OnceLock<Rendering>; RENDER_SLOTS]);

struct Rendering {
    kind: TypeId,
    value: Box<dyn Any + Send + Sync>,
}

/// A rendering from the cache, or made for one connection when the cache is full.
pub enum Rendered<'a, R> {
    Shared(&'a R),
    Own(R),
}

impl<R> std::ops::Deref for Rendered<'_, R> {
    type Target = R;

    fn deref(&self) -> &R {
        match self {
            Self::Shared(shared) => shared,
            Self::Own(own) => own,
        }
    }
}

impl RenderCache {
    /// The rendering of type `R`, made by `render` if no connection has made it yet
    /// (`render` runs at most once per call).
    pub fn get_or_render<R: Any + Send + Sync>(&self, render: impl Fn() -> R) -> Rendered<'_, R> {
        let kind = TypeId::of::<R>();
        for slot in &self.0 {
            // A free slot is claimed with this kind, unless another connection claims it
            // first, with this kind or another.
            let rendering = slot.get_or_init(|| Rendering {
                kind,
                value: Box::new(render()),
            });
            if rendering.kind == kind {
                if let Some(found) = rendering.value.downcast_ref::<R>() {
                    return Rendered::Shared(found);
                }
            }
        }
        Rendered::Own(render())
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn each_kind_is_rendered_once_and_shared() {
        let cache = RenderCache::default();
        let made = AtomicUsize::new(0);
        let render = || {
            made.fetch_add(1, Ordering::Relaxed);
            String::from("frame")
        };
        assert_eq!(*cache.get_or_render(render), "frame");
        assert_eq!(*cache.get_or_render(render), "frame");
        assert_eq!(*cache.get_or_render(|| 7u32), 7);
        assert_eq!(*cache.get_or_render(render), "frame");
        assert_eq!(made.load(Ordering::Relaxed), 1);
        assert!(matches!(cache.get_or_render(render), Rendered::Shared(_)));
    }

    #[test]
    fn kinds_past_the_slots_are_rendered_afresh() {
        struct Kind<const N: usize>(usize);
        let cache = RenderCache::default();
        assert_eq!(cache.get_or_render(|| Kind::<0>(0)).0, 0);
        assert_eq!(cache.get_or_render(|| Kind::<1>(1)).0, 1);
        assert_eq!(cache.get_or_render(|| Kind::<2>(2)).0, 2);
        assert_eq!(cache.get_or_render(|| Kind::<3>(3)).0, 3);
        // Every slot is taken: the fifth kind is still rendered, just not kept.
        let fifth = cache.get_or_render(|| Kind::<4>(4));
        assert_eq!(fifth.0, 4);
        assert!(matches!(fifth, Rendered::Own(_)));
        assert!(matches!(cache.get_or_render(|| Kind::<2>(9)), Rendered::Shared(k) if k.0 == 2));
    }
}
