//! Group commit for chat messages. Every append goes through one queue to one writer,
//! which stores whatever has queued up since its last write in as few transactions as it
//! can. A busy room (or a busy server) then pays for one commit per batch instead of one
//! per message, while a lone message is written at once, as before.
//!
//! A caller learns of its message only once it is committed, with the room's next
//! sequence number, so the core still broadcasts only what is stored. The queue keeps
//! arrival order, so one connection's messages are numbered in the order it sent them, and
//! the writer tells their callers in that order too.
//!
//! The writer runs on a thread of its own, with a runtime of its own. Every write is a few
//! hand-offs between the writer and the database (SQLite's worker thread, or PostgreSQL's
//! socket), and on the server's runtime each hand-off would wait behind every connection
//! task that is ready to run: on a busy core, a whole round of a room's deliveries per
//! hand-off. On its own runtime nothing is queued ahead of it, and the operating system
//! schedules its thread as soon as it is woken.

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{sql::stored_message, OnStored, StoreError, StoreResult};
use crate::core::model::NewMessage;

/// Messages waiting for the writer. Past it, appending waits for room in the queue, which
/// slows the senders down instead of growing memory.
pub const APPEND_QUEUE_CAPACITY: usize = 4096;
/// The most messages the writer takes from the queue for one write.
pub const MAX_APPEND_BATCH: usize = 64;

/// How one database stores messages.
#[async_trait]
pub(super) trait MessageWriter: Send + Sync + 'static {
    /// Stores `batch` in order, each message with its room's next sequence number (`None`
    /// for a message whose room does not exist). On an error nothing of the failed
    /// transaction is kept; the writer may have committed earlier parts of the batch in
    /// transactions of their own, which it reports by returning them in `stored`.
    async fn insert_batch(
        &self,
        batch: &[NewMessage],
        stored: &mut Vec<Option<i64>>,
    ) -> StoreResult<()>;
}

struct Pending {
    message: NewMessage,
    on_stored: OnStored,
}

/// The sending end of the queue; the writer stops when it is dropped.
pub(super) struct AppendQueue {
    queue: mpsc::Sender<Pending>,
}

impl AppendQueue {
    /// Starts the writer on a thread of its own; it stops when the queue is dropped.
    pub fn start(writer: impl MessageWriter) -> std::io::Result<Self> {
        let (queue, receiver) = mpsc::channel(APPEND_QUEUE_CAPACITY);
        spawn_writer("confab-message-writer", move || {
            write_batches(writer, receiver)
        })?;
        Ok(Self { queue })
    }

    /// Queues `message`, waiting only while the queue is full. Once it is stored (or has
    /// failed), the writer calls `on_stored`, on the writer's thread, in the order the
    /// messages were queued, before it writes anything else. Messages are numbered in the
    /// order they were queued.
    pub async fn enqueue(&self, message: NewMessage, on_stored: OnStored) -> StoreResult<()> {
        self.queue
            .send(Pending { message, on_stored })
            .await
            .map_err(|_| StoreError::writer_gone())
    }
}

/// Runs the writer `run` makes on a thread named `name`, with a runtime of its own (see
/// above for why). The writer is made on that thread, so it need not be `Send`.
pub(super) fn spawn_writer<F>(
    name: &str,
    run: impl FnOnce() -> F + Send + 'static,
) -> std::io::Result<()>
where
    F: std::future::Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || runtime.block_on(run()))?;
    Ok(())
}

async fn write_batches(writer: impl MessageWriter, mut receiver: mpsc::Receiver<Pending>) {
    let mut pending = Vec::with_capacity(MAX_APPEND_BATCH);
    let mut stored = Vec::with_capacity(MAX_APPEND_BATCH);
    let recorded = WriteMetrics::new();
    while receiver.recv_many(&mut pending, MAX_APPEND_BATCH).await > 0 {
        let (messages, replies): (Vec<NewMessage>, Vec<_>) =
            pending.drain(..).map(|p| (p.message, p.on_stored)).unzip();
        stored.clear();
        let started = std::time::Instant::now();
        let outcome = writer.insert_batch(&messages, &mut stored).await;
        recorded.batch(&stored, started);
        let mut messages = messages.into_iter();
        let mut replies = replies.into_iter();
        for seq in stored.drain(..) {
            if let (Some(message), Some(reply)) = (messages.next(), replies.next()) {
                tell(reply, Ok((message, seq)));
            }
        }
        if let Err(err) = outcome {
            // The failed transaction may hold one bad message among good ones: the rest
            // are written one at a time, so only the bad one fails.
            if messages.len() == 1 {
                if let Some(reply) = replies.next() {
                    tell(reply, Err(err));
                }
                continue;
            }
            for (message, reply) in messages.zip(replies) {
                stored.clear();
                let started = std::time::Instant::now();
                let outcome = writer
                    .insert_batch(std::slice::from_ref(&message), &mut stored)
                    .await;
                recorded.batch(&stored, started);
                let seq = stored.first().copied().flatten();
                tell(reply, outcome.map(|()| (message, seq)));
            }
        }
    }
}

/// The writer's metrics, looked up once.
struct WriteMetrics {
    commit_seconds: metrics::Histogram,
    batch_size: metrics::Histogram,
    stored: metrics::Counter,
}

impl WriteMetrics {
    fn new() -> Self {
        use crate::metrics::{MESSAGES_STORED, STORE_BATCH_SIZE, STORE_COMMIT_SECONDS};
        Self {
            commit_seconds: metrics::histogram!(STORE_COMMIT_SECONDS),
            batch_size: metrics::histogram!(STORE_BATCH_SIZE),
            stored: metrics::counter!(MESSAGES_STORED),
        }
    }

    /// Records a write that stored `stored` and started at `started`.
    fn batch(&self, stored: &[Option<i64>], started: std::time::Instant) {
        let count = stored.iter().filter(|seq| seq.is_some()).count();
        self.commit_seconds.record(started.elapsed().as_secs_f64());
        self.batch_size.record(count as f64);
        self.stored.increment(count as u64);
    }
}

/// Tells a message's caller its fate: the message handed back as stored (so the writer
/// keeps no copy), `None` when its room does not exist, or the failure.
fn tell(on_stored: OnStored, outcome: StoreResult<(NewMessage, Option<i64>)>) {
    on_stored(outcome.and_then(stored_message));
}
