//! Group commit for what sign-ins and joins write on SQLite: a new or changed profile, and
//! a new member's seat. Every such write goes through one queue to one writer, which runs
//! whatever has queued up since its last transaction in one transaction.
//!
//! A storm of joins writes twice a join. On SQLite each commit is a set of file locks and
//! WAL writes, and it makes any reading connection (`--sqlite-readers`) drop its page
//! cache and read its pages again at its next read (BENCHMARKS.md, twenty-fifth round). Committed a batch at
//! a time, a storm pays those once a batch, while a lone join is written at once, as
//! before.
//!
//! A caller learns its write's outcome only once it is committed. A write whose caller has
//! gone (a client that left mid-join) is still made: a seat taken for a join nobody
//! waits for is a membership like any other, which the user can leave.
//!
//! The writer runs on a thread of its own with a runtime of its own, as the message writer
//! does (`store/append.rs`, which says why).

use sqlx::{Connection, Sqlite, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use super::{connections::Connections, seats::ROOM_SEATS};
use crate::{
    core::model::{AddMember, Profile},
    store::{append::spawn_writer, StoreError, StoreResult},
};

/// Writes waiting for the writer. Past it, a sign-in or join waits for room in the queue,
/// which slows a storm down instead of growing memory. Admission keeps far fewer in
/// flight (`core::ADMISSIONS_IN_FLIGHT`), so it is reached only by callers that bypass it.
pub const JOIN_WRITE_QUEUE_CAPACITY: usize = 1024;
/// The most writes the writer takes from the queue for one transaction.
pub const MAX_JOIN_WRITE_BATCH: usize = 64;

/// A write a sign-in or join makes.
pub(in crate::store) enum JoinWrite {
    /// Creates or updates a profile (see `Store::upsert_profile`).
    Profile { profile: Profile, now_ms: i64 },
    /// Seats `user_id` in room `key` unless they hold a seat or it is full, closed or
    /// missing (see `Store::add_member`).
    Seat {
        key: String,
        user_id: String,
        now_ms: i64,
    },
}

/// What a write came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::store) enum Written {
    Profile,
    Seat(AddMember),
}

impl JoinWrite {
    /// Makes the write in the writer's open transaction.
    async fn run(&self, conn: &mut SqliteConnection) -> StoreResult<Written> {
        match self {
            Self::Profile { profile, now_ms } => {
                sqlx::query(super::UPSERT_PROFILE)
                    .bind(&profile.user_id)
                    .bind(&profile.username)
                    .bind(&profile.image_url)
                    .bind(&profile.email)
                    .bind(*now_ms)
                    .execute(&mut *conn)
                    .await?;
                Ok(Written::Profile)
            }
            Self::Seat {
                key,
                user_id,
                now_ms,
            } => {
                let seat = sqlx::query(ROOM_SEATS.seat)
                    .bind(key)
                    .bind(user_id)
                    .bind(*now_ms);
                let added = !seat.fetch_all(&mut *conn).await?.is_empty();
                let outcome = match added {
                    true => AddMember::Added,
                    false => ROOM_SEATS.why_unseated(conn, key, user_id).await?,
                };
                Ok(Written::Seat(outcome))
            }
        }
    }
}

struct Pending {
    write: JoinWrite,
    reply: oneshot::Sender<StoreResult<Written>>,
}

/// The sending end of the queue; the writer stops when it is dropped.
pub(in crate::store) struct JoinWriteQueue {
    queue: mpsc::Sender<Pending>,
}

impl JoinWriteQueue {
    /// Starts the writer on a thread of its own, writing through `writer`.
    pub fn start(writer: Connections<Sqlite>) -> std::io::Result<Self> {
        let (queue, receiver) = mpsc::channel(JOIN_WRITE_QUEUE_CAPACITY);
        spawn_writer("confab-join-writer", move || {
            write_batches(writer, receiver)
        })?;
        Ok(Self { queue })
    }

    /// Makes `write`, in a transaction with whatever else is queued; its outcome once
    /// committed.
    pub async fn write(&self, write: JoinWrite) -> StoreResult<Written> {
        let (reply, written) = oneshot::channel();
        self.queue
            .send(Pending { write, reply })
            .await
            .map_err(|_| StoreError::writer_gone())?;
        written.await.map_err(|_| StoreError::writer_gone())?
    }
}

