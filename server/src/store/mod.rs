//! Storage: one small interface, implemented once in SQL for SQLite and PostgreSQL
//! ([`sql::SqlStore`]). The same test suite runs against both.

mod append;
mod sql;

use std::{path::Path, sync::Arc, time::Duration};

use async_trait::async_trait;

pub use append::{APPEND_QUEUE_CAPACITY, MAX_APPEND_BATCH};
pub use sql::{SqlStore, JOIN_WRITE_QUEUE_CAPACITY, MAX_JOIN_WRITE_BATCH};

use crate::core::model::{
    Account, AddMember, AuditEntry, Ban, DeletedMessage, Member, Message, NewMessage, NewRoom,
    Notification, Party, PartyPhase, PartyPlayer, Profile, Room, RoomOnJoin, RoomSummary,
};

/// A storage failure. Never shown to clients: dialects log it and answer "internal error".
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StoreError(#[from] pub anyhow::Error);

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        Self(err.into())
    }
}

impl StoreError {
    /// A store writer (of messages, or of sign-ins and joins) stopped; it only does when the
    /// store is dropped.
    pub(crate) fn writer_gone() -> Self {
        Self(anyhow::anyhow!("a store writer has stopped"))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What a retention delete removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    Messages,
    Notifications,
}

/// Told a queued chat message's fate: the message as stored (`None`: no such room, or the
/// sender is not a member), or the failure. Called once, on the store's message writer, in the
/// order the messages were queued and before the writer stores anything else, so it must not
/// block: it is where the core broadcasts a message the moment it is committed.
pub type OnStored = Box<dyn FnOnce(StoreResult<Option<Message>>) + Send>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Whether the database answers and has every migration this build knows applied.
    async fn ready(&self) -> StoreResult<()>;

    /// Deletes at most `limit` of `rows` created before `before_ms`, oldest first; how many
    /// it deleted.
    async fn delete_before(&self, rows: Rows, before_ms: i64, limit: usize) -> StoreResult<u64>;

    /// Creates or updates a profile (the username and avatar caches of contract 000); one
    /// that has not changed is left as it is, `now_ms` being when it last changed.
    async fn upsert_profile(&self, profile: &Profile, now_ms: i64) -> StoreResult<()>;
    async fn profile(&self, user_id: &str) -> StoreResult<Option<Profile>>;
    /// What signing `user_id` in needs: whether they are banned, their stored profile and,
    /// with `with_rooms`, their rooms (as [`Store::rooms_of`] lists them). One read: every
    /// sign-in makes it, and in a storm of sign-ins each read's hand-off to the database is
    /// what a sign-in costs most.
    async fn account(&self, user_id: &str, with_rooms: bool) -> StoreResult<Account>;

    /// Creates a room; `false` when a room with that key exists already.
    async fn create_room(&self, room: &NewRoom) -> StoreResult<bool>;
    async fn room(&self, key: &str) -> StoreResult<Option<Room>>;
    /// Marks a room in the lobby as playing with `game_state`; `None` when there is no such
    /// room or it is playing already.
    async fn start_game(&self, key: &str, game_state: &str) -> StoreResult<Option<Room>>;

    /// Adds a member unless the room is full, atomically.
    async fn add_member(&self, key: &str, user_id: &str, now_ms: i64) -> StoreResult<AddMember>;
    /// Removes a member; `false` when they were not one.
    async fn remove_member(&self, key: &str, user_id: &str) -> StoreResult<bool>;
    async fn is_member(&self, key: &str, user_id: &str) -> StoreResult<bool>;
    /// Members in the order they joined (`online` is always false: presence is not stored).
    async fn members(&self, key: &str) -> StoreResult<Vec<Member>>;
    /// The keys of the rooms `user_id` is a member of, most recently joined first.
    async fn rooms_of(&self, user_id: &str) -> StoreResult<Vec<String>>;
    /// Room `key` as `user_id` sees it on joining: the room, their membership, how many
    /// rooms they are in, its newest `history` messages and, with `with_members`, its
    /// members; `None` when there is no such room. One read: every join makes it, and in
    /// a storm of joins each read's hand-off to the database is what a join costs most.
    async fn room_on_join(
        &self,
        key: &str,
        user_id: &str,
        history: usize,
        with_members: bool,
    ) -> StoreResult<Option<RoomOnJoin>>;
    /// The rooms `user_id` is a member of, each with its newest message and the user's read
    /// position, in no particular order.
    async fn room_summaries(&self, user_id: &str) -> StoreResult<Vec<RoomSummary>>;
    /// Moves the user's read position in room `key` forward to `seq` (never back).
    async fn set_read_position(
        &self,
        user_id: &str,
        key: &str,
        seq: u64,
        now_ms: i64,
    ) -> StoreResult<()>;

