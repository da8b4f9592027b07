//! Seats: a room's members and a party's players, each row counting the seats taken
//! against its capacity.
//!
//! Taking a seat is "insert the user unless they hold one, and count it, unless the row is
//! full, closed or missing", atomically. Both databases first look for the user's seat with a
//! read (`seat`, in `sql.rs`); for the insert, each gets the shape that is cheap for it:
//!
//! - SQLite takes the seat with a conditional `INSERT … RETURNING` and an `UPDATE` of the
//!   count that applies only when the insert did (`changes()`), sent as one text: every
//!   statement sent separately is a hand-off to SQLite's worker thread and back, and a join
//!   storm is mostly hand-offs. A room's seats are taken in the join writer's transactions
//!   (`join_writes.rs`), a batch of joins at a time; a party's in a transaction of its own.
//!   SQLite has one writing connection, so while a seat is taken nothing else writes, and a
//!   join that got no seat reads why on that connection, seeing what its insert saw.
//! - PostgreSQL takes the seat with a conditional `UPDATE … RETURNING`, which it serialises
//!   per row, then inserts; a join that gets no seat calls the row full only when a read
//!   after the update shows it full (a row created meanwhile is tried again).

use sqlx::{Connection, Postgres, Row, Sqlite, SqliteConnection};

use super::{connections::Held, Query, SqlStore};
use crate::{core::model::AddMember, store::StoreResult};

/// Times a PostgreSQL join tries for a seat that its row says is free before it calls the
/// row full (see `take_seat`).
const SEAT_ATTEMPTS: usize = 3;

/// The statements of one kind of seat, with `$1` the row and `$2` the user; the inserts
/// take the seat's columns from `$1` on, and do nothing when the user holds a seat.
pub(super) struct Seats {
    /// Finds the user's seat.
    pub(super) held: &'static str,
    /// Reads how many seats are taken, of how many.
    count: &'static str,
    /// SQLite: takes the seat, in a transaction already open, returning a row when it
    /// seated the user.
    pub(super) seat: &'static str,
    /// SQLite: the whole leave, in one transaction, returning a row when there was a seat.
    unseat_at_once: &'static str,
    /// PostgreSQL: takes a seat if one is free.
    take: &'static str,
    /// PostgreSQL: inserts the user's seat, once one is taken.
    insert: &'static str,
    /// PostgreSQL: removes the user's seat.
    leave: &'static str,
    /// PostgreSQL: gives a removed seat back to the count.
    release: &'static str,
}

/// A room's members: `$3` is when they joined.
pub(super) const ROOM_SEATS: Seats = Seats {
    held: "SELECT 1 FROM memberships WHERE room_id = $1 AND user_id = $2",
    // A closed room has no seats.
    count: "SELECT member_count AS taken, \
            CASE WHEN closed_at IS NULL THEN max_users ELSE 0 END AS capacity \
            FROM rooms WHERE id = $1",
    seat: "INSERT INTO memberships (room_id, user_id, joined_at) SELECT $1, $2, $3 \
         WHERE EXISTS (SELECT 1 FROM rooms \
         WHERE id = $1 AND member_count < max_users AND closed_at IS NULL) \
         ON CONFLICT (room_id, user_id) DO NOTHING RETURNING 1; \
         UPDATE rooms SET member_count = member_count + 1 WHERE id = $1 AND changes() = 1",
    unseat_at_once: "BEGIN IMMEDIATE; \
         DELETE FROM memberships WHERE room_id = $1 AND user_id = $2 RETURNING 1; \
         UPDATE rooms SET member_count = member_count - 1 WHERE id = $1 AND changes() = 1; \
         COMMIT",
    take: "UPDATE rooms SET member_count = member_count + 1 \
           WHERE id = $1 AND member_count < max_users AND closed_at IS NULL RETURNING id",
    insert: "INSERT INTO memberships (room_id, user_id, joined_at) VALUES ($1, $2, $3) \
             ON CONFLICT (room_id, user_id) DO NOTHING",
    leave: "DELETE FROM memberships WHERE room_id = $1 AND user_id = $2",
    release: "UPDATE rooms SET member_count = member_count - 1 WHERE id = $1",
};

