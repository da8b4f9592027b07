//! Rooms: creating, joining and leaving them, who is in them, typing, starting a game and
//! reading history. Membership is stored; a connection receives a room's events while it
//! is subscribed, and subscribing checks membership again afterwards (see `join_room`).

use std::{sync::Arc, time::Instant};

use confab_shared::limits;
use rand::Rng;

use super::{
    events::{Event, Topic},
    model::{AddMember, Member, Message, NewRoom, Profile, Room},
    now_ms, Admission, Connection, Core, CoreError, CoreResult, MAX_ROOMS_PER_CONNECTION,
};

/// Longest room key (code, UUID or name), in characters.
pub const MAX_ROOM_KEY_CHARS: usize = 128;
/// Rooms one user may be a member of at once.
pub const MAX_ROOMS_PER_USER: usize = 200;
/// Rooms a user may create at once and then per minute, by default (`--rooms-per-minute`).
pub const ROOMS_CREATED_PER_MINUTE: u32 = 20;
/// Attempts at finding a free room or party code before giving up.
pub(super) const ROOM_CODE_ATTEMPTS: usize = 16;

/// A room to create: `key` is chosen by the caller (a UUID, a name) or, when `None`, is a
/// fresh room code.
#[derive(Debug, Clone)]
pub struct RoomSpec {
    pub key: Option<String>,
    pub name: String,
    pub room_type: String,
    pub max_users: Option<u32>,
}

/// What signing in and resubscribing gave ([`Core::sign_in_resubscribing`]).
#[derive(Debug)]
pub struct Resubscribed {
    /// The profile as the core keeps it.
    pub user: Arc<Profile>,
    /// The rooms the connection is subscribed to again, most recently joined first, or why
    /// that could not be confirmed (the connection is then in none of them).
    pub rooms: CoreResult<Vec<String>>,
}

/// What joining gave.
#[derive(Debug, Clone)]
pub struct Joined {
    pub room: Room,
    /// The last [`limits::HISTORY_LEN`] messages, oldest first.
    pub history: Vec<Message>,
    /// `false` when the user was a member already.
    pub newly_joined: bool,
    /// The members in the order they joined, with their presence, when asked for
    /// ([`Core::join_room_listing_members`]).
    pub members: Option<Vec<Member>>,
}

/// Which page of a room's history to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryPage {
    /// What was stored after this `seq` (lossless resume).
    After(u64),
    /// The newest messages before this `seq` (older history).
    Before(u64),
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