    /// Stores a message with the room's next sequence number; `None` when there is no such
    /// room or its sender is not a member.
    async fn append_message(&self, message: &NewMessage) -> StoreResult<Option<Message>> {
        let (reply, stored) = tokio::sync::oneshot::channel();
        let on_stored: OnStored = Box::new(move |outcome| {
            let _ = reply.send(outcome);
        });
        self.queue_message(message.clone(), on_stored).await?;
        stored.await.map_err(|_| StoreError::writer_gone())?
    }
    /// Queues a message for storage and returns once it has its place in the queue (waiting
    /// only while the queue is full); `on_stored` is told what [`Self::append_message`]
    /// would return, once the message is stored. Messages are numbered in the order they
    /// were queued, so a caller can queue several before the first is stored.
    async fn queue_message(&self, message: NewMessage, on_stored: OnStored) -> StoreResult<()>;
    /// The newest `limit` messages, oldest first.
    async fn recent_messages(&self, key: &str, limit: usize) -> StoreResult<Vec<Message>>;
    /// The newest `limit` messages with a sequence number below `before_seq`, oldest first.
    async fn messages_before(
        &self,
        key: &str,
        before_seq: u64,
        limit: usize,
    ) -> StoreResult<Vec<Message>>;
    /// Up to `limit` messages with a sequence number above `after_seq`, oldest first.
    async fn messages_after(
        &self,
        key: &str,
        after_seq: u64,
        limit: usize,
    ) -> StoreResult<Vec<Message>>;

    async fn insert_notification(&self, notification: &Notification) -> StoreResult<()>;
    /// The user's notifications no socket has been sent yet, and those created at or after
    /// `since_ms` (sent or not), oldest first, at most `limit`.
    async fn undelivered_notifications(
        &self,
        user_id: &str,
        since_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<Notification>>;
    /// Marks notification `id` delivered; `true` when this call marked it (it was not yet).
    async fn mark_delivered(&self, id: &str, now_ms: i64) -> StoreResult<bool>;
    /// Undoes [`Store::mark_delivered`] for a notification whose frame could not be sent,
    /// so that the user's next notification socket gets it.
    async fn unmark_delivered(&self, id: &str) -> StoreResult<()>;
    /// The user's newest `limit` notifications, newest first.
    async fn notifications_of(&self, user_id: &str, limit: usize)
        -> StoreResult<Vec<Notification>>;
    /// Marks the user's notification `id` read; `false` when they have no such notification.
    async fn mark_read(&self, user_id: &str, id: &str, now_ms: i64) -> StoreResult<bool>;

    /// Creates a party with its host as first player; `false` when the code is taken.
    async fn create_party(&self, party: &Party, host: &PartyPlayer) -> StoreResult<bool>;
    async fn party(&self, id: &str) -> StoreResult<Option<Party>>;
    async fn party_by_code(&self, code: &str) -> StoreResult<Option<Party>>;
    /// Players in the order they joined.
    async fn party_players(&self, id: &str) -> StoreResult<Vec<PartyPlayer>>;
    /// Adds a player unless the party is full, atomically.
    async fn add_party_player(&self, id: &str, player: &PartyPlayer) -> StoreResult<AddMember>;
    /// `false` when they were not a player.
    async fn remove_party_player(&self, id: &str, user_id: &str) -> StoreResult<bool>;
    /// `false` when they are not a player.
    async fn set_party_ready(&self, id: &str, user_id: &str, ready: bool) -> StoreResult<bool>;
    /// Sets the host and the phase; `false` when there is no such party.
    async fn set_party_state(
        &self,
        id: &str,
        host_id: &str,
        phase: &PartyPhase,
    ) -> StoreResult<bool>;

    /// Deletes chat message `id`; where it was, or `None` when there is no such message.
    /// The room's numbering is untouched: its `seq` is not given to another message.
    async fn delete_message(&self, id: &str) -> StoreResult<Option<DeletedMessage>>;
    /// Closes room `key`: every member is removed and no one can join from then on. The
    /// members it had, or `None` when there is no such room or it is closed already.
    async fn close_room(&self, key: &str, now_ms: i64) -> StoreResult<Option<Vec<String>>>;
    /// Bans a user, or updates the ban of one banned already.
    async fn ban(&self, ban: &Ban) -> StoreResult<()>;
    /// Lifts a ban; `false` when the user was not banned.
    async fn unban(&self, user_id: &str) -> StoreResult<bool>;
    async fn is_banned(&self, user_id: &str) -> StoreResult<bool>;
    /// The newest `limit` bans, newest first.
    async fn bans(&self, limit: usize) -> StoreResult<Vec<Ban>>;
    async fn record_audit(&self, entry: &AuditEntry) -> StoreResult<()>;
    /// The newest `limit` audit entries, newest first.
    async fn audit_log(&self, limit: usize) -> StoreResult<Vec<AuditEntry>>;
}

/// How SQLite makes a commit durable (`PRAGMA synchronous`, in WAL mode). PostgreSQL's own
/// settings govern it there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SqliteSynchronous {
    /// Every commit is on disk before it returns: nothing acknowledged is lost even on
    /// power loss, at the cost of a sync per commit (chat messages share one per batch).
    Full,
    /// Commits reach the disk at checkpoints: a process crash loses nothing, a power loss
    /// or kernel crash may lose the last commits. SQLite's recommendation for WAL.
    #[default]
    Normal,
}