/// A party's players: `$3` their name, `$4` whether they are ready, `$5` when they joined.
pub(super) const PARTY_SEATS: Seats = Seats {
    held: "SELECT 1 FROM party_players WHERE session_id = $1 AND user_id = $2",
    count: "SELECT player_count AS taken, max_players AS capacity FROM party_sessions \
            WHERE id = $1",
    seat: "INSERT INTO party_players (session_id, user_id, username, ready, joined_at) \
         SELECT $1, $2, $3, $4, $5 \
         WHERE EXISTS (SELECT 1 FROM party_sessions WHERE id = $1 AND player_count < max_players) \
         ON CONFLICT (session_id, user_id) DO NOTHING RETURNING 1; \
         UPDATE party_sessions SET player_count = player_count + 1 \
         WHERE id = $1 AND changes() = 1",
    unseat_at_once: "BEGIN IMMEDIATE; \
         DELETE FROM party_players WHERE session_id = $1 AND user_id = $2 RETURNING 1; \
         UPDATE party_sessions SET player_count = player_count - 1 \
         WHERE id = $1 AND changes() = 1; \
         COMMIT",
    take: "UPDATE party_sessions SET player_count = player_count + 1 \
           WHERE id = $1 AND player_count < max_players RETURNING id",
    insert: "INSERT INTO party_players (session_id, user_id, username, ready, joined_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (session_id, user_id) DO NOTHING",
    leave: "DELETE FROM party_players WHERE session_id = $1 AND user_id = $2",
    release: "UPDATE party_sessions SET player_count = player_count - 1 WHERE id = $1",
};

impl Seats {
    /// SQLite: why `seat` seated nobody in row `id`, read on the only writing connection
    /// before anything else has written, so seeing what the insert saw.
    pub(super) async fn why_unseated(
        &self,
        conn: &mut SqliteConnection,
        id: &str,
        user_id: &str,
    ) -> StoreResult<AddMember> {
        let held = sqlx::query(self.held).bind(id).bind(user_id);
        if held.fetch_optional(&mut *conn).await?.is_some() {
            return Ok(AddMember::AlreadyMember);
        }
        // No free seat: full (or closed), or no such row.
        let count = sqlx::query(self.count).bind(id);
        Ok(match count.fetch_optional(&mut *conn).await? {
            Some(_) => AddMember::Full,
            None => AddMember::NotFound,
        })
    }
}

/// What trying for a PostgreSQL seat came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seat {
    Taken,
    Full,
    NoSuchRow,
}

/// SQLite's only writing connection, held for a transaction sent as one text.
///
/// SQLite's worker runs the text's statements one by one and stops as soon as nobody waits
/// for their results: a caller that goes away meanwhile (a request whose client left) would
/// leave the transaction open for the writer's next user. Dropped while one runs, it marks
/// the connection so, and the next user rolls the transaction back before anything else
/// (`connections.rs`).
struct Writer {
    conn: Held<Sqlite>,
    running: bool,
}

impl Writer {
    async fn take(store: &SqlStore<Sqlite>) -> StoreResult<Self> {
        Ok(Self {
            conn: store.writer.acquire().await?,
            running: false,
        })
    }

    /// Runs `transaction` (BEGIN to COMMIT); whether it returned rows.
    async fn run(&mut self, transaction: Query<'_, Sqlite>) -> StoreResult<bool> {
        self.running = true;
        let outcome = transaction.fetch_all(&mut *self.conn).await;
        self.finish(outcome.map(|rows| !rows.is_empty())).await
    }

    /// Runs `statements` in a transaction of their own; whether they returned rows.
    async fn run_in_transaction(&mut self, statements: Query<'_, Sqlite>) -> StoreResult<bool> {
        self.running = true;
        let conn = &mut *self.conn;
        let outcome = async {
            sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
            let rows = statements.fetch_all(&mut *conn).await?;
            sqlx::query("COMMIT").execute(&mut *conn).await?;
            Ok::<_, sqlx::Error>(!rows.is_empty())
        }
        .await;
        self.finish(outcome).await
    }

    /// Rolls a failed transaction back; the connection is free again.
    async fn finish(&mut self, outcome: Result<bool, sqlx::Error>) -> StoreResult<bool> {
        if outcome.is_err() {
            // Harmless when no transaction is open.
            let _ = sqlx::query("ROLLBACK").execute(&mut *self.conn).await;
        }
        self.running = false;
        Ok(outcome?)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.running {
            self.conn.abandon_transaction();
        }
    }
}

