//! The core: rooms, membership, chat history, typing and presence. It knows nothing of JSON,
//! sockets or dialects: dialects call it with plain values and render the [`events::Event`]s
//! it delivers to their connections' inboxes.
//!
//! This file is the facade (`Core`, connections, signing in and out, presence); each area
//! adds its own `impl Core` in a file of its own: `rooms.rs`, `chat.rs`, `notifications.rs`,
//! `party.rs`, `signals.rs`, `moderation.rs`.

mod admission;
mod chat;
pub mod error;
pub mod events;
pub mod hub;
pub mod mailbox;
pub mod model;
mod moderation;
mod notifications;
pub mod party;
pub mod presence;
mod rooms;
pub mod signals;
pub mod typing;
mod unread;

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use confab_shared::limits;

pub use admission::{Admission, ADMISSIONS_IN_FLIGHT};
pub use chat::QueuedMessage;
pub use error::{CoreError, CoreResult};
use events::{Delivery, Event, Topic};
use hub::{ConnId, Hub, Inbox};
use model::Profile;
pub use moderation::{Moderator, MAX_MODERATION_LIST, MAX_REASON_CHARS, MAX_USER_ID_CHARS};
pub use notifications::MAX_BACKLOG;
pub use rooms::{
    new_room_code, HistoryPage, IfMissing, Joined, Resubscribed, RoomSpec, MAX_ROOMS_PER_USER,
    MAX_ROOM_KEY_CHARS, ROOMS_CREATED_PER_MINUTE,
};

use crate::{
    fanout::{Fanout, InProcess},
    ratelimit::SharedLimiter,
    store::Store,
};

/// Rooms one connection receives at once; past it, the least recently used one is dropped
/// (acting in a room subscribes to it again).
pub const MAX_ROOMS_PER_CONNECTION: usize = 100;
/// How long a readiness check waits for the database.
pub const READY_TIMEOUT: Duration = Duration::from_secs(1);
/// How often expired typing indicators are swept.
const TYPING_SWEEP: Duration = Duration::from_millis(250);
/// The longest an announcement (who joined, left, is typing or online) waits before it
/// wakes its connection, by default (`--announcement-delay-ms`), so that those arriving
/// close together share one write ([`events::Event::may_wait`]).
pub const ANNOUNCEMENT_DELAY: Duration = Duration::from_millis(250);
/// The longest `--announcement-delay-ms` may ask for.
pub const MAX_ANNOUNCEMENT_DELAY: Duration = Duration::from_secs(2);

/// Tunable numbers of the core.
#[derive(Clone)]
pub struct CoreSettings {
    /// Events queued for one connection before it counts as too slow and is closed.
    pub mailbox_capacity: usize,
    pub typing_ttl: Duration,
    /// How long announcements may wait to share a write ([`ANNOUNCEMENT_DELAY`]); zero:
    /// they are written at once.
    pub announcement_delay: Duration,
    /// Rooms each user may create, by any door (by default [`ROOMS_CREATED_PER_MINUTE`] at
    /// once, then as many per minute); shared by the nodes of a cluster.
    pub room_creations: Arc<SharedLimiter<String>>,
}

impl Default for CoreSettings {
    fn default() -> Self {
        Self {
            mailbox_capacity: 1024,
            typing_ttl: Duration::from_millis(limits::TYPING_TTL_MS),
            announcement_delay: ANNOUNCEMENT_DELAY,
            room_creations: Arc::new(SharedLimiter::per_minute(
                "room",
                ROOMS_CREATED_PER_MINUTE,
                ROOMS_CREATED_PER_MINUTE,
                None,
            )),
        }
    }
}

#[derive(Clone)]
pub struct Core {
    inner: Arc<CoreInner>,
}

struct CoreInner {
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    fanout: Arc<dyn Fanout>,
    presence: Arc<presence::Presence>,
    typing: typing::Typing,
    settings: CoreSettings,
    admissions: admission::Admissions,
    next_conn: AtomicU64,
}

/// A connection's handle on the core. Dropping it signs the connection out and removes it.
pub struct Connection {
    id: ConnId,
    core: Core,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.core.sign_out(self);
        self.core.inner.hub.remove(self.id);
    }
}

impl Connection {
    pub fn id(&self) -> ConnId {
        self.id
    }
}

/// Whether `value` is 1 to `max_chars` characters, none of them a control character.
pub(crate) fn is_one_line(value: &str, max_chars: usize) -> bool {
    (1..=max_chars).contains(&value.chars().count()) && !value.chars().any(char::is_control)
}