/// How long a query waits for a database connection (or, on SQLite, for the write lock)
/// before it fails, by default. Past it the database counts as stuck: a storm of commands is
/// kept from waiting this long by admission (`core::admission`), not by this.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite connections that only read, beside the one that writes, by default: none. Reads
/// then run on the writer's connection, one at a time between its transactions. A reading
/// connection drops its page cache whenever another connection has committed (WAL), so in
/// a storm of joins, which writes between most reads, every read went back to the disk;
/// the writer's own connection keeps its cache across its commits. That made a join storm
/// about 1.5 times as fast and left chat ingest as it was (BENCHMARKS.md, twenty-sixth
/// round). Readers pay off only where long reads would otherwise hold up writes on a
/// machine with cores to run them on.
pub const DEFAULT_SQLITE_READERS: u32 = 0;

/// The most reading SQLite connections [`StoreOptions::sqlite_readers`] may ask for: each
/// is a thread and a page cache of its own.
pub const MAX_SQLITE_READERS: u32 = 64;

/// How the store is opened.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    pub sqlite_synchronous: SqliteSynchronous,
    /// See [`DEFAULT_SQLITE_READERS`]; at most [`MAX_SQLITE_READERS`].
    pub sqlite_readers: u32,
    /// See [`ACQUIRE_TIMEOUT`].
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            sqlite_synchronous: SqliteSynchronous::default(),
            sqlite_readers: DEFAULT_SQLITE_READERS,
            acquire_timeout: ACQUIRE_TIMEOUT,
        }
    }
}

/// Opens the database `url` names (`sqlite://…` or `postgres://…`) and migrates it.
pub async fn open(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    open_with(url, StoreOptions::default()).await
}

/// [`open`], with options.
pub async fn open_with(url: &str, options: StoreOptions) -> anyhow::Result<Arc<dyn Store>> {
    if is_postgres(url) {
        Ok(Arc::new(
            SqlStore::<sqlx::Postgres>::connect(url, options).await?,
        ))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(
            SqlStore::<sqlx::Sqlite>::connect(url, options).await?,
        ))
    } else {
        anyhow::bail!("unsupported database URL (expected sqlite://… or postgres://…)")
    }
}

/// Whether `url` names a PostgreSQL database (which several nodes can share).
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The default database: `confab.db` in the data directory.
pub fn default_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("confab.db").display())
}
