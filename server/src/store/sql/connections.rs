//! Where the SQL store's statements run: a pool of connections, or SQLite's one writing
//! connection, taken in turn.
//!
//! sqlx's pool hands a connection back by spawning a task that pings it first. On SQLite a
//! ping is a message to the connection's worker thread and one back, so every statement run
//! through a pool cost two more hand-offs between threads than the statement itself, and a
//! join storm on one core is mostly such hand-offs (BENCHMARKS.md, twenty-seventh round).
//! SQLite's writer is a single connection, which needs no pool: it sits behind a fair lock
//! here, and is handed back by unlocking it.
//!
//! The pool's ping was also its way to notice a connection left mid-transaction by a caller
//! that went away. The worker runs commands in order, so whatever a dropped caller queued
//! runs before the next holder's statements; what it cannot finish is a transaction sent
//! as one text, which stops at the first statement nobody waits for. A holder running such a
//! text marks the connection in doubt when dropped ([`Held::abandon_transaction`]), and the
//! next holder rolls back before anything else.

use std::{
    future::Future,
    ops::{Deref, DerefMut},
    pin::Pin,
    sync::Arc,
    time::Duration,
};

use sqlx::{pool::PoolConnection, Database, PgConnection, Pool, SqliteConnection};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// A pool, or one connection shared in turn.
pub(in crate::store) enum Connections<DB: Database> {
    Pool(Pool<DB>),
    One(OneConnection<DB>),
}

impl<DB: Database> Clone for Connections<DB> {
    fn clone(&self) -> Self {
        match self {
            Self::Pool(pool) => Self::Pool(pool.clone()),
            Self::One(one) => Self::One(one.clone()),
        }
    }
}

/// A connection that callers take one at a time, in the order they asked.
pub(in crate::store) struct OneConnection<DB: Database> {
    shared: Arc<Mutex<Shared<DB>>>,
    /// How long a caller waits for it before failing, as a pool's acquire timeout.
    wait: Duration,
}

pub(in crate::store) struct Shared<DB: Database> {
    conn: DB::Connection,
    /// A transaction may be open that its holder abandoned; the next holder rolls it back.
    in_doubt: bool,
}

impl<DB: Database> OneConnection<DB> {
    pub fn new(conn: DB::Connection, wait: Duration) -> Self {
        let shared = Shared {
            conn,
            in_doubt: false,
        };
        Self {
            shared: Arc::new(Mutex::new(shared)),
            wait,
        }
    }

    /// Whether `self` and `other` are the same connection.
    #[cfg(test)]
    pub fn is(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl<DB: Database> Clone for OneConnection<DB> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            wait: self.wait,
        }
    }
}

/// A connection taken from [`Connections`]; dropping it hands it back.
pub(in crate::store) enum Held<DB: Database> {
    Pooled(PoolConnection<DB>),
    One(OwnedMutexGuard<Shared<DB>>),
}

impl<DB: Database> Connections<DB>
where
    DB::Connection: RollBack,
{
    /// A connection, once it is this caller's turn; `PoolTimedOut` past the wait.
    pub async fn acquire(&self) -> Result<Held<DB>, sqlx::Error> {
        match self {
            Self::Pool(pool) => pool.acquire().await.map(Held::Pooled),
            Self::One(one) => {
                let turn = Arc::clone(&one.shared).lock_owned();
                let mut shared = tokio::time::timeout(one.wait, turn)
                    .await
                    .map_err(|_| sqlx::Error::PoolTimedOut)?;
                if shared.in_doubt {
                    shared.conn.roll_back().await?;
                    shared.in_doubt = false;
                }
                Ok(Held::One(shared))
            }
        }
    }
}

impl<DB: Database> Held<DB> {
    /// Called by a holder dropped while a transaction it sent as one text may be open:
    /// nobody may use the connection as it is. A pooled one is closed (which rolls back);
    /// the shared one is rolled back by its next holder.
    pub fn abandon_transaction(&mut self) {
        match self {
            Self::Pooled(conn) => conn.close_on_drop(),
            Self::One(shared) => shared.in_doubt = true,
        }
    }
}

