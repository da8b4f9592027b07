//! Events of one socket are handled in the order they arrived.
//!
//! socketioxide runs every event's handler as a task of its own, so without a turn a
//! `send_message` sent right after `join_room` could be handled while the join is still
//! being stored, and fail, and two chat messages could be stored in either order. A [`Turn`]
//! is taken when the event is extracted, before its task is spawned, so turns follow arrival
//! order; each handler waits for the turns before its own.
//!
//! Chat messages keep a socket's pipeline full: a message waits only until the event before
//! it has *queued* its message for storage, and waits for the full turn before it only to be
//! announced. So a socket's messages share commits, are numbered in the order sent and reach
//! the room in that order.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use socketioxide::{
    adapter::Adapter,
    handler::{FromMessageParts, Value},
    socket::Socket,
};
use tokio::sync::oneshot;

use super::Peer;
use crate::{lock, ratelimit::Bucket};

/// Events of one socket that may wait for (or hold) their turn at once, at the least: a
/// socket's line holds as many as its arrival burst. Each waiting event is a task holding
/// its payload, so a socket that sends faster than it is answered would otherwise grow the
/// server without bound; past this it is disconnected. A client that waits for answers
/// never comes near it (the rate limit refuses most of such a burst).
pub const MAX_QUEUED_EVENTS: usize = 256;

/// Events of any kind a socket may send at once, at the least; past its arrival burst, and
/// past [`ARRIVALS_PER_MESSAGE`] times its message rate on average, it is disconnected as
/// the event arrives, before anything is queued. A client that heeds `RATE_LIMITED` never
/// comes near it; one that keeps sending regardless is cut off after its arrival burst (a
/// few hundred events with the default limits) rather than after however many the server
/// reads before its line fills.
pub const MAX_ARRIVAL_BURST: u32 = 256;
/// How many times its message limits (`CONFAB_MESSAGE_RATE`, `CONFAB_MESSAGE_BURST`) a
/// socket's events may arrive at, on average and at once, counting those that are not rate
/// limited (pings, connection info): a client within its message limits is never cut off.
pub const ARRIVALS_PER_MESSAGE: u32 = 4;

/// The ends of the latest turn taken on a socket: done with queueing, done altogether; how
/// many turns are not over yet, and how many may be; the socket's arrivals; and whether it
/// has been cut off.
pub struct Line {
    queued: Option<oneshot::Receiver<()>>,
    done: Option<oneshot::Receiver<()>>,
    pending: Arc<AtomicUsize>,
    max_pending: usize,
    arrivals: Bucket,
    cut_off: bool,
}

impl Line {
    /// The line of a socket whose messages are limited to `message_rate` a second, in
    /// bursts of `message_burst`.
    pub fn new(message_rate: f64, message_burst: u32) -> Self {
        let burst = message_burst
            .saturating_mul(ARRIVALS_PER_MESSAGE)
            .max(MAX_ARRIVAL_BURST);
        Self {
            queued: None,
            done: None,
            pending: Arc::default(),
            max_pending: usize::try_from(burst)
                .map_or(usize::MAX, |burst| burst.max(MAX_QUEUED_EVENTS)),
            arrivals: Bucket::new(burst, message_rate * f64::from(ARRIVALS_PER_MESSAGE)),
            cut_off: false,
        }
    }
}

/// An event's place in its socket's line. Dropping it ends the turn.
pub struct Turn {
    previous_queued: Option<oneshot::Receiver<()>>,
    previous_done: Option<oneshot::Receiver<()>>,
    queued: Option<oneshot::Sender<()>>,
    _done: oneshot::Sender<()>,
    _pending: Option<Pending>,
}

