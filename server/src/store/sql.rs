//! The SQL store. The schema and every statement are written in the subset SQLite and
//! PostgreSQL share (`$N` parameters, `ON CONFLICT`, `RETURNING`), and one body of code,
//! expanded once per database by `impl_store!`, runs them.
//!
//! Atomicity without database-specific locking: "next sequence number" is a single
//! conditional `UPDATE … RETURNING` statement on the room's row, which both databases
//! serialise per row; "join unless full" is in `seats.rs`. Chat messages are written by the
//! append queue's writer (`append.rs`, on a thread of its own), in batches, through
//! [`MessageWriter`].

use std::{borrow::Cow, str::FromStr, sync::OnceLock};

use anyhow::Context;
use async_trait::async_trait;
use sqlx::{
    postgres::PgPoolOptions,
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
    },
    Connection, Database, Pool, Postgres, Row, Sqlite, SqliteConnection,
};

use super::{
    append::{AppendQueue, MessageWriter, MAX_APPEND_BATCH},
    OnStored, Rows, Store, StoreError, StoreOptions, StoreResult, MAX_SQLITE_READERS,
};
use crate::core::model::{
    Account, AddMember, AuditEntry, Ban, DeletedMessage, Level, Member, Message, MessageKind,
    ModerationAction, NewMessage, NewRoom, Notification, Party, PartyPhase, PartyPlayer, Phase,
    Profile, Room, RoomOnJoin, RoomSummary,
};

const POSTGRES_POOL_SIZE: u32 = 16;

mod connections;
mod join_writes;
mod seats;

use connections::{Connections, OneConnection};

use join_writes::{JoinWrite, JoinWriteQueue, Written};
pub use join_writes::{JOIN_WRITE_QUEUE_CAPACITY, MAX_JOIN_WRITE_BATCH};
use seats::{Seats, PARTY_SEATS, ROOM_SEATS};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub struct SqlStore<DB: Database> {
    /// Reads. For SQLite, by default, the writer's own connection (see
    /// `DEFAULT_SQLITE_READERS`), so no code may read through it while holding `writer`.
    pool: Connections<DB>,
    /// Writes. For SQLite, one connection: SQLite takes one writer at a time anyway, and
    /// writers queued here wait in order instead of retrying on a busy database (which
    /// halved the write rate in the ingest benchmark). For PostgreSQL, the same pool.
    writer: Connections<DB>,
    /// Chat messages, group-committed by the message writer (its own thread) on `writer`.
    appends: AppendQueue,
    /// SQLite: profiles and room seats, group-committed by the join writer (its own
    /// thread) on `writer`. PostgreSQL writes them as they come: its commits do not drop
    /// other connections' caches, and it has a pool of connections to write on.
    join_writes: Option<JoinWriteQueue>,
}

impl SqlStore<Sqlite> {
    pub async fn connect(url: &str, options: StoreOptions) -> anyhow::Result<Self> {
        anyhow::ensure!(
            options.sqlite_readers <= MAX_SQLITE_READERS,
            "at most {MAX_SQLITE_READERS} SQLite readers"
        );
        let synchronous = match options.sqlite_synchronous {
            super::SqliteSynchronous::Full => SqliteSynchronous::Full,
            super::SqliteSynchronous::Normal => SqliteSynchronous::Normal,
        };
        let connect = SqliteConnectOptions::from_str(url)
            .context("invalid SQLite URL")?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(options.acquire_timeout)
            .foreign_keys(true);
        // No liveness ping before each use: a local file does not drop connections, and the
        // ping is one more hand-off to SQLite's worker thread.
        let open = |connections: u32| {
            SqlitePoolOptions::new()
                .max_connections(connections)
                .test_before_acquire(false)
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect.clone())
        };
        let mut conn = SqliteConnection::connect_with(&connect)
            .await
            .context("cannot open the SQLite database")?;
        MIGRATOR
            .run(&mut conn)
            .await
            .context("cannot migrate the SQLite database")?;
        let writer = Connections::One(OneConnection::new(conn, options.acquire_timeout));
        let pool = match options.sqlite_readers {
            0 => writer.clone(),
            readers => Connections::Pool(
                open(readers)
                    .await
                    .context("cannot open the SQLite database")?,
            ),
        };
        let appends = AppendQueue::start(SqliteMessageWriter {
            writer: writer.clone(),
        })
        .context("cannot start the message writer")?;
        let join_writes =
            JoinWriteQueue::start(writer.clone()).context("cannot start the join writer")?;
        Ok(Self {
            pool,
            writer,
            appends,
            join_writes: Some(join_writes),
        })
    }

    /// Makes `write` through the join writer.
    async fn write_for_join(&self, write: JoinWrite) -> StoreResult<Written> {
        match &self.join_writes {
            Some(queue) => queue.write(write).await,
            None => Err(StoreError(anyhow::anyhow!("no join writer"))),
        }
    }

    async fn store_profile(&self, profile: &Profile, now_ms: i64) -> StoreResult<()> {
        let write = JoinWrite::Profile {
            profile: profile.clone(),
            now_ms,
        };
        self.write_for_join(write).await.map(|_| ())
    }

    /// A member coming back is answered by a read; a new one's seat is taken by the join
    /// writer.
    async fn seat_member(&self, key: &str, user_id: &str, now_ms: i64) -> StoreResult<AddMember> {
        if self
            .exists(sqlx::query(ROOM_SEATS.held).bind(key).bind(user_id))
            .await?
        {
            return Ok(AddMember::AlreadyMember);
        }
        let write = JoinWrite::Seat {
            key: key.to_owned(),
            user_id: user_id.to_owned(),
            now_ms,
        };
        match self.write_for_join(write).await? {
            Written::Seat(outcome) => Ok(outcome),
            Written::Profile => Err(StoreError(anyhow::anyhow!("a seat written as a profile"))),
        }
    }

    async fn read_members(&self, key: &str) -> StoreResult<Vec<Member>> {
        static SQL: OnceLock<String> = OnceLock::new();
        let sql = SQL.get_or_init(packed_members);
        let packed: String = sqlx::query_scalar(sql)
            .bind(key)
            .fetch_one(&mut *self.pool.acquire().await?)
            .await?;
        unpack_members(&packed)
    }

    /// One statement: the room's row, with the rest as columns beside it, the lists packed.
    async fn read_room_on_join(
        &self,
        key: &str,
        user_id: &str,
        history: usize,
        with_members: bool,
    ) -> StoreResult<Option<RoomOnJoin>> {
        static SQL: OnceLock<String> = OnceLock::new();
        let sql = SQL.get_or_init(|| {
            let history = packed(
                &format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = $1 \
                     ORDER BY seq DESC LIMIT $3"
                ),
                MESSAGE_FIELDS,
                "seq",
            );
            let members = packed_members();
            format!(
                "SELECT {ROOM_COLUMNS}, \
                 EXISTS (SELECT 1 FROM memberships WHERE room_id = $1 AND user_id = $2) \
                 AS is_member, \
                 (SELECT COUNT(*) FROM memberships WHERE user_id = $2) AS rooms_joined, \
                 ({history}) AS history, \
                 CASE WHEN $4 THEN ({members}) END AS members \
                 FROM rooms WHERE id = $1"
            )
        });
        let query = sqlx::query(sql)
            .bind(key)
            .bind(user_id)
            .bind(to_i64(history as u64))
            .bind(with_members);
        let Some(row) = query
            .fetch_optional(&mut *self.pool.acquire().await?)
            .await?
        else {
            return Ok(None);
        };
        let members = match row.optional_text("members")? {
            Some(packed) => Some(unpack_members(&packed)?),
            None => None,
        };
        Ok(Some(RoomOnJoin {
            room: room_from_row(&row)?,
            is_member: row.flag("is_member")?,
            rooms_joined: row.count("rooms_joined")?,
            history: unpack(&row.text("history")?, MESSAGE_FIELDS, message_from_row)?,
            members,
        }))
    }

    /// One statement: the ban and the profile, with the rooms packed beside them.
    async fn read_account(&self, user_id: &str, with_rooms: bool) -> StoreResult<Account> {
        static SQL: OnceLock<String> = OnceLock::new();
        let sql = SQL.get_or_init(|| {
            let rooms = packed(ROOMS_OF, ROOMS_OF_FIELDS, ROOMS_OF_ORDER);
            format!("{ACCOUNT}, CASE WHEN $2 THEN ({rooms}) END AS rooms {ACCOUNT_FROM}")
        });
        let row = sqlx::query(sql)
            .bind(user_id)
            .bind(with_rooms)
            .fetch_one(&mut *self.pool.acquire().await?)
            .await?;
        let rooms = match row.optional_text("rooms")? {
            Some(packed) => Some(unpack(&packed, ROOMS_OF_FIELDS, |row| row.text("room_id"))?),
            None => None,
        };
        account_from_row(&row, rooms)
    }

    async fn read_rooms_of(&self, user_id: &str) -> StoreResult<Vec<String>> {
        static SQL: OnceLock<String> = OnceLock::new();
        let sql = SQL.get_or_init(|| packed(ROOMS_OF, ROOMS_OF_FIELDS, ROOMS_OF_ORDER));
        let packed: String = sqlx::query_scalar(sql)
            .bind(user_id)
            .fetch_one(&mut *self.pool.acquire().await?)
            .await?;
        unpack(&packed, ROOMS_OF_FIELDS, |row| row.text("room_id"))
    }

    async fn read_messages(
        &self,
        key: &str,
        window: SeqWindow,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        static SQL: [OnceLock<String>; 2] = [OnceLock::new(), OnceLock::new()];
        let sql =
            SQL[window.index()].get_or_init(|| packed(window.select(), MESSAGE_FIELDS, "seq"));
        let packed: String = sqlx::query_scalar(sql)
            .bind(key)
            .bind(to_i64(window.seq()))
            .bind(to_i64(limit as u64))
            .fetch_one(&mut *self.pool.acquire().await?)
            .await?;
        unpack(&packed, MESSAGE_FIELDS, message_from_row)
    }
}

