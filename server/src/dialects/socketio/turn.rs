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

use std::{convert::Infallible, sync::Arc};

use socketioxide::{
    adapter::Adapter,
    handler::{FromMessageParts, Value},
    socket::Socket,
};
use tokio::sync::oneshot;

use super::{lock, Session};

/// The ends of the latest turn taken on a socket: done with queueing, done altogether.
#[derive(Default)]
pub struct Line {
    queued: Option<oneshot::Receiver<()>>,
    done: Option<oneshot::Receiver<()>>,
}

/// An event's place in its socket's line. Dropping it ends the turn.
pub struct Turn {
    previous_queued: Option<oneshot::Receiver<()>>,
    previous_done: Option<oneshot::Receiver<()>>,
    queued: Option<oneshot::Sender<()>>,
    _done: oneshot::Sender<()>,
}

impl Turn {
    /// The next turn on `line`.
    pub(super) fn take(line: &std::sync::Mutex<Line>) -> Self {
        let (queued, queued_rx) = oneshot::channel();
        let (done, done_rx) = oneshot::channel();
        let mut line = lock(line);
        Self {
            previous_queued: line.queued.replace(queued_rx),
            previous_done: line.done.replace(done_rx),
            queued: Some(queued),
            _done: done,
        }
    }

    /// A turn with nobody before it (a socket with no session has no line).
    fn first() -> Self {
        let (done, _) = oneshot::channel();
        Self {
            previous_queued: None,
            previous_done: None,
            queued: None,
            _done: done,
        }
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

impl<A: Adapter> FromMessageParts<A> for Turn {
    type Error = Infallible;

    fn from_message_parts(
        socket: &Arc<Socket<A>>,
        _: &mut Value,
        _: &Option<i64>,
    ) -> Result<Self, Infallible> {
        Ok(socket
            .extensions
            .get::<Arc<Session>>()
            .map_or_else(Turn::first, |session| Turn::take(&session.line)))
    }
}