async fn write_batches(writer: Connections<Sqlite>, mut receiver: mpsc::Receiver<Pending>) {
    let mut pending = Vec::with_capacity(MAX_JOIN_WRITE_BATCH);
    let mut written = Vec::with_capacity(MAX_JOIN_WRITE_BATCH);
    let batch_size = metrics::histogram!(crate::metrics::JOIN_BATCH_SIZE);
    while receiver.recv_many(&mut pending, MAX_JOIN_WRITE_BATCH).await > 0 {
        written.clear();
        match write_batch(&writer, &pending, &mut written).await {
            Ok(()) => {
                batch_size.record(written.len() as f64);
                for (p, outcome) in pending.drain(..).zip(written.drain(..)) {
                    let _ = p.reply.send(Ok(outcome));
                }
            }
            Err(err) if pending.len() == 1 => {
                if let Some(p) = pending.pop() {
                    let _ = p.reply.send(Err(err));
                }
            }
            // One failing write must not fail the others: each is tried alone.
            Err(_) => {
                for p in pending.drain(..) {
                    written.clear();
                    let outcome = write_batch(&writer, std::slice::from_ref(&p), &mut written)
                        .await
                        .and_then(|()| written.pop().ok_or_else(StoreError::writer_gone));
                    let _ = p.reply.send(outcome);
                }
            }
        }
    }
}

/// Makes `batch`'s writes in one transaction, their outcomes pushed onto `written` in
/// order. On an error nothing of it is kept: the dropped transaction rolls back.
async fn write_batch(
    writer: &Connections<Sqlite>,
    batch: &[Pending],
    written: &mut Vec<Written>,
) -> StoreResult<()> {
    // IMMEDIATE: the write lock from the start, so no statement has to upgrade to it.
    let mut conn = writer.acquire().await?;
    let mut transaction = conn.begin_with("BEGIN IMMEDIATE").await?;
    for p in batch {
        written.push(p.write.run(&mut transaction).await?);
    }
    transaction.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        core::model::NewRoom,
        store::{sql::SqlStore, Store, StoreOptions},
    };

    fn profile_write(user_id: &str) -> Pending {
        let profile = Profile {
            user_id: user_id.into(),
            username: format!("name-{user_id}"),
            image_url: String::new(),
            email: String::new(),
        };
        let (reply, _) = oneshot::channel();
        Pending {
            write: JoinWrite::Profile { profile, now_ms: 1 },
            reply,
        }
    }

    fn seat_write(key: &str, user_id: &str) -> Pending {
        let (reply, _) = oneshot::channel();
        let write = JoinWrite::Seat {
            key: key.into(),
            user_id: user_id.into(),
            now_ms: 2,
        };
        Pending { write, reply }
    }

    /// Whether the writer's connection is outside any transaction: only then can a new one
    /// begin on it.
    async fn no_transaction_open(writer: &Connections<Sqlite>) -> bool {
        let mut conn = writer.acquire().await.unwrap();
        let began = sqlx::query("BEGIN").execute(&mut *conn).await.is_ok();
        sqlx::query("ROLLBACK").execute(&mut *conn).await.unwrap();
        began
    }

    /// A batch whose write fails keeps none of its writes and leaves no transaction open,
    /// whether the failing write comes first, in the middle or last; the next batch is
    /// written whole, each write with its own outcome.
    #[tokio::test]
    async fn a_failed_batch_is_rolled_back_and_the_next_written() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("confab.db").display());
        let store = SqlStore::<Sqlite>::connect(&url, StoreOptions::default())
            .await
            .unwrap();
        let room = NewRoom {
            key: "SEATS1".into(),
            name: "seats".into(),
            room_type: "chat".into(),
            max_users: 10,
            host_id: "host".into(),
            created_at_ms: 1,
        };
        assert!(store.create_room(&room).await.unwrap());
        let writer = &store.writer;
        sqlx::query(
            "CREATE TRIGGER refuse_bad BEFORE INSERT ON profiles WHEN NEW.user_id = 'bad' \
             BEGIN SELECT RAISE(ABORT, 'refused'); END",
        )
        .execute(&mut *writer.acquire().await.unwrap())
        .await
        .unwrap();

        let batches = [
            vec![profile_write("bad")],
            vec![profile_write("bad"), seat_write("SEATS1", "a")],
            vec![
                seat_write("SEATS1", "a"),
                profile_write("bad"),
                profile_write("b"),
            ],
            vec![
                profile_write("a"),
                seat_write("SEATS1", "b"),
                profile_write("bad"),
            ],
        ];
        for batch in &batches {
            let mut written = Vec::new();
            assert!(write_batch(writer, batch, &mut written).await.is_err());
            assert!(no_transaction_open(writer).await);
        }
        assert!(store.members("SEATS1").await.unwrap().is_empty());
        assert_eq!(store.profile("a").await.unwrap(), None);

        let batch = [
            profile_write("a"),
            seat_write("SEATS1", "a"),
            seat_write("SEATS1", "a"),
            seat_write("NOROOM", "a"),
        ];
        let mut written = Vec::new();
        write_batch(writer, &batch, &mut written).await.unwrap();
        assert_eq!(
            written,
            [
                Written::Profile,
                Written::Seat(AddMember::Added),
                Written::Seat(AddMember::AlreadyMember),
                Written::Seat(AddMember::NotFound),
            ]
        );
        assert!(no_transaction_open(writer).await);
        assert_eq!(store.members("SEATS1").await.unwrap().len(), 1);
        assert_eq!(
            store.profile("a").await.unwrap().unwrap().username,
            "name-a"
        );
    }
}