/// A room's members (`$1`), joined first, then by id.
const MEMBERS: &str =
    "SELECT m.user_id, m.joined_at, COALESCE(p.username, m.user_id) AS username, \
     COALESCE(p.image_url, '') AS image_url, COALESCE(p.email, '') AS email \
     FROM memberships m LEFT JOIN profiles p ON p.user_id = m.user_id \
     WHERE m.room_id = $1 ORDER BY m.joined_at, m.user_id";
/// The fields of a packed member, in the order [`unpack_members`] reads them.
const MEMBER_FIELDS: &[&str] = &["user_id", "joined_at", "username", "image_url", "email"];
/// Creates or updates a profile (`$1` to `$4`, changed at `$5`). An unchanged profile is not
/// written: on SQLite every write is a commit on the one writing connection (and drops the
/// page cache of any reading connection that `--sqlite-readers` opened).
const UPSERT_PROFILE: &str =
    "INSERT INTO profiles (user_id, username, image_url, email, updated_at) \
     VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (user_id) DO UPDATE SET username = excluded.username, \
     image_url = excluded.image_url, email = excluded.email, \
     updated_at = excluded.updated_at \
     WHERE profiles.username IS DISTINCT FROM excluded.username \
     OR profiles.image_url IS DISTINCT FROM excluded.image_url \
     OR profiles.email IS DISTINCT FROM excluded.email";
/// Whether user `$1` is banned, and their profile's columns (null when they have none),
/// followed by [`ACCOUNT_FROM`].
const ACCOUNT: &str =
    "SELECT EXISTS (SELECT 1 FROM bans WHERE user_id = $1) AS banned, p.user_id, p.username, \
     p.image_url, p.email";
const ACCOUNT_FROM: &str = "FROM (SELECT 1) AS one LEFT JOIN profiles p ON p.user_id = $1";
/// The keys of user `$1`'s rooms, most recently joined first.
const ROOMS_OF: &str =
    "SELECT room_id, joined_at FROM memberships WHERE user_id = $1 ORDER BY joined_at DESC, room_id";
const ROOMS_OF_FIELDS: &[&str] = &["room_id"];
const ROOMS_OF_ORDER: &str = "joined_at DESC, room_id";

/// `select`, as one row SQLite packs its rows into: a JSON array with one array a row, of
/// `fields` in that order, in `order` (see [`PackedRow`]). Each read builds its statement
/// once, as sign-ins and joins run them constantly.
fn packed(select: &str, fields: &[&str], order: &str) -> String {
    format!(
        "SELECT json_group_array(json_array({}) ORDER BY {order}) FROM ({select})",
        fields.join(", ")
    )
}

/// A room's members (`$1`) as one text, put in order by [`unpack_members`]. Not ordered
/// in the aggregate, which would sort every member into a table of its own on each join
/// although [`MEMBERS`] reads them in order from the `memberships_in_order` index.
fn packed_members() -> String {
    format!(
        "SELECT json_group_array(json_array({})) FROM ({MEMBERS})",
        MEMBER_FIELDS.join(", ")
    )
}

/// Which side of a `seq` a history read takes, nearest first.
#[derive(Clone, Copy)]
enum SeqWindow {
    Before(u64),
    After(u64),
}

impl SeqWindow {
    /// At most `$3` messages of room `$1` on this side of `seq` `$2`, nearest first; built
    /// once for each side.
    fn select(self) -> &'static str {
        static SQL: [OnceLock<String>; 2] = [OnceLock::new(), OnceLock::new()];
        SQL[self.index()].get_or_init(|| {
            let side = match self {
                Self::Before(_) => "seq < $2 ORDER BY seq DESC",
                Self::After(_) => "seq > $2 ORDER BY seq",
            };
            format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = $1 AND {side} LIMIT $3")
        })
    }

    /// Which side, as an index into the statements built for each.
    fn index(self) -> usize {
        match self {
            Self::Before(_) => 0,
            Self::After(_) => 1,
        }
    }

    fn seq(self) -> u64 {
        match self {
            Self::Before(seq) | Self::After(seq) => seq,
        }
    }
}