impl<DB: Database> Deref for Held<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        match self {
            Self::Pooled(conn) => conn,
            Self::One(shared) => &shared.conn,
        }
    }
}

impl<DB: Database> DerefMut for Held<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        match self {
            Self::Pooled(conn) => conn,
            Self::One(shared) => &mut shared.conn,
        }
    }
}

type RollBackFuture<'c> = Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send + 'c>>;

/// Rolls back whatever transaction is open; harmless when none is.
pub(in crate::store) trait RollBack {
    fn roll_back(&mut self) -> RollBackFuture<'_>;
}

impl RollBack for SqliteConnection {
    fn roll_back(&mut self) -> RollBackFuture<'_> {
        Box::pin(async move {
            match sqlx::query("ROLLBACK").execute(self).await {
                Ok(_) => Ok(()),
                Err(sqlx::Error::Database(err)) if err.message().contains("no transaction") => {
                    Ok(())
                }
                Err(err) => Err(err),
            }
        })
    }
}

// PostgreSQL's connections are pooled, never shared in turn; this is here because
// `Connections` is one type for both databases.
impl RollBack for PgConnection {
    fn roll_back(&mut self) -> RollBackFuture<'_> {
        // PostgreSQL warns, and succeeds, when no transaction is open.
        Box::pin(async move { sqlx::query("ROLLBACK").execute(self).await.map(|_| ()) })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use sqlx::{Connection, Row, Sqlite};

    use super::*;

    async fn one(wait: Duration) -> Connections<Sqlite> {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&mut conn)
            .await
            .unwrap();
        Connections::One(OneConnection::new(conn, wait))
    }

    async fn rows(conn: &mut SqliteConnection) -> i64 {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM t")
            .fetch_one(conn)
            .await
            .unwrap();
        row.get("n")
    }

    /// One holder at a time: the next waits its turn, and fails as a pool does once it has
    /// waited as long as it may.
    #[tokio::test]
    async fn the_one_connection_is_held_by_one_caller_at_a_time() {
        let connections = one(Duration::from_millis(200)).await;
        let held = connections.acquire().await.unwrap();
        let started = Instant::now();
        let refused = connections.acquire().await;
        assert!(matches!(refused, Err(sqlx::Error::PoolTimedOut)));
        assert!(started.elapsed() >= Duration::from_millis(200));

        let waiting = tokio::spawn({
            let connections = connections.clone();
            async move { rows(&mut connections.acquire().await.unwrap()).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        drop(held);
        assert_eq!(waiting.await.unwrap(), 0);
    }

    /// Runs `text` on a connection taken from `connections`, then abandons it as a holder
    /// dropped mid-transaction does; how many rows `t` has for the next holder.
    async fn abandon_after(connections: &Connections<Sqlite>, text: &str) -> i64 {
        let mut held = connections.acquire().await.unwrap();
        sqlx::query(text).execute(&mut *held).await.unwrap();
        held.abandon_transaction();
        drop(held);
        rows(&mut connections.acquire().await.unwrap()).await
    }

    /// A transaction its holder abandoned is rolled back before the next holder runs
    /// anything; one that was committed, or none at all, is left alone.
    #[tokio::test]
    async fn an_abandoned_transaction_is_rolled_back_for_the_next_holder() {
        let connections = one(Duration::from_secs(5)).await;
        let open = "BEGIN IMMEDIATE; INSERT INTO t VALUES (1)";
        assert_eq!(abandon_after(&connections, open).await, 0);
        // No transaction was left open, so a new one begins; committed, it is kept.
        let committed = "BEGIN IMMEDIATE; INSERT INTO t VALUES (2); COMMIT";
        assert_eq!(abandon_after(&connections, committed).await, 1);
        assert_eq!(abandon_after(&connections, "SELECT 1").await, 1);
    }
}
