//! The core: rooms, membership, chat history, typing and presence. It knows nothing of JSON,
//! sockets or dialects: dialects call it with plain values and render the [`events::Event`]s
//! it delivers to their connections' inboxes.

mod chat;
pub mod error;
pub mod events;
pub mod hub;
pub mod mailbox;
pub mod model;
pub mod party;
pub mod presence;
pub mod signals;
pub mod typing;

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use confab_shared::limits;
use rand::Rng;

pub use chat::QueuedMessage;
pub use error::{CoreError, CoreResult};
use events::{Delivery, Event, Topic};
use hub::{ConnId, Hub, Inbox};
use model::{Member, Message, NewRoom, Notification, Profile, Room};

use crate::{
    fanout::{Fanout, InProcess},
    store::{AddMember, Store},
};

/// Longest room key (code, UUID or name), in characters.
pub const MAX_ROOM_KEY_CHARS: usize = 128;
/// Rooms one connection receives at once; past it, the least recently used one is dropped
/// (acting in a room subscribes to it again).
pub const MAX_ROOMS_PER_CONNECTION: usize = 100;
/// Rooms one user may be a member of at once.
pub const MAX_ROOMS_PER_USER: usize = 200;
/// Notifications sent on connect, or listed, at most.
pub const MAX_BACKLOG: usize = 100;
/// How often expired typing indicators are swept.
const TYPING_SWEEP: Duration = Duration::from_millis(250);
/// Attempts at finding a free room code before giving up.
const ROOM_CODE_ATTEMPTS: usize = 16;

/// Tunable numbers of the core.
#[derive(Debug, Clone)]
pub struct CoreSettings {
    /// Events queued for one connection before it counts as too slow and is closed.
    pub mailbox_capacity: usize,
    pub typing_ttl: Duration,
}

impl Default for CoreSettings {
    fn default() -> Self {
        Self {
            mailbox_capacity: 1024,
            typing_ttl: Duration::from_millis(limits::TYPING_TTL_MS),
        }
    }
}

/// A room to create: `key` is chosen by the caller (a UUID, a name) or, when `None`, is a
/// fresh room code.
#[derive(Debug, Clone)]
pub struct RoomSpec {
    pub key: Option<String>,
    pub name: String,
    pub room_type: String,
    pub max_users: Option<u32>,
}

/// What joining gave.
#[derive(Debug, Clone)]
pub struct Joined {
    pub room: Room,
    pub members: Vec<Member>,
    /// The last [`limits::HISTORY_LEN`] messages, oldest first.
    pub history: Vec<Message>,
    /// `false` when the user was a member already.
    pub newly_joined: bool,
}

/// What to do when a joined room does not exist.
#[derive(Debug, Clone)]
pub enum IfMissing {
    Refuse,
    /// Create it (rooms named by clients, as the Socket.IO contracts use them).
    Create {
        room_type: String,
    },
}

#[derive(Clone)]
pub struct Core {
    inner: Arc<CoreInner>,
}