/// A row of the list reads that sign-ins and joins make (a room's members and history, a
/// user's rooms: `MEMBERS`, `ROOMS_OF`, `SeqWindow::select`), which SQLite packs into one
/// JSON array of rows, each an array of the columns in the order of its `fields`
/// ([`packed`]). sqlx hands a query's rows from SQLite's thread to the runtime one at a
/// time, each a wake-up of the other thread: a join into a room of 1,000 members cost
/// 1,000, and packed it costs one (BENCHMARKS.md, seventeenth round). Arrays rather than
/// objects: a member list is decoded on every contract 000 join, and a map of named values
/// a row made its allocations most of a returning member's join. PostgreSQL's rows arrive
/// together on the connection's socket, so its queries are not packed.
struct PackedRow {
    fields: &'static [&'static str],
    values: Vec<serde_json::Value>,
}

fn unpack<T>(
    packed: &str,
    fields: &'static [&'static str],
    map: fn(&PackedRow) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let rows: Vec<Vec<serde_json::Value>> =
        serde_json::from_str(packed).map_err(|_| corrupt("packed rows"))?;
    rows.into_iter()
        .map(|values| map(&PackedRow { fields, values }))
        .collect()
}

/// A packed member list decoded straight into members, its fields in [`MEMBER_FIELDS`]'s
/// order, and put in the order they joined (then by id). A contract 000 join lists its
/// whole room, so building a JSON value for every field of every member and looking each
/// up by name cost as much as reading them.
fn unpack_members(packed: &str) -> StoreResult<Vec<Member>> {
    let mut rows: Vec<(String, i64, String, String, String)> =
        serde_json::from_str(packed).map_err(|_| corrupt("packed members"))?;
    // They usually arrive in this order already, which the sort finds in one pass: SQLite
    // does not promise an aggregate's order unless it sorts the rows again itself.
    rows.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    Ok(rows
        .into_iter()
        .map(
            |(user_id, joined_at_ms, username, image_url, email)| Member {
                profile: Profile {
                    user_id,
                    username,
                    image_url,
                    email,
                },
                joined_at_ms,
                online: false,
            },
        )
        .collect())
}

impl PackedRow {
    fn get(&self, name: &str) -> Option<&serde_json::Value> {
        let index = self.fields.iter().position(|field| *field == name)?;
        self.values.get(index)
    }
}

impl Columns for PackedRow {
    fn optional_text(&self, name: &str) -> StoreResult<Option<String>> {
        match self.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(corrupt(name)),
        }
    }
    fn optional_int(&self, name: &str) -> StoreResult<Option<i64>> {
        match self.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(value) => value.as_i64().map(Some).ok_or_else(|| corrupt(name)),
        }
    }
    fn flag(&self, name: &str) -> StoreResult<bool> {
        Ok(self.int(name)? != 0)
    }
}

impl SqlStore<Postgres> {
    async fn read_members(&self, key: &str) -> StoreResult<Vec<Member>> {
        let query = sqlx::query(MEMBERS).bind(key);
        self.read_all(query, member_from_row).await
    }

    /// The reads one at a time: PostgreSQL's answers do not cost a thread's hand-off each.
    async fn read_room_on_join(
        &self,
        key: &str,
        user_id: &str,
        history: usize,
        with_members: bool,
    ) -> StoreResult<Option<RoomOnJoin>> {
        let Some(room) = self.room(key).await? else {
            return Ok(None);
        };
        let members = match with_members {
            true => Some(self.read_members(key).await?),
            false => None,
        };
        Ok(Some(RoomOnJoin {
            room,
            is_member: self.is_member(key, user_id).await?,
            rooms_joined: self.read_rooms_of(user_id).await?.len(),
            history: self.recent_messages(key, history).await?,
            members,
        }))
    }

    async fn read_account(&self, user_id: &str, with_rooms: bool) -> StoreResult<Account> {
        static SQL: OnceLock<String> = OnceLock::new();
        let sql = SQL.get_or_init(|| format!("{ACCOUNT} {ACCOUNT_FROM}"));
        let row = sqlx::query(sql)
            .bind(user_id)
            .fetch_one(&mut *self.pool.acquire().await?)
            .await?;
        let rooms = match with_rooms {
            true => Some(self.read_rooms_of(user_id).await?),
            false => None,
        };
        account_from_row(&row, rooms)
    }

    async fn read_rooms_of(&self, user_id: &str) -> StoreResult<Vec<String>> {
        let query = sqlx::query(ROOMS_OF).bind(user_id);
        self.read_all(query, |row| row.text("room_id")).await
    }

    async fn read_messages(
        &self,
        key: &str,
        window: SeqWindow,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        let query = sqlx::query(window.select())
            .bind(key)
            .bind(to_i64(window.seq()))
            .bind(to_i64(limit as u64));
        let mut messages = self.read_all(query, message_from_row).await?;
        // Oldest first.
        if let SeqWindow::Before(_) = window {
            messages.reverse();
        }
        Ok(messages)
    }

    async fn store_profile(&self, profile: &Profile, now_ms: i64) -> StoreResult<()> {
        let upsert = sqlx::query(UPSERT_PROFILE)
            .bind(&profile.user_id)
            .bind(&profile.username)
            .bind(&profile.image_url)
            .bind(&profile.email)
            .bind(now_ms);
        self.write(upsert).await
    }

    async fn seat_member(&self, key: &str, user_id: &str, now_ms: i64) -> StoreResult<AddMember> {
        let bind = |sql| sqlx::query(sql).bind(key).bind(user_id).bind(now_ms);
        self.seat(&ROOM_SEATS, key, user_id, bind).await
    }

    pub async fn connect(url: &str, options: StoreOptions) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(POSTGRES_POOL_SIZE)
            .acquire_timeout(options.acquire_timeout)
            .connect(url)
            .await
            .context("cannot connect to PostgreSQL")?;
        MIGRATOR
            .run(&pool)
            .await
            .context("cannot migrate the PostgreSQL database")?;
        let appends = AppendQueue::start(PostgresMessageWriter {
            writer: pool.clone(),
        })
        .context("cannot start the message writer")?;
        let pool = Connections::Pool(pool);
        Ok(Self {
            writer: pool.clone(),
            pool,
            appends,
            join_writes: None,
        })
    }
}

const ROOM_COLUMNS: &str =
    "id, name, room_type, max_users, member_count, phase, host_id, game_state, created_at, last_seq, \
     closed_at";
const AUDIT_COLUMNS: &str = "id, at, moderator, action, target, reason";
const NOTIFICATION_COLUMNS: &str =
    "id, user_id, level, title, message, notification_type, actor_username, \
     action, recipient_role, phrase_text, data, created_at, read_at";
const PARTY_COLUMNS: &str = "id, code, host_id, phase, max_players, created_at";
const MESSAGE_COLUMNS: &str =
    "id, room_id, seq, user_id, username, image_url, body, kind, created_at";
/// [`MESSAGE_COLUMNS`], one by one, for packed reads.
const MESSAGE_FIELDS: &[&str] = &[
    "id",
    "room_id",
    "seq",
    "user_id",
    "username",
    "image_url",
    "body",
    "kind",
    "created_at",
];

fn corrupt(what: &str) -> StoreError {
    StoreError(anyhow::anyhow!("corrupt row: {what}"))
}