impl SqlStore<Sqlite> {
    /// Seats `user_id` in row `id` with `seats.seat`, bound by `bind`, in a transaction of
    /// its own, unless they hold a seat or the row is full or missing (see `seat`, which
    /// calls it). A party's seats are taken here; a room's go through the join writer.
    pub(super) async fn insert_seat<'q>(
        &self,
        seats: &Seats,
        id: &str,
        user_id: &str,
        bind: impl FnOnce(&'static str) -> Query<'q, Sqlite>,
    ) -> StoreResult<AddMember> {
        let mut writer = Writer::take(self).await?;
        if writer.run_in_transaction(bind(seats.seat)).await? {
            return Ok(AddMember::Added);
        }
        // Still holding the only writer, so this sees what the insert saw.
        seats.why_unseated(&mut writer.conn, id, user_id).await
    }

    /// Frees `user_id`'s seat in row `id`; `false` when they held none.
    pub(super) async fn unseat(&self, seats: &Seats, id: &str, user_id: &str) -> StoreResult<bool> {
        let query = sqlx::query(seats.unseat_at_once).bind(id).bind(user_id);
        Writer::take(self).await?.run(query).await
    }
}

impl SqlStore<Postgres> {
    /// Takes a seat of row `id` in `tx`. The conditional UPDATE takes one or finds none;
    /// finding none means "full" only if the row, read afterwards, exists and is full. A
    /// row created (or a seat freed) between the two statements is tried again, so a joiner
    /// racing a room's first joiner is never told it is full.
    async fn take_seat(
        tx: &mut sqlx::Transaction<'_, Postgres>,
        seats: &Seats,
        id: &str,
    ) -> StoreResult<Seat> {
        for _ in 0..SEAT_ATTEMPTS {
            let take = sqlx::query(seats.take).bind(id);
            if take.fetch_optional(&mut **tx).await?.is_some() {
                return Ok(Seat::Taken);
            }
            let count = sqlx::query(seats.count).bind(id);
            let Some(row) = count.fetch_optional(&mut **tx).await? else {
                return Ok(Seat::NoSuchRow);
            };
            let taken: i64 = row.try_get("taken")?;
            let capacity: i64 = row.try_get("capacity")?;
            if taken >= capacity {
                return Ok(Seat::Full);
            }
        }
        // Seats kept being freed and taken under us: full, as far as we could tell.
        Ok(Seat::Full)
    }

    /// Seats `user_id` in row `id` with `seats.insert`, bound by `bind`, unless they hold a
    /// seat or the row is full or missing (see `seat`, which calls it).
    pub(super) async fn insert_seat<'q>(
        &self,
        seats: &Seats,
        id: &str,
        // Bound into the insert by `bind`.
        _user_id: &str,
        bind: impl FnOnce(&'static str) -> Query<'q, Postgres>,
    ) -> StoreResult<AddMember> {
        let mut conn = self.writer.acquire().await?;
        let mut tx = conn.begin().await?;
        match Self::take_seat(&mut tx, seats, id).await? {
            Seat::Taken => {}
            Seat::Full => return Ok(AddMember::Full),
            Seat::NoSuchRow => return Ok(AddMember::NotFound),
        }
        if bind(seats.insert).execute(&mut *tx).await?.rows_affected() == 0 {
            // A concurrent join of the same user won; give the seat back.
            tx.rollback().await?;
            return Ok(AddMember::AlreadyMember);
        }
        tx.commit().await?;
        Ok(AddMember::Added)
    }

    /// Frees `user_id`'s seat in row `id`; `false` when they held none.
    pub(super) async fn unseat(&self, seats: &Seats, id: &str, user_id: &str) -> StoreResult<bool> {
        let mut conn = self.writer.acquire().await?;
        let mut tx = conn.begin().await?;
        let leave = sqlx::query(seats.leave).bind(id).bind(user_id);
        let removed = leave.execute(&mut *tx).await?.rows_affected();
        if removed == 1 {
            sqlx::query(seats.release)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(removed == 1)
    }
}