struct CoreInner {
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    fanout: Arc<dyn Fanout>,
    presence: presence::Presence,
    typing: typing::Typing,
    settings: CoreSettings,
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

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

impl Core {
    /// A core delivering in-process. Spawns the typing sweeper, which ends with the core.
    pub fn new(store: Arc<dyn Store>, settings: CoreSettings) -> Self {
        let hub = Arc::new(Hub::default());
        let fanout = Arc::new(InProcess::new(Arc::clone(&hub)));
        let core = Self {
            inner: Arc::new(CoreInner {
                store,
                hub,
                fanout,
                presence: presence::Presence::default(),
                typing: typing::Typing::new(settings.typing_ttl),
                settings,
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
        core
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
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
    /// identity and its subscriptions are dropped first.
    pub async fn sign_in(&self, conn: &Connection, profile: Profile) -> CoreResult<()> {
        self.inner.store.upsert_profile(&profile, now_ms()).await?;
        self.sign_out(conn);
        if self.inner.presence.arrive(&profile) {
            self.publish(Topic::Presence, Event::PresenceChanged, None);
        }
        self.inner.hub.set_user(conn.id, Some(profile));
        Ok(())
    }

    /// Updates the signed-in user's stored profile (a new name or avatar) without touching
    /// the connection's subscriptions.
    pub async fn update_profile(&self, conn: &Connection, profile: Profile) -> CoreResult<()> {
        let user = self.signed_in(conn)?;
        if user.user_id != profile.user_id {
            return Err(CoreError::invalid("a connection cannot change whose it is"));
        }
        self.inner.store.upsert_profile(&profile, now_ms()).await?;
        self.inner.presence.refresh(&profile);
        self.inner.hub.update_user(conn.id, profile);
        Ok(())
    }

    /// Signs the connection out: no identity, no subscriptions.
    pub fn sign_out(&self, conn: &Connection) {
        if let Some(previous) = self.inner.hub.set_user(conn.id, None) {
            if self.inner.presence.depart(&previous.user_id) {
                self.publish(Topic::Presence, Event::PresenceChanged, None);
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

    /// Everyone online now (signed in on any connection, in any dialect), by name.
    pub fn online_users(&self) -> Vec<Profile> {
        self.inner.presence.online()
    }

    /// Stores a notification and then delivers it to the user's notification sockets.
    pub async fn notify(&self, notification: Notification) -> CoreResult<Notification> {
        self.inner.store.insert_notification(&notification).await?;
        self.publish(
            Topic::User(notification.user_id.clone()),
            Event::Notification(notification.clone()),
            None,
        );
        Ok(notification)
    }

    /// Delivers the signed-in user's notifications and pings to this connection from now on.
    pub fn watch_notifications(&self, conn: &Connection) -> CoreResult<()> {
        let user = self.signed_in(conn)?;
        self.inner.hub.subscribe(
            conn.id,
            Topic::User(user.user_id),
            MAX_ROOMS_PER_CONNECTION + 1,
        );
        Ok(())
    }

    /// The signed-in user's notifications no socket has been sent yet, oldest first.
    pub async fn undelivered_notifications(
        &self,
        conn: &Connection,
    ) -> CoreResult<Vec<Notification>> {
        let user = self.signed_in(conn)?;
        Ok(self
            .inner
            .store
            .undelivered_notifications(&user.user_id, MAX_BACKLOG)
            .await?)
    }

    /// Records that a socket has been sent notification `id`.
    pub async fn mark_delivered(&self, id: &str) -> CoreResult<()> {
        Ok(self.inner.store.mark_delivered(id, now_ms()).await?)
    }

    /// A user's newest notifications, newest first.
    pub async fn notifications_of(&self, user_id: &str) -> CoreResult<Vec<Notification>> {
        Ok(self
            .inner
            .store
            .notifications_of(user_id, MAX_BACKLOG)
            .await?)
    }

    /// Marks a user's notification read; `NotificationNotFound` when it is not theirs or
    /// does not exist.
    pub async fn mark_read(&self, user_id: &str, id: &str) -> CoreResult<()> {
        if self.inner.store.mark_read(user_id, id, now_ms()).await? {
            Ok(())
        } else {
            Err(CoreError::NotificationNotFound)
        }
    }

    /// Pings everyone online named `username` (not stored). Returns how many users it
    /// reached; 0 when nobody by that name is online.
    pub fn ping(&self, from: &Profile, username: &str, join_url: Option<String>) -> usize {
        let targets: Vec<Profile> = self
            .online_users()
            .into_iter()
            .filter(|user| user.username == username)
            .collect();
        for target in &targets {
            let event = Event::Ping {
                from_username: from.username.clone(),
                join_url: join_url.clone(),
                at_ms: now_ms(),
            };
            self.publish(Topic::User(target.user_id.clone()), event, None);
        }
        targets.len()
    }

    /// Delivers [`Event::PresenceChanged`] to this signed-in connection from now on.
    pub fn watch_presence(&self, conn: &Connection) -> CoreResult<()> {
        self.signed_in(conn)?;
        self.inner
            .hub
            .subscribe(conn.id, Topic::Presence, MAX_ROOMS_PER_CONNECTION + 1);
        Ok(())
    }

    fn signed_in(&self, conn: &Connection) -> CoreResult<Profile> {
        self.user(conn).ok_or(CoreError::NotSignedIn)
    }

    /// Creates a room with the caller as host and first member, and subscribes the
    /// connection to it.
    pub async fn create_room(&self, conn: &Connection, spec: RoomSpec) -> CoreResult<Room> {
        let user = self.signed_in(conn)?;
        self.check_room_quota(&user.user_id).await?;
        let room = self.insert_room(&user, spec, limits::MAX_USERS_CAP).await?;
        self.join_room(conn, &room.key, IfMissing::Refuse)
            .await
            .map(|joined| joined.room)
    }

    /// Stores a new room of at most `max_users_cap` members.
    async fn insert_room(
        &self,
        host: &Profile,
        spec: RoomSpec,
        max_users_cap: u32,
    ) -> CoreResult<Room> {
        let room_type = spec.room_type.trim();
        if room_type.is_empty() || room_type.chars().count() > limits::MAX_ROOM_TYPE_CHARS {
            return Err(CoreError::invalid(format!(
                "room type must be 1 to {} characters",
                limits::MAX_ROOM_TYPE_CHARS
            )));
        }
        let max_users = spec.max_users.unwrap_or(limits::DEFAULT_MAX_USERS);
        if !(1..=max_users_cap).contains(&max_users) {
            return Err(CoreError::invalid(format!(
                "the maximum number of users must be between 1 and {max_users_cap}"
            )));
        }
        if let Some(key) = &spec.key {
            validate_room_key(key)?;
        }
        for _ in 0..ROOM_CODE_ATTEMPTS {
            let new_room = NewRoom {
                key: spec.key.clone().unwrap_or_else(new_room_code),
                name: spec.name.clone(),
                room_type: room_type.to_owned(),
                max_users,
                host_id: host.user_id.clone(),
                created_at_ms: now_ms(),
            };
            if self.inner.store.create_room(&new_room).await? {
                return self
                    .inner
                    .store
                    .room(&new_room.key)
                    .await?
                    .ok_or(CoreError::RoomNotFound);
            }
            if spec.key.is_some() {
                return Err(CoreError::invalid("a room with that id exists already"));
            }
        }
        Err(CoreError::invalid("no free room code; try again"))
    }

    async fn check_room_quota(&self, user_id: &str) -> CoreResult<()> {
        if self.inner.store.rooms_of(user_id).await?.len() >= MAX_ROOMS_PER_USER {
            return Err(CoreError::TooManyRooms(MAX_ROOMS_PER_USER));
        }
        Ok(())
    }

    /// Joins a room (harmless when a member already) and subscribes the connection to it.
    /// New members are announced to the others.
    pub async fn join_room(
        &self,
        conn: &Connection,
        key: &str,
        if_missing: IfMissing,
    ) -> CoreResult<Joined> {
        let user = self.signed_in(conn)?;
        validate_room_key(key)?;
        let store = &self.inner.store;
        let mut outcome = store.add_member(key, &user.user_id, now_ms()).await?;
        if outcome == AddMember::NoSuchRoom {
            if let IfMissing::Create { room_type } = if_missing {
                let spec = RoomSpec {
                    key: Some(key.to_owned()),
                    name: key.to_owned(),
                    room_type,
                    max_users: Some(limits::MAX_JOINED_ROOM_MEMBERS),
                };
                // Two first joiners race to create it; either way it exists afterwards.
                let _ = self
                    .insert_room(&user, spec, limits::MAX_JOINED_ROOM_MEMBERS)
                    .await;
                outcome = store.add_member(key, &user.user_id, now_ms()).await?;
            }
        }
        if outcome == AddMember::Added
            && store.rooms_of(&user.user_id).await?.len() > MAX_ROOMS_PER_USER
        {
            store.remove_member(key, &user.user_id).await?;
            return Err(CoreError::TooManyRooms(MAX_ROOMS_PER_USER));
        }
        match outcome {
            AddMember::NoSuchRoom => return Err(CoreError::RoomNotFound),
            AddMember::Full => return Err(CoreError::RoomFull),
            AddMember::Added | AddMember::AlreadyMember => {}
        }
        let topic = Topic::Room(key.to_owned());
        self.subscribe_member(conn, key, &user.user_id).await?;
        let room = store.room(key).await?.ok_or(CoreError::RoomNotFound)?;
        let members = self.members(key).await?;
        let history = store.recent_messages(key, limits::HISTORY_LEN).await?;
        let newly_joined = outcome == AddMember::Added;
        if newly_joined {
            let member = members
                .iter()
                .find(|m| m.profile.user_id == user.user_id)
                .cloned()
                .unwrap_or(Member {
                    profile: user.clone(),
                    joined_at_ms: now_ms(),
                    online: true,
                });
            self.publish(
                topic,
                Event::MemberJoined {
                    room_key: key.to_owned(),
                    member,
                },
                Some(&user.user_id),
            );
        }
        Ok(Joined {
            room,
            members,
            history,
            newly_joined,
        })
    }

    /// Subscribes the connection to every room its user is a member of (after a reconnect);
    /// returns their keys, most recently joined first.
    pub async fn resubscribe(&self, conn: &Connection) -> CoreResult<Vec<String>> {
        let user = self.signed_in(conn)?;
        let keys = self.inner.store.rooms_of(&user.user_id).await?;
        // Oldest first, so the most recently joined rooms are the last evicted.
        for key in keys.iter().take(MAX_ROOMS_PER_CONNECTION).rev() {
            self.inner
                .hub
                .subscribe(conn.id, Topic::Room(key.clone()), MAX_ROOMS_PER_CONNECTION);
        }
        // A leave that raced the subscriptions must not leave this connection receiving.
        let still = self.inner.store.rooms_of(&user.user_id).await?;
        for key in keys.iter().filter(|key| !still.contains(key)) {
            self.inner
                .hub
                .unsubscribe(conn.id, &Topic::Room(key.clone()));
        }
        Ok(still)
    }

    /// Ends the user's membership; all their connections stop receiving the room.
    pub async fn leave_room(&self, conn: &Connection, key: &str) -> CoreResult<()> {
        let user = self.signed_in(conn)?;
        if !self.inner.store.remove_member(key, &user.user_id).await? {
            return Err(if self.inner.store.room(key).await?.is_some() {
                CoreError::NotAMember
            } else {
                CoreError::RoomNotFound
            });
        }
        let topic = Topic::Room(key.to_owned());
        self.inner.hub.unsubscribe_user(&user.user_id, &topic);
        if self.inner.typing.stop(key, &user.user_id) {
            self.publish_typing(key, &user, false);
        }
        self.publish(
            topic,
            Event::MemberLeft {
                room_key: key.to_owned(),
                user,
            },
            None,
        );
        Ok(())
    }

    /// Stops this connection receiving a room without ending the membership.
    pub fn unsubscribe(&self, conn: &Connection, key: &str) {
        self.inner
            .hub
            .unsubscribe(conn.id, &Topic::Room(key.to_owned()));
    }

    /// A room the caller is a member of.
    pub async fn room(&self, conn: &Connection, key: &str) -> CoreResult<Room> {
        let user = self.signed_in(conn)?;
        self.require_member(key, &user.user_id).await
    }

    /// The caller's most recently joined room, if any.
    pub async fn current_room(&self, conn: &Connection) -> CoreResult<Option<Room>> {
        let user = self.signed_in(conn)?;
        match self.inner.store.rooms_of(&user.user_id).await?.first() {
            Some(key) => Ok(self.inner.store.room(key).await?),
            None => Ok(None),
        }
    }

    /// Members with their presence.
    pub async fn members(&self, key: &str) -> CoreResult<Vec<Member>> {
        let mut members = self.inner.store.members(key).await?;
        for member in &mut members {
            member.online = self.inner.presence.is_online(&member.profile.user_id);
        }
        Ok(members)
    }

    async fn require_member(&self, key: &str, user_id: &str) -> CoreResult<Room> {
        let room = self
            .inner
            .store
            .room(key)
            .await?
            .ok_or(CoreError::RoomNotFound)?;
        if !self.inner.store.is_member(key, user_id).await? {
            return Err(CoreError::NotAMember);
        }
        Ok(room)
    }

    /// The signed-in member acting in room `key`, and the room. The connection receives the
    /// room from then on, even when the membership was made on another connection.
    async fn act_in(&self, conn: &Connection, key: &str) -> CoreResult<(Profile, Room)> {
        let user = self.signed_in(conn)?;
        let room = self.require_member(key, &user.user_id).await?;
        let topic = Topic::Room(key.to_owned());
        if self.inner.hub.is_subscribed(conn.id, &topic) {
            // Marks it used, so it is the last to be evicted.
            self.inner
                .hub
                .subscribe(conn.id, topic, MAX_ROOMS_PER_CONNECTION);
        } else {
            self.subscribe_member(conn, key, &user.user_id).await?;
        }
        Ok((user, room))
    }

    /// The signed-in member acting in room `key`, for actions that need no more of the room
    /// (chat, typing). A connection subscribed to the room is known to be a member without
    /// asking the store: subscriptions are made only after the membership is checked, and a
    /// leave removes the room from every connection of the user. Others are checked, and
    /// subscribed, as [`Self::act_in`] does.
    async fn act_as_member(&self, conn: &Connection, key: &str) -> CoreResult<Profile> {
        let user = self.signed_in(conn)?;
        let topic = Topic::Room(key.to_owned());
        if self.inner.hub.is_subscribed(conn.id, &topic) {
            // Marks it used, so it is the last to be evicted.
            self.inner
                .hub
                .subscribe(conn.id, topic, MAX_ROOMS_PER_CONNECTION);
            return Ok(user);
        }
        self.act_in(conn, key).await.map(|(user, _)| user)
    }

    /// Subscribes the connection to a room its user is a member of, then checks the
    /// membership again: a leave (from another connection) between the first check and the
    /// subscription would otherwise leave a non-member receiving the room.
    async fn subscribe_member(
        &self,
        conn: &Connection,
        key: &str,
        user_id: &str,
    ) -> CoreResult<()> {
        let topic = Topic::Room(key.to_owned());
        self.inner
            .hub
            .subscribe(conn.id, topic.clone(), MAX_ROOMS_PER_CONNECTION);
        if !self.inner.store.is_member(key, user_id).await? {
            self.inner.hub.unsubscribe(conn.id, &topic);
            return Err(CoreError::NotAMember);
        }
        Ok(())
    }

    /// Starts or stops the caller's typing indicator; the others see it change. A started
    /// indicator ends by itself after the typing TTL unless refreshed.
    pub async fn set_typing(&self, conn: &Connection, key: &str, typing: bool) -> CoreResult<()> {
        let user = self.act_as_member(conn, key).await?;
        let changed = if typing {
            self.inner.typing.start(key, &user, Instant::now())
        } else {
            self.inner.typing.stop(key, &user.user_id)
        };
        if changed {
            self.publish_typing(key, &user, typing);
        }
        Ok(())
    }

    fn expire_typing(&self, now: Instant) {
        for (key, user) in self.inner.typing.expire(now) {
            self.publish_typing(&key, &user, false);
        }
    }

    fn publish_typing(&self, key: &str, user: &Profile, typing: bool) {
        let event = Event::Typing {
            room_key: key.to_owned(),
            user: user.clone(),
            typing,
        };
        self.publish(Topic::Room(key.to_owned()), event, Some(&user.user_id));
    }

    /// Starts the game: stores `game_state` (an opaque document) and tells every member.
    pub async fn start_game(
        &self,
        conn: &Connection,
        key: &str,
        game_state: &str,
    ) -> CoreResult<Room> {
        let (_, room) = self.act_in(conn, key).await?;
        if room.phase == model::Phase::Playing {
            return Err(CoreError::AlreadyPlaying);
        }
        if game_state.len() > limits::MAX_GAME_STATE_BYTES {
            return Err(CoreError::invalid(format!(
                "the game state is larger than {} bytes",
                limits::MAX_GAME_STATE_BYTES
            )));
        }
        // The store starts only a room still in the lobby: of two racing starts, one wins.
        let room = self
            .inner
            .store
            .start_game(key, game_state)
            .await?
            .ok_or(CoreError::AlreadyPlaying)?;
        self.publish(
            Topic::Room(key.to_owned()),
            Event::GameStarted(room.clone()),
            None,
        );
        Ok(room)
    }

    /// Stored messages after `after_seq`, oldest first, at most [`limits::HISTORY_LEN`].
    pub async fn history_after(
        &self,
        conn: &Connection,
        key: &str,
        after_seq: u64,
    ) -> CoreResult<Vec<Message>> {
        let user = self.signed_in(conn)?;
        self.require_member(key, &user.user_id).await?;
        Ok(self
            .inner
            .store
            .messages_after(key, after_seq, limits::HISTORY_LEN)
            .await?)
    }

    pub(crate) fn publish(&self, topic: Topic, event: Event, skip_user: Option<&str>) {
        self.inner
            .fanout
            .publish(Delivery::new(topic, event, skip_user.map(str::to_owned)));
    }
}

pub(crate) fn validate_room_key(key: &str) -> CoreResult<()> {
    let chars = key.chars().count();
    if chars == 0 || chars > MAX_ROOM_KEY_CHARS || key.chars().any(char::is_control) {
        return Err(CoreError::invalid(format!(
            "room id must be 1 to {MAX_ROOM_KEY_CHARS} characters without control characters"
        )));
    }
    Ok(())
}

/// A fresh room code: [`limits::ROOM_CODE_LEN`] characters of the unambiguous alphabet.
pub fn new_room_code() -> String {
    let mut rng = rand::rng();
    (0..limits::ROOM_CODE_LEN)
        .map(|_| {
            char::from(
                limits::ROOM_CODE_ALPHABET[rng.random_range(0..limits::ROOM_CODE_ALPHABET.len())],
            )
        })
        .collect()
}