fn to_i64(value: u64) -> i64 {
    // Sequence numbers and limits come from this process and stay far below i64::MAX.
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Whether parameter `$user`, a message's sender, is a member of its room. A message is
/// stored only then, whatever the sender's node believed when it was posted (with several
/// nodes, a leave reaches the others' subscriptions a moment after it is stored).
fn sender_is_member(user: usize) -> String {
    format!("EXISTS (SELECT 1 FROM memberships WHERE room_id = rooms.id AND user_id = ${user})")
}

/// Statements that store one message: its room's next sequence number, then the message,
/// numbered from `$first` on (eight parameters). No row comes back when the room does not
/// exist or the sender is not a member, and nothing changes.
fn append_statements(first: usize) -> String {
    let p = |i: usize| first + i;
    let member = sender_is_member(p(2));
    format!(
        "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = ${room} AND {member}; \
         INSERT INTO messages (id, room_id, seq, user_id, username, image_url, body, kind, created_at) \
         SELECT ${id}, ${room}, last_seq, ${user}, ${name}, ${image}, ${body}, ${kind}, ${at} \
         FROM rooms WHERE id = ${room} AND {member} RETURNING id, seq; ",
        id = p(0),
        room = p(1),
        user = p(2),
        name = p(3),
        image = p(4),
        body = p(5),
        kind = p(6),
        at = p(7),
    )
}

/// The sizes of SQLite's batch transactions, largest first. A batch is cut greedily into
/// these, so only a few statement texts exist and each stays in the statement cache.
const SQLITE_CHUNKS: [usize; 4] = [MAX_APPEND_BATCH, 16, 4, 1];

/// One SQLite transaction storing `n` messages (`n` in [`SQLITE_CHUNKS`]).
fn sqlite_chunk_sql(n: usize) -> &'static str {
    static TEXTS: OnceLock<Vec<String>> = OnceLock::new();
    let texts = TEXTS.get_or_init(|| {
        SQLITE_CHUNKS
            .iter()
            .map(|&n| {
                let body: String = (0..n).map(|i| append_statements(1 + 8 * i)).collect();
                format!("BEGIN IMMEDIATE; {body}COMMIT")
            })
            .collect()
    });
    let index = SQLITE_CHUNKS.iter().position(|&c| c == n).unwrap_or(0);
    &texts[index]
}

/// Writes chat messages to SQLite for the append queue.
struct SqliteMessageWriter {
    writer: Connections<Sqlite>,
}

#[async_trait]
impl MessageWriter for SqliteMessageWriter {
    /// Each chunk is one call to SQLite's worker thread for the whole transaction. Every
    /// call is a hand-off between threads, and on a busy core every hand-off waits for the
    /// scheduler: five of them per message (acquire, begin, update, insert, commit) made
    /// storage, not fan-out, the limit of a busy room.
    async fn insert_batch(
        &self,
        batch: &[NewMessage],
        stored: &mut Vec<Option<i64>>,
    ) -> StoreResult<()> {
        let mut conn = self.writer.acquire().await?;
        let mut rest = batch;
        while !rest.is_empty() {
            let n = SQLITE_CHUNKS
                .into_iter()
                .find(|&n| n <= rest.len())
                .unwrap_or(1);
            let (chunk, after) = rest.split_at(n);
            let mut query = sqlx::query(sqlite_chunk_sql(n));
            for message in chunk {
                query = bind_message(query, message);
            }
            // Every statement runs (fetch_all), so COMMIT is never skipped on success.
            match query.fetch_all(&mut *conn).await {
                Ok(rows) => stored.extend(seqs_in_order(chunk, &rows)?),
                Err(err) => {
                    // Harmless when no transaction is open.
                    let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                    return Err(err.into());
                }
            }
            rest = after;
        }
        Ok(())
    }
}

/// Writes chat messages to PostgreSQL for the append queue: the whole batch in one
/// transaction, so one commit (one WAL flush) for all of it.
struct PostgresMessageWriter {
    writer: Pool<Postgres>,
}

#[async_trait]
impl MessageWriter for PostgresMessageWriter {
    async fn insert_batch(
        &self,
        batch: &[NewMessage],
        stored: &mut Vec<Option<i64>>,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        let mut seqs = vec![None; batch.len()];
        // Room rows are locked in one order (by key) in every node's batches: two writers
        // taking a batch's rooms in opposite orders would deadlock, and PostgreSQL would
        // abort one of them. A room's messages keep their order (the sort is stable).
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.sort_by(|&a, &b| batch[a].room_key.cmp(&batch[b].room_key));
        for index in order {
            let message = &batch[index];
            let row = sqlx::query(postgres_next_seq())
                .bind(&message.room_key)
                .bind(&message.sender.user_id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else {
                continue;
            };
            let seq: i64 = row.try_get("last_seq")?;
            bind_message(
                sqlx::query(
                    "INSERT INTO messages (id, room_id, seq, user_id, username, image_url, body, kind, created_at) \
                     VALUES ($1, $2, $9, $3, $4, $5, $6, $7, $8)",
                ),
                message,
            )
            .bind(seq)
            .execute(&mut *tx)
            .await?;
            seqs[index] = Some(seq);
        }
        tx.commit().await?;
        stored.extend(seqs);
        Ok(())
    }
}

/// Takes the next sequence number of room `$1` for a message from `$2`.
fn postgres_next_seq() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        format!(
            "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1 AND {} RETURNING last_seq",
            sender_is_member(2)
        )
    })
}

/// Binds a message's eight columns, in the order of [`append_statements`].
fn bind_message<'q, DB: Database>(query: Query<'q, DB>, message: &'q NewMessage) -> Query<'q, DB>
where
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query
        .bind(message.id.as_str())
        .bind(message.room_key.as_str())
        .bind(message.sender.user_id.as_str())
        .bind(message.sender.username.as_str())
        .bind(message.sender.image_url.as_str())
        .bind(message.body.as_str())
        .bind(message.kind.as_str())
        .bind(message.created_at_ms)
}

/// A message as the writer handed it back with its sequence number, as stored; `None` when
/// its room does not exist. The stored sender carries no e-mail address.
pub(super) fn stored_message(
    (message, seq): (NewMessage, Option<i64>),
) -> StoreResult<Option<Message>> {
    let Some(seq) = seq else { return Ok(None) };
    Ok(Some(Message {
        seq: u64::try_from(seq).map_err(|_| corrupt("seq"))?,
        sender: Profile {
            email: String::new(),
            ..message.sender
        },
        id: message.id,
        room_key: message.room_key,
        body: message.body,
        kind: message.kind,
        created_at_ms: message.created_at_ms,
    }))
}

/// Each message's sequence number from the rows its chunk returned; `None` for a message
/// whose insert returned no row (no such room). The statements run in order, so the rows
/// come in the messages' order, with gaps: one walk matches them.
fn seqs_in_order(chunk: &[NewMessage], rows: &[SqliteRow]) -> StoreResult<Vec<Option<i64>>> {
    let mut rows = rows.iter().peekable();
    let mut seqs = Vec::with_capacity(chunk.len());
    for message in chunk {
        let seq = match rows.peek() {
            Some(row) if row.try_get::<&str, _>("id")? == message.id => {
                let seq = row.try_get("seq")?;
                rows.next();
                Some(seq)
            }
            _ => None,
        };
        seqs.push(seq);
    }
    Ok(seqs)
}

/// A query as `sqlx::query` makes it.
type Query<'q, DB> = sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'q>>;
/// A row mapper, for [`SqlStore`]'s reads.
type RowMap<DB, T> = fn(&<DB as Database>::Row) -> StoreResult<T>;