impl Core {
    /// Creates a room with the caller as host and first member, and subscribes the
    /// connection to it.
    pub async fn create_room(
        &self,
        conn: &Connection,
        spec: RoomSpec,
        admission: &Admission,
    ) -> CoreResult<Room> {
        let user = self.signed_in(conn)?;
        self.check_room_quota(&user.user_id).await?;
        self.check_creation_rate(&user.user_id).await?;
        let room = self.insert_room(&user, spec, limits::MAX_USERS_CAP).await?;
        self.join_room(conn, &room.key, IfMissing::Refuse, admission)
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
        super::check_one_line("room type", room_type, limits::MAX_ROOM_TYPE_CHARS)?;
        let max_users = spec.max_users.unwrap_or(limits::DEFAULT_MAX_USERS);
        if !(1..=max_users_cap).contains(&max_users) {
            return Err(CoreError::invalid(format!(
                "the maximum number of users must be between 1 and {max_users_cap}"
            )));
        }
        if let Some(key) = &spec.key {
            validate_room_key(key)?;
        }
        let name = spec.name.trim();
        if !name.is_empty() && !super::is_one_line(name, limits::MAX_ROOM_NAME_CHARS) {
            return Err(CoreError::invalid(format!(
                "room name must be at most {} characters without control characters",
                limits::MAX_ROOM_NAME_CHARS
            )));
        }
        for _ in 0..ROOM_CODE_ATTEMPTS {
            let new_room = NewRoom {
                key: spec.key.clone().unwrap_or_else(new_room_code),
                name: name.to_owned(),
                room_type: room_type.to_owned(),
                max_users,
                host_id: host.user_id.clone(),
                created_at_ms: now_ms(),
            };
            if self.inner.store.create_room(&new_room).await? {
                return self
                    .store()
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

    /// Rooms are never deleted, so creating them is limited per user, whatever the door.
    async fn check_creation_rate(&self, user_id: &str) -> CoreResult<()> {
        let limiter = &self.inner.settings.room_creations;
        if limiter.try_take(&user_id.to_owned()).await {
            Ok(())
        } else {
            Err(CoreError::CreatingTooFast)
        }
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
        admission: &Admission,
    ) -> CoreResult<Joined> {
        self.join(conn, key, if_missing, false, admission).await
    }

    /// [`Core::join_room`], with the room's members in what it gives.
    pub async fn join_room_listing_members(
        &self,
        conn: &Connection,
        key: &str,
        if_missing: IfMissing,
        admission: &Admission,
    ) -> CoreResult<Joined> {
        self.join(conn, key, if_missing, true, admission).await
    }

    async fn join(
        &self,
        conn: &Connection,
        key: &str,
        if_missing: IfMissing,
        with_members: bool,
        _: &Admission,
    ) -> CoreResult<Joined> {
        let user = self.signed_in(conn)?;
        validate_room_key(key)?;
        let store = &self.inner.store;
        let mut joined_at_ms = now_ms();
        let mut outcome = store.add_member(key, &user.user_id, joined_at_ms).await?;
        if outcome == AddMember::NotFound {
            if let IfMissing::Create { room_type } = if_missing {
                let spec = RoomSpec {
                    key: Some(key.to_owned()),
                    name: key.to_owned(),
                    room_type,
                    max_users: Some(limits::MAX_JOINED_ROOM_MEMBERS),
                };
                self.check_creation_rate(&user.user_id).await?;
                // Two first joiners race to create it; either way it exists afterwards.
                let _ = self
                    .insert_room(&user, spec, limits::MAX_JOINED_ROOM_MEMBERS)
                    .await;
                joined_at_ms = now_ms();
                outcome = store.add_member(key, &user.user_id, joined_at_ms).await?;
            }
        }
        match outcome {
            AddMember::NotFound => return Err(CoreError::RoomNotFound),
            // A closed room has no seats left.
            AddMember::Full => {
                let closed = store.room(key).await?.is_some_and(|room| room.closed);
                return Err(if closed {
                    CoreError::RoomClosed
                } else {
                    CoreError::RoomFull
                });
            }
            AddMember::Added | AddMember::AlreadyMember => {}
        }
        let topic = Topic::Room(key.to_owned());
        // Subscribed before the read, so the connection has every message after the history
        // it reads. The read checks the membership again (see `subscribe_member`).
        self.inner
            .hub
            .subscribe(conn.id, topic.clone(), MAX_ROOMS_PER_CONNECTION);
        let newly_joined = outcome == AddMember::Added;
        let read = store
            .room_on_join(key, &user.user_id, limits::HISTORY_LEN, with_members)
            .await;
        let view = match read {
            Ok(Some(view)) if view.is_member => view,
            // Left (from another connection) since it was added, or gone.
            refused => {
                self.inner.hub.unsubscribe(conn.id, &topic);
                return Err(match refused {
                    Err(err) => err.into(),
                    Ok(None) => CoreError::RoomNotFound,
                    Ok(Some(_)) => CoreError::NotAMember,
                });
            }
        };
        if newly_joined && view.rooms_joined > MAX_ROOMS_PER_USER {
            self.inner.hub.unsubscribe(conn.id, &topic);
            store.remove_member(key, &user.user_id).await?;
            return Err(CoreError::TooManyRooms(MAX_ROOMS_PER_USER));
        }
        self.inner.fanout.follow_room(key, view.room.last_seq);
        if newly_joined {
            let member = Member {
                profile: user.clone(),
                joined_at_ms,
                online: true,
            };
            self.publish(
                topic,
                Event::MemberJoined {
                    room_key: key.to_owned(),
                    member,
                },
                Some(&user.user_id),
            );
        }
        let members = view.members.map(|mut members| {
            self.inner.presence.mark_online(&mut members);
            members
        });
        Ok(Joined {
            room: view.room,
            history: view.history,
            newly_joined,
            members,
        })
    }

    /// Subscribes the connection to rooms `keys` of user `user_id`, listed most recently
    /// joined first, as a sign-in read them; gives those they are still a member of. A leave
    /// that raced the subscriptions must not leave the connection receiving, so the rooms
    /// are read again once subscribed; when that read fails, the connection is subscribed
    /// to none of them.
    pub(super) async fn resubscribe_to(
        &self,
        conn: &Connection,
        user_id: &str,
        keys: Vec<String>,
    ) -> CoreResult<Vec<String>> {
        if keys.is_empty() {
            return Ok(keys);
        }
        // Oldest first, so the most recently joined rooms are the last evicted.
        for key in keys.iter().take(MAX_ROOMS_PER_CONNECTION).rev() {
            self.inner
                .hub
                .subscribe(conn.id, Topic::Room(key.clone()), MAX_ROOMS_PER_CONNECTION);
        }
        let still = self.inner.store.rooms_of(user_id).await;
        let gone = |key: &String| still.as_ref().map_or(true, |still| !still.contains(key));
        for key in keys.iter().filter(|key| gone(key)) {
            self.inner
                .hub
                .unsubscribe(conn.id, &Topic::Room(key.clone()));
        }
        Ok(still?)
    }

    /// Subscribes the connection again to a room its user is still a member of, as after a
    /// reconnect, and reads what was stored after `after_seq`, oldest first: `None` when
    /// that is more than `limit` messages (the connection is then not subscribed). The
    /// subscription comes before the read, so whatever the read misses arrives live.
    pub async fn resume_room(
        &self,
        conn: &Connection,
        key: &str,
        after_seq: u64,
        limit: usize,
    ) -> CoreResult<Option<Vec<Message>>> {
        let user = self.signed_in(conn)?;
        self.subscribe_member(conn, key, &user.user_id).await?;
        let store = &self.inner.store;
        let Some(room) = store.room(key).await? else {
            self.unsubscribe(conn, key);
            return Err(CoreError::RoomNotFound);
        };
        self.inner.fanout.follow_room(key, room.last_seq);
        let missed = store
            .messages_after(key, after_seq, limit.saturating_add(1))
            .await?;
        if missed.len() > limit {
            self.unsubscribe(conn, key);
            return Ok(None);
        }
        Ok(Some(missed))
    }

    /// The keys of the rooms the caller is a member of, most recently joined first.
    pub async fn member_rooms(&self, conn: &Connection) -> CoreResult<Vec<String>> {
        let user = self.signed_in(conn)?;
        Ok(self.inner.store.rooms_of(&user.user_id).await?)
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
        let keys = self.inner.store.rooms_of(&user.user_id).await?;
        self.most_recent_room(&keys).await
    }

    /// The first of a user's rooms listed most recently joined first (as
    /// [`Core::resubscribe`] gives them), if any: the current room of a caller that has
    /// its list already.
    pub async fn most_recent_room(&self, keys: &[String]) -> CoreResult<Option<Room>> {
        match keys.first() {
            Some(key) => Ok(self.inner.store.room(key).await?),
            None => Ok(None),
        }
    }

    pub(super) async fn require_member(&self, key: &str, user_id: &str) -> CoreResult<Room> {
        let room = self
            .store()
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
        if !self.touch(conn, key) {
            self.subscribe_member(conn, key, &user.user_id).await?;
            self.inner.fanout.follow_room(key, room.last_seq);
        }
        Ok((user, room))
    }

    /// The signed-in member acting in room `key`, for actions that need no more of the room
    /// (chat, typing). A connection subscribed to the room is known to be a member without
    /// asking the store: subscriptions are made only after the membership is checked, and a
    /// leave removes the room from every connection of the user. Others are checked, and
    /// subscribed, as [`Self::act_in`] does.
    pub(super) async fn act_as_member(&self, conn: &Connection, key: &str) -> CoreResult<Profile> {
        let user = self.signed_in(conn)?;
        if self.touch(conn, key) {
            return Ok(user);
        }
        self.act_in(conn, key).await.map(|(user, _)| user)
    }

    /// Marks room `key` used on the connection, so it is the last to be evicted; `false`
    /// when the connection is not subscribed to it.
    fn touch(&self, conn: &Connection, key: &str) -> bool {
        let topic = Topic::Room(key.to_owned());
        let subscribed = self.inner.hub.is_subscribed(conn.id, &topic);
        if subscribed {
            let hub = &self.inner.hub;
            hub.subscribe(conn.id, topic, MAX_ROOMS_PER_CONNECTION);
        }
        subscribed
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

    pub(super) fn expire_typing(&self, now: Instant) {
        for (key, user) in self.inner.typing.expire(now) {
            self.publish_typing(&key, &user, false);
        }
    }

    pub(super) fn publish_typing(&self, key: &str, user: &Profile, typing: bool) {
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
        if room.phase == super::model::Phase::Playing {
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
            .store()
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

    /// A page of the room's stored messages, oldest first, at most
    /// [`limits::HISTORY_LEN`].
    pub async fn history(
        &self,
        conn: &Connection,
        key: &str,
        page: HistoryPage,
    ) -> CoreResult<Vec<Message>> {
        let user = self.signed_in(conn)?;
        self.require_member(key, &user.user_id).await?;
        let store = &self.inner.store;
        Ok(match page {
            HistoryPage::After(seq) => store.messages_after(key, seq, limits::HISTORY_LEN).await?,
            HistoryPage::Before(seq) => {
                store.messages_before(key, seq, limits::HISTORY_LEN).await?
            }
        })
    }
}

pub(crate) fn validate_room_key(key: &str) -> CoreResult<()> {
    super::check_one_line("room id", key, MAX_ROOM_KEY_CHARS)
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