/// Refuses a `value` that is not [`is_one_line`], naming it `what`.
pub(crate) fn check_one_line(what: &str, value: &str, max_chars: usize) -> CoreResult<()> {
    if is_one_line(value, max_chars) {
        return Ok(());
    }
    Err(CoreError::invalid(format!(
        "{what} must be 1 to {max_chars} characters without control characters"
    )))
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// What a [`Fanout`] works on: the core's hub, presence and store.
pub struct FanoutParts {
    pub hub: Arc<Hub>,
    pub presence: Arc<presence::Presence>,
    pub store: Arc<dyn Store>,
}

impl Core {
    /// A core delivering in-process (one node).
    pub fn new(store: Arc<dyn Store>, settings: CoreSettings) -> Self {
        Self::with_fanout(store, settings, |parts| Arc::new(InProcess::new(parts.hub)))
    }

    /// A core whose deliveries and presence go through the fan-out `fanout` makes. Spawns
    /// the typing sweeper and the announcements' ticker, which end with the core.
    pub fn with_fanout(
        store: Arc<dyn Store>,
        settings: CoreSettings,
        fanout: impl FnOnce(FanoutParts) -> Arc<dyn Fanout>,
    ) -> Self {
        let delay = settings.announcement_delay;
        let hub = Arc::new(if delay.is_zero() {
            Hub::default()
        } else {
            Hub::deferring_announcements()
        });
        let presence = Arc::new(presence::Presence::default());
        let fanout = fanout(FanoutParts {
            hub: Arc::clone(&hub),
            presence: Arc::clone(&presence),
            store: Arc::clone(&store),
        });
        let core = Self {
            inner: Arc::new(CoreInner {
                store,
                hub,
                fanout,
                presence,
                typing: typing::Typing::new(settings.typing_ttl),
                settings,
                admissions: admission::Admissions::default(),
                next_conn: AtomicU64::new(1),
            }),
        };
        let weak = Arc::downgrade(&core.inner);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(TYPING_SWEEP);
            loop {
                ticker.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                Core { inner }.expire_typing(Instant::now());
            }
        });
        if delay.is_zero() {
            return core;
        }
        let hub = Arc::downgrade(&core.inner.hub);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(delay);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(hub) = hub.upgrade() else { return };
                hub.wake_deferred();
            }
        });
        core
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Ends every connection's mailbox, and that of any connection made from now on, so
    /// that each dialect closes it for the server's shutdown ([`mailbox::End`]).
    pub fn close_connections(&self) {
        self.inner.hub.close_all();
    }

    /// Registers a new connection: its handle, and the inbox its events arrive in.
    pub fn connect(&self) -> (Connection, Inbox) {
        let id = ConnId(self.inner.next_conn.fetch_add(1, Ordering::Relaxed));
        let inbox = self.inner.hub.add(id, self.inner.settings.mailbox_capacity);
        (
            Connection {
                id,
                core: self.clone(),
            },
            inbox,
        )
    }

    /// Signs the connection in as `profile` (updating the stored profile); any earlier
    /// identity and its subscriptions are dropped first. A banned user is refused. Gives the
    /// profile as the core keeps it, to share rather than copy.
    pub async fn sign_in(
        &self,
        conn: &Connection,
        profile: Profile,
        _: &Admission,
    ) -> CoreResult<Arc<Profile>> {
        let (profile, _) = self.sign_in_reading(conn, profile, false).await?;
        Ok(profile)
    }

    /// [`Core::sign_in`], and the user's rooms, most recently joined first, read with the
    /// ban and the profile.
    async fn sign_in_reading(
        &self,
        conn: &Connection,
        profile: Profile,
        with_rooms: bool,
    ) -> CoreResult<(Arc<Profile>, Option<Vec<String>>)> {
        self.sign_out(conn);
        // One copy, shared by the hub's entry and presence.
        let profile = Arc::new(profile);
        // The connection is the user's before the ban is read: a ban stored after the read
        // revokes their connections after it is stored (see `ban`), and so finds this one.
        // Presence comes after, so a refused connection was never announced.
        self.inner.hub.set_user(conn.id, Some(Arc::clone(&profile)));
        let refused = |err: CoreError| {
            self.inner.hub.set_user(conn.id, None);
            err
        };
        let account = self
            .inner
            .store
            .account(&profile.user_id, with_rooms)
            .await
            .map_err(|err| refused(err.into()))?;
        if account.banned {
            return Err(refused(CoreError::Banned));
        }
        // Most sign-ins are of a user whose profile has not changed: no write for them.
        if account.profile.as_ref() != Some(&*profile) {
            let stored = self.inner.store.upsert_profile(&profile, now_ms()).await;
            stored.map_err(|err| refused(err.into()))?;
        }
        let change = self.inner.presence.arrive(&profile);
        self.inner.fanout.signed_in(&profile, change.here);
        if change.everywhere {
            self.inner.hub.presence_changed();
        }
        Ok((profile, account.rooms))
    }

    /// [`Core::sign_in`], then subscribes the connection to every room its user is a member
    /// of (a reconnect), listed by the sign-in's own read (see `resubscribe_to`).
    pub async fn sign_in_resubscribing(
        &self,
        conn: &Connection,
        profile: Profile,
        _: &Admission,
    ) -> CoreResult<Resubscribed> {
        let (user, rooms) = self.sign_in_reading(conn, profile, true).await?;
        let rooms = rooms.unwrap_or_default();
        let rooms = self.resubscribe_to(conn, &user.user_id, rooms).await;
        Ok(Resubscribed { user, rooms })
    }

    /// Updates the signed-in user's stored profile (a new name or avatar) without touching
    /// the connection's subscriptions.
    pub async fn update_profile(&self, conn: &Connection, profile: Profile) -> CoreResult<()> {
        let user = self.signed_in(conn)?;
        if user.user_id != profile.user_id {
            return Err(CoreError::invalid("a connection cannot change whose it is"));
        }
        self.inner.store.upsert_profile(&profile, now_ms()).await?;
        let profile = Arc::new(profile);
        self.inner.presence.refresh(&profile);
        self.inner.fanout.signed_in(&profile, true);
        self.inner.hub.update_user(conn.id, profile);
        Ok(())
    }

    /// Signs the connection out: no identity, no subscriptions.
    pub fn sign_out(&self, conn: &Connection) {
        if let Some(previous) = self.inner.hub.set_user(conn.id, None) {
            let change = self.inner.presence.depart(&previous.user_id);
            if change.here {
                self.inner.fanout.gone_from_here(&previous.user_id);
            }
            if change.everywhere {
                self.inner.hub.presence_changed();
            }
        }
    }

    /// Who the connection is signed in as.
    pub fn user(&self, conn: &Connection) -> Option<Profile> {
        self.inner.hub.user(conn.id)
    }

    pub fn is_online(&self, user_id: &str) -> bool {
        self.inner.presence.is_online(user_id)
    }

    /// Everyone online now (signed in on any connection, in any dialect, on any node), by
    /// name.
    pub fn online_users(&self) -> Vec<Profile> {
        self.inner.presence.online()
    }

    /// Delivers [`Event::PresenceChanged`] to this signed-in connection from now on.
    pub fn watch_presence(&self, conn: &Connection) -> CoreResult<()> {
        self.signed_in(conn)?;
        self.watch(conn, Topic::Presence);
        Ok(())
    }

    /// Subscribes the connection to `topic`, with room for it beside
    /// [`MAX_ROOMS_PER_CONNECTION`] rooms.
    fn watch(&self, conn: &Connection, topic: Topic) {
        let hub = &self.inner.hub;
        hub.subscribe(conn.id, topic, MAX_ROOMS_PER_CONNECTION + 1);
    }

    /// Tells the other nodes, once what is queued for them has gone, that this one is
    /// leaving: its users go offline there at once rather than when its heartbeat stops.
    pub async fn leave_cluster(&self) {
        self.inner.fanout.leave().await;
    }

    /// Whether this node can serve: its database answers within [`READY_TIMEOUT`] with
    /// every migration applied, and its fan-out reaches the other nodes. Why not, if not.
    pub async fn readiness(&self) -> Result<(), &'static str> {
        match tokio::time::timeout(READY_TIMEOUT, self.inner.store.ready()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::warn!(%err, "not ready: the database");
                return Err("database unavailable");
            }
            Err(_) => return Err("database too slow"),
        }
        self.inner.fanout.ready()
    }

    fn signed_in(&self, conn: &Connection) -> CoreResult<Profile> {
        self.user(conn).ok_or(CoreError::NotSignedIn)
    }

    pub(crate) fn publish(&self, topic: Topic, event: Event, skip_user: Option<&str>) {
        self.publish_delivery(Delivery::new(topic, event, skip_user.map(str::to_owned)));
    }

    pub(crate) fn publish_delivery(&self, delivery: Delivery) {
        self.inner.fanout.publish(delivery);
    }
}