/// The column reads the row mappers need, for either database's rows.
trait Columns {
    fn optional_text(&self, name: &str) -> StoreResult<Option<String>>;
    fn optional_int(&self, name: &str) -> StoreResult<Option<i64>>;
    fn flag(&self, name: &str) -> StoreResult<bool>;

    fn text(&self, name: &str) -> StoreResult<String> {
        self.optional_text(name)?.ok_or_else(|| corrupt(name))
    }
    fn int(&self, name: &str) -> StoreResult<i64> {
        self.optional_int(name)?.ok_or_else(|| corrupt(name))
    }
    /// An integer column narrowed to `T` (a count, a sequence number).
    fn count<T: TryFrom<i64>>(&self, name: &str) -> StoreResult<T> {
        T::try_from(self.int(name)?).map_err(|_| corrupt(name))
    }
}

impl<R: Row> Columns for R
where
    for<'n> &'n str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn optional_text(&self, name: &str) -> StoreResult<Option<String>> {
        Ok(self.try_get(name)?)
    }
    fn optional_int(&self, name: &str) -> StoreResult<Option<i64>> {
        Ok(self.try_get(name)?)
    }
    fn flag(&self, name: &str) -> StoreResult<bool> {
        Ok(self.try_get(name)?)
    }
}

fn profile_from_row(row: &impl Columns) -> StoreResult<Profile> {
    Ok(Profile {
        user_id: row.text("user_id")?,
        username: row.text("username")?,
        image_url: row.text("image_url")?,
        email: row.text("email")?,
    })
}

/// An [`ACCOUNT`] row, with the rooms read beside it.
fn account_from_row(row: &impl Columns, rooms: Option<Vec<String>>) -> StoreResult<Account> {
    let profile = match row.optional_text("user_id")? {
        Some(_) => Some(profile_from_row(row)?),
        None => None,
    };
    Ok(Account {
        banned: row.flag("banned")?,
        profile,
        rooms,
    })
}

fn room_from_row(row: &impl Columns) -> StoreResult<Room> {
    Ok(Room {
        key: row.text("id")?,
        name: row.text("name")?,
        room_type: row.text("room_type")?,
        max_users: row.count("max_users")?,
        member_count: row.count("member_count")?,
        phase: Phase::parse(&row.text("phase")?).ok_or_else(|| corrupt("phase"))?,
        host_id: row.text("host_id")?,
        game_state: row.optional_text("game_state")?,
        created_at_ms: row.int("created_at")?,
        last_seq: row.count("last_seq")?,
        closed: row.optional_int("closed_at")?.is_some(),
    })
}

fn room_summary_from_row(row: &impl Columns) -> StoreResult<RoomSummary> {
    let room = room_from_row(row)?;
    // The LEFT JOIN leaves the message's columns NULL in a room without messages.
    let last_message = row.optional_text("msg_id")?;
    Ok(RoomSummary {
        room,
        last_message: last_message
            .map(|_| message_from_columns(row, "msg_"))
            .transpose()?,
        read_seq: row.count("read_seq")?,
    })
}

fn ban_from_row(row: &impl Columns) -> StoreResult<Ban> {
    Ok(Ban {
        user_id: row.text("user_id")?,
        reason: row.text("reason")?,
        moderator: row.text("moderator")?,
        banned_at_ms: row.int("banned_at")?,
    })
}

fn audit_entry_from_row(row: &impl Columns) -> StoreResult<AuditEntry> {
    Ok(AuditEntry {
        id: row.text("id")?,
        at_ms: row.int("at")?,
        moderator: row.text("moderator")?,
        action: ModerationAction::parse(&row.text("action")?).ok_or_else(|| corrupt("action"))?,
        target: row.text("target")?,
        reason: row.text("reason")?,
    })
}

fn member_from_row(row: &impl Columns) -> StoreResult<Member> {
    Ok(Member {
        profile: profile_from_row(row)?,
        joined_at_ms: row.int("joined_at")?,
        online: false,
    })
}

fn message_from_row(row: &impl Columns) -> StoreResult<Message> {
    message_from_columns(row, "")
}

/// A message from `row`, its columns named as in `messages` after `prefix` (a query that
/// reads one beside a room prefixes them).
fn message_from_columns(row: &impl Columns, prefix: &str) -> StoreResult<Message> {
    // History reads name the columns as they are: no name is allocated for each row.
    let column = |name: &'static str| -> Cow<'static, str> {
        if prefix.is_empty() {
            Cow::Borrowed(name)
        } else {
            Cow::Owned(format!("{prefix}{name}"))
        }
    };
    Ok(Message {
        id: row.text(&column("id"))?,
        room_key: row.text(&column("room_id"))?,
        seq: row.count(&column("seq"))?,
        sender: Profile {
            user_id: row.text(&column("user_id"))?,
            username: row.text(&column("username"))?,
            image_url: row.text(&column("image_url"))?,
            email: String::new(),
        },
        body: row.text(&column("body"))?,
        kind: MessageKind::parse(&row.text(&column("kind"))?).ok_or_else(|| corrupt("kind"))?,
        created_at_ms: row.int(&column("created_at"))?,
    })
}

fn notification_from_row(row: &impl Columns) -> StoreResult<Notification> {
    Ok(Notification {
        id: row.text("id")?,
        user_id: row.text("user_id")?,
        level: Level::parse(&row.text("level")?).ok_or_else(|| corrupt("level"))?,
        title: row.text("title")?,
        message: row.text("message")?,
        notification_type: row.text("notification_type")?,
        actor_username: row.text("actor_username")?,
        action: row.text("action")?,
        recipient_role: row.text("recipient_role")?,
        phrase_text: row.text("phrase_text")?,
        data: row.optional_text("data")?,
        created_at_ms: row.int("created_at")?,
        read: row.optional_int("read_at")?.is_some(),
    })
}

fn party_from_row(row: &impl Columns) -> StoreResult<Party> {
    Ok(Party {
        id: row.text("id")?,
        code: row.text("code")?,
        host_id: row.text("host_id")?,
        phase: PartyPhase::parse(&row.text("phase")?),
        max_players: row.count("max_players")?,
        created_at_ms: row.int("created_at")?,
    })
}

fn party_player_from_row(row: &impl Columns) -> StoreResult<PartyPlayer> {
    Ok(PartyPlayer {
        user_id: row.text("user_id")?,
        username: row.text("username")?,
        ready: row.flag("ready")?,
        joined_at_ms: row.int("joined_at")?,
    })
}

/// Retention's deletes: at most `$2` rows created before `$1`. Messages in the order the
/// table gives them (the oldest come first, and an index on their age would cost every
/// chat message a write); notifications oldest first, by their index.
const DELETE_OLD_MESSAGES: &str = "DELETE FROM messages WHERE id IN \
     (SELECT id FROM messages WHERE created_at < $1 LIMIT $2)";
const DELETE_OLD_NOTIFICATIONS: &str = "DELETE FROM notifications WHERE id IN \
     (SELECT id FROM notifications WHERE created_at < $1 ORDER BY created_at LIMIT $2)";