/// Counts a turn as pending until it is dropped.
struct Pending(Arc<AtomicUsize>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Turn {
    /// The next turn on `line`. Refused with [`NoTurn::LineFull`] when the line is full (its
    /// arrival burst, [`MAX_QUEUED_EVENTS`] at the least, pending already), or the socket
    /// sends far faster than its rate limit; from then on, with [`NoTurn::CutOff`].
    pub(super) fn take(line: &std::sync::Mutex<Line>) -> Result<Self, NoTurn> {
        let mut line = lock(line);
        if line.cut_off {
            return Err(NoTurn::CutOff);
        }
        let arrived = line.arrivals.try_take(std::time::Instant::now());
        if !arrived || line.pending.fetch_add(1, Ordering::AcqRel) >= line.max_pending {
            if arrived {
                line.pending.fetch_sub(1, Ordering::AcqRel);
            }
            line.cut_off = true;
            return Err(NoTurn::LineFull);
        }
        let pending = Pending(Arc::clone(&line.pending));
        let (queued, queued_rx) = oneshot::channel();
        let (done, done_rx) = oneshot::channel();
        Ok(Self {
            previous_queued: line.queued.replace(queued_rx),
            previous_done: line.done.replace(done_rx),
            queued: Some(queued),
            _done: done,
            _pending: Some(pending),
        })
    }

    /// Waits until every earlier event of the socket has been handled.
    pub async fn wait(&mut self) {
        self.wait_queued().await;
        if let Some(previous) = self.previous_done.take() {
            // An error means the earlier turn was dropped: it is over either way.
            let _ = previous.await;
        }
    }

    /// Waits until every earlier event has at least queued its chat message.
    pub async fn wait_queued(&mut self) {
        if let Some(previous) = self.previous_queued.take() {
            let _ = previous.await;
        }
    }

    /// Lets the next event queue its message while this one is stored.
    pub fn release_queued(&mut self) {
        self.queued.take();
    }
}

/// Why an event gets no turn: it is dropped before a task is spawned for it.
#[derive(Debug, thiserror::Error)]
pub enum NoTurn {
    /// The socket has disconnected (its peer is gone), and socketioxide is still decoding
    /// what was read before: a flooder cut off has hundreds of events in flight, and a
    /// task for each, only to find no peer, is CPU and memory spent for nothing.
    #[error("the socket has disconnected")]
    Disconnected,
    /// The socket's line was full, or it sent past its arrival burst ([`MAX_ARRIVAL_BURST`]
    /// at the least); it is disconnected.
    #[error("too many events waiting or arriving; the socket is disconnected")]
    LineFull,
    /// An event after [`NoTurn::LineFull`], while the socket is being disconnected.
    #[error("the socket is being disconnected")]
    CutOff,
}

impl<A: Adapter> FromMessageParts<A> for Turn {
    type Error = NoTurn;

    fn from_message_parts(
        socket: &Arc<Socket<A>>,
        _: &mut Value,
        _: &Option<i64>,
    ) -> Result<Self, NoTurn> {
        // Every namespace attaches its peer in its connect middleware, before the client
        // can send an event, and removes it on disconnect: no peer means gone.
        let Some(peer) = socket.extensions.get::<Arc<Peer>>() else {
            return Err(NoTurn::Disconnected);
        };
        let turn = Turn::take(&peer.line);
        if let Err(NoTurn::LineFull) = turn {
            tracing::debug!(sid = %socket.id, "too many events waiting or arriving; disconnecting");
            // Not here: socketioxide holds its handler table while it extracts, and closing
            // the socket takes it too. Once: later events are refused as `CutOff`.
            let socket = Arc::clone(socket);
            tokio::spawn(async move {
                let _ = socket.disconnect();
            });
        }
        turn
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn a_socket_is_cut_off_past_its_arrival_burst_even_when_it_is_answered_at_once() {
        // The defaults (20 a second, 40 at once), and a raised burst at a rate too slow to
        // refill a token while the loop runs.
        for (rate, burst, arrivals) in [(20.0, 40, MAX_ARRIVAL_BURST), (0.01, 1_000, 4_000)] {
            let line = Mutex::new(Line::new(rate, burst));
            for n in 0..arrivals {
                // Each turn ends before the next is taken: nothing is ever pending.
                assert!(
                    Turn::take(&line).is_ok(),
                    "event {n} of {arrivals} is taken"
                );
            }
            assert!(
                matches!(Turn::take(&line), Err(NoTurn::LineFull)),
                "event {arrivals} is refused"
            );
        }
    }

    #[test]
    fn at_most_max_queued_events_wait() {
        let line = Mutex::new(Line::new(1_000_000.0, 40));
        let waiting: Vec<Turn> = (0..MAX_QUEUED_EVENTS)
            .map(|_| Turn::take(&line).expect("a place in line"))
            .collect();
        // Long enough for the arrival bucket to refill at this rate: what refuses the next
        // event is the line.
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(
            matches!(Turn::take(&line), Err(NoTurn::LineFull)),
            "the line is full"
        );
        drop(waiting);
        assert!(
            matches!(Turn::take(&line), Err(NoTurn::CutOff)),
            "and the socket, being disconnected, gets no turn even once they are done"
        );
    }

    #[test]
    fn a_raised_message_burst_may_wait_at_once() {
        // 1,000 messages at once allowed: 500 of them waiting is within the limit.
        let line = Mutex::new(Line::new(0.01, 1_000));
        let waiting: Vec<Turn> = (0..500)
            .map(|n| Turn::take(&line).unwrap_or_else(|_| panic!("event {n} waits")))
            .collect();
        assert_eq!(waiting.len(), 500);
    }

    #[test]
    fn a_socket_is_refused_once_as_line_full_and_then_as_cut_off() {
        let line = Mutex::new(Line::new(1.0, 40));
        while Turn::take(&line).is_ok() {}
        // Only the first refusal disconnects: a flood of thousands read after the cut
        // costs no task each.
        for _ in 0..1_000 {
            assert!(matches!(Turn::take(&line), Err(NoTurn::CutOff)));
        }
    }
}