macro_rules! impl_store {
    ($db:ty) => {
        impl SqlStore<$db> {
            /// Runs `query` on the writer.
            async fn write(&self, query: Query<'_, $db>) -> StoreResult<()> {
                query.execute(&mut *self.writer.acquire().await?).await?;
                Ok(())
            }

            /// Runs `query` on the writer; whether it changed exactly one row.
            async fn changed_one(&self, query: Query<'_, $db>) -> StoreResult<bool> {
                Ok(query.execute(&mut *self.writer.acquire().await?).await?.rows_affected() == 1)
            }

            /// Seats `user_id` in row `id`, its statements bound by `bind`, unless they hold
            /// a seat already or the row is full or missing. A member coming back (most joins
            /// after a restart) is answered by a read, without a write transaction.
            async fn seat<'q>(
                &self,
                seats: &Seats,
                id: &str,
                user_id: &str,
                bind: impl FnOnce(&'static str) -> Query<'q, $db>,
            ) -> StoreResult<AddMember> {
                if self.exists(sqlx::query(seats.held).bind(id).bind(user_id)).await? {
                    return Ok(AddMember::AlreadyMember);
                }
                self.insert_seat(seats, id, user_id, bind).await
            }

            /// Whether `query` finds a row, read through `pool`.
            async fn exists(&self, query: Query<'_, $db>) -> StoreResult<bool> {
                Ok(query.fetch_optional(&mut *self.pool.acquire().await?).await?.is_some())
            }

            /// The row `query` finds through `pool`, if any, through `map`.
            async fn read_one<T>(&self, query: Query<'_, $db>, map: RowMap<$db, T>) -> StoreResult<Option<T>> {
                query.fetch_optional(&mut *self.pool.acquire().await?).await?.as_ref().map(map).transpose()
            }

            /// Every row `query` finds through `pool`, through `map`.
            async fn read_all<T>(&self, query: Query<'_, $db>, map: RowMap<$db, T>) -> StoreResult<Vec<T>> {
                query.fetch_all(&mut *self.pool.acquire().await?).await?.iter().map(map).collect()
            }

            /// The party whose `column` is `value`.
            async fn party_where(&self, column: &str, value: &str) -> StoreResult<Option<Party>> {
                let sql = format!("SELECT {PARTY_COLUMNS} FROM party_sessions WHERE {column} = $1");
                self.read_one(sqlx::query(&sql).bind(value), party_from_row).await
            }
        }

        #[async_trait]
        impl Store for SqlStore<$db> {
            async fn upsert_profile(&self, profile: &Profile, now_ms: i64) -> StoreResult<()> {
                self.store_profile(profile, now_ms).await
            }

            async fn ready(&self) -> StoreResult<()> {
                let applied: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM _sqlx_migrations WHERE success",
                )
                .fetch_one(&mut *self.pool.acquire().await?)
                .await?;
                let known = MIGRATOR.iter().count();
                if usize::try_from(applied).unwrap_or(0) < known {
                    return Err(StoreError(anyhow::anyhow!(
                        "{applied} of {known} migrations applied"
                    )));
                }
                Ok(())
            }

            async fn delete_before(&self, rows: Rows, before_ms: i64, limit: usize) -> StoreResult<u64> {
                let statement = match rows {
                    Rows::Messages => DELETE_OLD_MESSAGES,
                    Rows::Notifications => DELETE_OLD_NOTIFICATIONS,
                };
                let deleted = sqlx::query(statement)
                    .bind(before_ms)
                    .bind(to_i64(limit as u64))
                    .execute(&mut *self.writer.acquire().await?)
                    .await?;
                Ok(deleted.rows_affected())
            }

            async fn account(&self, user_id: &str, with_rooms: bool) -> StoreResult<Account> {
                self.read_account(user_id, with_rooms).await
            }

            async fn profile(&self, user_id: &str) -> StoreResult<Option<Profile>> {
                let query = sqlx::query(
                    "SELECT user_id, username, image_url, email FROM profiles WHERE user_id = $1",
                );
                self.read_one(query.bind(user_id), profile_from_row).await
            }

            async fn create_room(&self, room: &NewRoom) -> StoreResult<bool> {
                let insert = sqlx::query(
                    "INSERT INTO rooms (id, name, room_type, max_users, phase, host_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
                )
                .bind(&room.key)
                .bind(&room.name)
                .bind(&room.room_type)
                .bind(i64::from(room.max_users))
                .bind(Phase::Lobby.as_str())
                .bind(&room.host_id)
                .bind(room.created_at_ms);
                self.changed_one(insert).await
            }

            async fn room(&self, key: &str) -> StoreResult<Option<Room>> {
                // Built once: every join reads its room.
                static SQL: OnceLock<String> = OnceLock::new();
                let sql = SQL.get_or_init(|| format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE id = $1"));
                self.read_one(sqlx::query(sql).bind(key), room_from_row).await
            }

            async fn start_game(&self, key: &str, game_state: &str) -> StoreResult<Option<Room>> {
                let row = sqlx::query(&format!(
                    "UPDATE rooms SET phase = $2, game_state = $3 WHERE id = $1 AND phase = $4 \
                     RETURNING {ROOM_COLUMNS}"
                ))
                .bind(key)
                .bind(Phase::Playing.as_str())
                .bind(game_state)
                .bind(Phase::Lobby.as_str())
                .fetch_optional(&mut *self.writer.acquire().await?)
                .await?;
                row.as_ref().map(room_from_row).transpose()
            }

            async fn add_member(&self, key: &str, user_id: &str, now_ms: i64) -> StoreResult<AddMember> {
                self.seat_member(key, user_id, now_ms).await
            }

            async fn remove_member(&self, key: &str, user_id: &str) -> StoreResult<bool> {
                self.unseat(&ROOM_SEATS, key, user_id).await
            }

            async fn is_member(&self, key: &str, user_id: &str) -> StoreResult<bool> {
                self.exists(sqlx::query(ROOM_SEATS.held).bind(key).bind(user_id)).await
            }

            async fn members(&self, key: &str) -> StoreResult<Vec<Member>> {
                self.read_members(key).await
            }

            async fn rooms_of(&self, user_id: &str) -> StoreResult<Vec<String>> {
                self.read_rooms_of(user_id).await
            }

            async fn room_on_join(
                &self,
                key: &str,
                user_id: &str,
                history: usize,
                with_members: bool,
            ) -> StoreResult<Option<RoomOnJoin>> {
                self.read_room_on_join(key, user_id, history, with_members).await
            }

            async fn queue_message(&self, message: NewMessage, on_stored: OnStored) -> StoreResult<()> {
                self.appends.enqueue(message, on_stored).await
            }

            async fn recent_messages(&self, key: &str, limit: usize) -> StoreResult<Vec<Message>> {
                self.read_messages(key, SeqWindow::Before(u64::MAX), limit).await
            }

            async fn room_summaries(&self, user_id: &str) -> StoreResult<Vec<RoomSummary>> {
                // One query: each room with its newest message (found by the (room_id, seq)
                // key, its columns prefixed `msg_`) and the member's read position.
                let query = sqlx::query(
                    "SELECT r.id, r.name, r.room_type, r.max_users, r.member_count, r.phase, \
                     r.host_id, r.game_state, r.created_at, r.last_seq, r.closed_at, \
                     COALESCE(p.seq, 0) AS read_seq, \
                     msg.id AS msg_id, msg.room_id AS msg_room_id, msg.seq AS msg_seq, \
                     msg.user_id AS msg_user_id, msg.username AS msg_username, \
                     msg.image_url AS msg_image_url, msg.body AS msg_body, msg.kind AS msg_kind, \
                     msg.created_at AS msg_created_at \
                     FROM memberships m JOIN rooms r ON r.id = m.room_id \
                     LEFT JOIN read_positions p ON p.user_id = m.user_id AND p.room_id = m.room_id \
                     LEFT JOIN messages msg ON msg.room_id = r.id AND msg.seq = r.last_seq \
                     WHERE m.user_id = $1",
                );
                self.read_all(query.bind(user_id), room_summary_from_row).await
            }

            async fn set_read_position(&self, user_id: &str, key: &str, seq: u64, now_ms: i64) -> StoreResult<()> {
                let upsert = sqlx::query(
                    "INSERT INTO read_positions (user_id, room_id, seq, updated_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (user_id, room_id) DO UPDATE SET seq = excluded.seq, \
                     updated_at = excluded.updated_at WHERE excluded.seq > read_positions.seq",
                )
                .bind(user_id)
                .bind(key)
                .bind(to_i64(seq))
                .bind(now_ms);
                self.write(upsert).await
            }

            async fn messages_before(&self, key: &str, before_seq: u64, limit: usize) -> StoreResult<Vec<Message>> {
                self.read_messages(key, SeqWindow::Before(before_seq), limit).await
            }

            async fn messages_after(&self, key: &str, after_seq: u64, limit: usize) -> StoreResult<Vec<Message>> {
                self.read_messages(key, SeqWindow::After(after_seq), limit).await
            }

            async fn insert_notification(&self, n: &Notification) -> StoreResult<()> {
                let insert = sqlx::query(
                    "INSERT INTO notifications (id, user_id, level, title, message, notification_type, \
                     actor_username, action, recipient_role, phrase_text, data, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(&n.id)
                .bind(&n.user_id)
                .bind(n.level.as_str())
                .bind(&n.title)
                .bind(&n.message)
                .bind(&n.notification_type)
                .bind(&n.actor_username)
                .bind(&n.action)
                .bind(&n.recipient_role)
                .bind(&n.phrase_text)
                .bind(&n.data)
                .bind(n.created_at_ms);
                self.write(insert).await
            }

            async fn undelivered_notifications(&self, user_id: &str, since_ms: i64, limit: usize) -> StoreResult<Vec<Notification>> {
                let sql = format!(
                    "SELECT {NOTIFICATION_COLUMNS} FROM notifications \
                     WHERE user_id = $1 AND (delivered_at IS NULL OR created_at >= $2) \
                     ORDER BY created_at, id LIMIT $3"
                );
                let query = sqlx::query(&sql)
                    .bind(user_id)
                    .bind(since_ms)
                    .bind(to_i64(limit as u64));
                self.read_all(query, notification_from_row).await
            }

            async fn mark_delivered(&self, id: &str, now_ms: i64) -> StoreResult<bool> {
                let query = sqlx::query(
                    "UPDATE notifications SET delivered_at = $2 WHERE id = $1 AND delivered_at IS NULL",
                );
                self.changed_one(query.bind(id).bind(now_ms)).await
            }

            async fn unmark_delivered(&self, id: &str) -> StoreResult<()> {
                self.write(sqlx::query("UPDATE notifications SET delivered_at = NULL WHERE id = $1").bind(id)).await
            }

            async fn notifications_of(&self, user_id: &str, limit: usize) -> StoreResult<Vec<Notification>> {
                let sql = format!(
                    "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE user_id = $1 \
                     ORDER BY created_at DESC, id DESC LIMIT $2"
                );
                let query = sqlx::query(&sql).bind(user_id).bind(to_i64(limit as u64));
                self.read_all(query, notification_from_row).await
            }

            async fn mark_read(&self, user_id: &str, id: &str, now_ms: i64) -> StoreResult<bool> {
                let query = sqlx::query(
                    "UPDATE notifications SET read_at = COALESCE(read_at, $3) WHERE id = $1 AND user_id = $2",
                );
                self.changed_one(query.bind(id).bind(user_id).bind(now_ms)).await
            }

            async fn create_party(&self, party: &Party, host: &PartyPlayer) -> StoreResult<bool> {
                let mut conn = self.writer.acquire().await?;
                let mut tx = conn.begin().await?;
                let created = sqlx::query(
                    "INSERT INTO party_sessions (id, code, host_id, phase, max_players, player_count, created_at) \
                     VALUES ($1, $2, $3, $4, $5, 1, $6) ON CONFLICT DO NOTHING",
                )
                .bind(&party.id)
                .bind(&party.code)
                .bind(&party.host_id)
                .bind(party.phase.as_str())
                .bind(i64::from(party.max_players))
                .bind(party.created_at_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if created == 0 {
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO party_players (session_id, user_id, username, ready, joined_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&party.id)
                .bind(&host.user_id)
                .bind(&host.username)
                .bind(host.ready)
                .bind(host.joined_at_ms)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn party(&self, id: &str) -> StoreResult<Option<Party>> {
                self.party_where("id", id).await
            }

            async fn party_by_code(&self, code: &str) -> StoreResult<Option<Party>> {
                self.party_where("code", code).await
            }

            async fn party_players(&self, id: &str) -> StoreResult<Vec<PartyPlayer>> {
                let query = sqlx::query(
                    "SELECT user_id, username, ready, joined_at FROM party_players WHERE session_id = $1 \
                     ORDER BY joined_at, user_id",
                );
                self.read_all(query.bind(id), party_player_from_row).await
            }

            async fn add_party_player(&self, id: &str, player: &PartyPlayer) -> StoreResult<AddMember> {
                let bind = |sql| {
                    sqlx::query(sql)
                        .bind(id)
                        .bind(&player.user_id)
                        .bind(&player.username)
                        .bind(player.ready)
                        .bind(player.joined_at_ms)
                };
                self.seat(&PARTY_SEATS, id, &player.user_id, bind).await
            }

            async fn remove_party_player(&self, id: &str, user_id: &str) -> StoreResult<bool> {
                self.unseat(&PARTY_SEATS, id, user_id).await
            }

            async fn set_party_ready(&self, id: &str, user_id: &str, ready: bool) -> StoreResult<bool> {
                let query = sqlx::query("UPDATE party_players SET ready = $3 WHERE session_id = $1 AND user_id = $2");
                self.changed_one(query.bind(id).bind(user_id).bind(ready)).await
            }

            async fn set_party_state(&self, id: &str, host_id: &str, phase: &PartyPhase) -> StoreResult<bool> {
                let query = sqlx::query("UPDATE party_sessions SET host_id = $2, phase = $3 WHERE id = $1");
                self.changed_one(query.bind(id).bind(host_id).bind(phase.as_str())).await
            }

            async fn delete_message(&self, id: &str) -> StoreResult<Option<DeletedMessage>> {
                let row = sqlx::query("DELETE FROM messages WHERE id = $1 RETURNING room_id, seq")
                    .bind(id)
                    .fetch_optional(&mut *self.writer.acquire().await?)
                    .await?;
                row.map(|row| {
                    Ok(DeletedMessage {
                        id: id.to_owned(),
                        room_key: row.text("room_id")?,
                        seq: row.count("seq")?,
                    })
                })
                .transpose()
            }

            async fn close_room(&self, key: &str, now_ms: i64) -> StoreResult<Option<Vec<String>>> {
                let mut conn = self.writer.acquire().await?;
                let mut tx = conn.begin().await?;
                let closed = sqlx::query(
                    "UPDATE rooms SET closed_at = $2, member_count = 0 \
                     WHERE id = $1 AND closed_at IS NULL",
                )
                .bind(key)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if closed == 0 {
                    tx.rollback().await?;
                    return Ok(None);
                }
                let rows = sqlx::query("DELETE FROM memberships WHERE room_id = $1 RETURNING user_id")
                    .bind(key)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                rows.iter().map(|row| row.text("user_id")).collect::<StoreResult<_>>().map(Some)
            }

            async fn ban(&self, ban: &Ban) -> StoreResult<()> {
                let upsert = sqlx::query(
                    "INSERT INTO bans (user_id, reason, moderator, banned_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (user_id) DO UPDATE SET reason = excluded.reason, \
                     moderator = excluded.moderator, banned_at = excluded.banned_at",
                )
                .bind(&ban.user_id)
                .bind(&ban.reason)
                .bind(&ban.moderator)
                .bind(ban.banned_at_ms);
                self.write(upsert).await
            }

            async fn unban(&self, user_id: &str) -> StoreResult<bool> {
                self.changed_one(sqlx::query("DELETE FROM bans WHERE user_id = $1").bind(user_id)).await
            }

            async fn is_banned(&self, user_id: &str) -> StoreResult<bool> {
                self.exists(sqlx::query("SELECT 1 FROM bans WHERE user_id = $1").bind(user_id)).await
            }

            async fn bans(&self, limit: usize) -> StoreResult<Vec<Ban>> {
                let query = sqlx::query(
                    "SELECT user_id, reason, moderator, banned_at FROM bans \
                     ORDER BY banned_at DESC, user_id LIMIT $1",
                );
                self.read_all(query.bind(to_i64(limit as u64)), ban_from_row).await
            }

            async fn record_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
                let sql = format!("INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)");
                let insert = sqlx::query(&sql)
                    .bind(&entry.id)
                    .bind(entry.at_ms)
                    .bind(&entry.moderator)
                    .bind(entry.action.as_str())
                    .bind(&entry.target)
                    .bind(&entry.reason);
                self.write(insert).await
            }

            async fn audit_log(&self, limit: usize) -> StoreResult<Vec<AuditEntry>> {
                let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY at DESC, id DESC LIMIT $1");
                let query = sqlx::query(&sql).bind(to_i64(limit as u64));
                self.read_all(query, audit_entry_from_row).await
            }
        }
    };
}

impl_store!(Sqlite);
impl_store!(Postgres);

#[cfg(test)]
mod tests {
    use super::{
        member_from_row, packed_members, unpack, unpack_members, Connections, SqlStore, Sqlite,
        MEMBER_FIELDS, MESSAGE_COLUMNS, MESSAGE_FIELDS,
    };
    use crate::store::{SqliteSynchronous, StoreOptions};
    use sqlx::Row;

    #[test]
    fn packed_message_fields_are_the_message_columns() {
        assert_eq!(MESSAGE_FIELDS.join(", "), MESSAGE_COLUMNS);
    }

    /// Members decoded by position read what decoding by field name reads, and a packed
    /// list of another shape is refused.
    #[test]
    fn packed_members_decode_by_position_as_by_name() {
        let packed = r#"[["u1",1700,"Ann \"A\"","https://a/1.png","a@x"],["u2",1701,"u2","",""]]"#;
        let by_position = unpack_members(packed).unwrap();
        let by_name = unpack(packed, MEMBER_FIELDS, member_from_row).unwrap();
        assert_eq!(by_position, by_name);
        assert_eq!(by_position[0].profile.username, "Ann \"A\"");
        assert_eq!(by_position[1].joined_at_ms, 1701);
        assert!(unpack_members(r#"[["u1","Ann",1700]]"#).is_err());
        let shuffled = r#"[["b",2,"b","",""],["c",1,"c","",""],["a",2,"a","",""]]"#;
        let ids: Vec<String> = unpack_members(shuffled)
            .unwrap()
            .into_iter()
            .map(|member| member.profile.user_id)
            .collect();
        assert_eq!(ids, ["c", "a", "b"], "joined first, then by id");
        assert!(unpack_members("[]").unwrap().is_empty());
    }

    /// SQLite reads a room's members from the index that holds them in order: no member
    /// is sorted, nor looked up in the table, however large the room.
    #[tokio::test]
    async fn sqlite_lists_members_without_sorting_them() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("confab.db").display());
        let store = SqlStore::<Sqlite>::connect(&url, StoreOptions::default())
            .await
            .unwrap();
        let explain = format!("EXPLAIN QUERY PLAN {}", packed_members());
        let rows = sqlx::query(&explain)
            .bind("ROOM")
            .fetch_all(&mut *store.pool.acquire().await.unwrap())
            .await
            .unwrap();
        let plan: Vec<String> = rows.iter().map(|row| row.get("detail")).collect();
        let plan = plan.join("\n");
        assert!(
            plan.contains("SEARCH m USING COVERING INDEX memberships_in_order (room_id=?)"),
            "{plan}"
        );
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    /// The durability setting reaches every connection: the writer's and the readers'.
    #[tokio::test]
    async fn sqlite_synchronous_is_what_was_asked() {
        for readers in [0, 2] {
            for (asked, pragma) in [(SqliteSynchronous::Full, 2), (SqliteSynchronous::Normal, 1)] {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("confab.db").display());
                let options = StoreOptions {
                    sqlite_synchronous: asked,
                    sqlite_readers: readers,
                    ..StoreOptions::default()
                };
                let store = SqlStore::<Sqlite>::connect(&url, options).await.unwrap();
                for connections in [&store.writer, &store.pool] {
                    let got: i64 = sqlx::query_scalar("PRAGMA synchronous")
                        .fetch_one(&mut *connections.acquire().await.unwrap())
                        .await
                        .unwrap();
                    assert_eq!(got, pragma, "{asked:?} with {readers} readers");
                }
            }
        }
    }

    /// With no readers, reads take the writer's one connection; with some, a pool of that
    /// many beside it. More than the most allowed are refused.
    #[tokio::test]
    async fn sqlite_reads_run_where_the_options_say() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("confab.db").display());
        let connect = |readers| {
            let options = StoreOptions {
                sqlite_readers: readers,
                ..StoreOptions::default()
            };
            SqlStore::<Sqlite>::connect(&url, options)
        };
        let store = connect(0).await.unwrap();
        // One connection: taken by either, it is the other's too.
        let (Connections::One(reads), Connections::One(writes)) = (&store.pool, &store.writer)
        else {
            panic!("no readers: reads and writes on the writer's one connection");
        };
        assert!(reads.is(writes));
        drop(store);

        let store = connect(3).await.unwrap();
        let (Connections::Pool(reads), Connections::One(_)) = (&store.pool, &store.writer) else {
            panic!("readers: a pool of them beside the writer's one connection");
        };
        assert_eq!(reads.options().get_max_connections(), 3);
        drop(store);

        let too_many = connect(super::MAX_SQLITE_READERS + 1).await;
        assert!(too_many.is_err());
    }
}
