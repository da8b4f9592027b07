//! Chat messages a connection has sent that are not yet stored and broadcast. The
//! connection reads its next request while they are being written, so one busy sender's
//! messages reach the store's writer together and are committed together, instead of each
//! waiting for the last one's commit. The writer broadcasts them in the order sent, which is
//! the order the store numbers them; any other request waits until they are all broadcast,
//! so its answer comes after theirs, as it would have if each had been awaited.

use std::{future::Future, pin::Pin};

use confab_shared::native::ServerMessage;
use futures_util::{stream::FuturesOrdered, FutureExt, StreamExt};

use super::room_done;
use crate::core::{CoreResult, QueuedMessage};

/// Chat messages one connection may have waiting for the store; past it, the connection
/// reads nothing more until one is stored.
pub const MAX_POSTS_IN_FLIGHT: usize = 64;

type Announcing = Pin<Box<dyn Future<Output = (String, CoreResult<()>)> + Send + Sync>>;

/// The queue is made on the first message and dropped once empty: it is two allocations,
/// and most connections, most of the time, have nothing in flight.
#[derive(Default)]
pub struct InFlight {
    posts: Option<FuturesOrdered<Announcing>>,
}

impl InFlight {
    pub fn push(&mut self, code: String, queued: QueuedMessage) {
        self.posts
            .get_or_insert_with(FuturesOrdered::new)
            .push_back(Box::pin(async move { (code, queued.announced().await) }));
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_full(&self) -> bool {
        self.len() >= MAX_POSTS_IN_FLIGHT
    }

    fn len(&self) -> usize {
        self.posts.as_ref().map_or(0, FuturesOrdered::len)
    }

    /// Waits for the oldest message to be broadcast, with those after it that are broadcast
    /// already (a batch commits together): their replies, which are nothing or
    /// `room:error`s. `None` when nothing is in flight. Cancel-safe: nothing is lost when
    /// the future is dropped before it finishes.
    pub async fn next(&mut self) -> Option<Vec<ServerMessage>> {
        let posts = self.posts.as_mut()?;
        let (code, announced) = posts.next().await?;
        let mut replies = room_done(&code, announced);
        while let Some(Some((code, announced))) = posts.next().now_or_never() {
            replies.extend(room_done(&code, announced));
        }
        if posts.is_empty() {
            self.posts = None;
        }
        Some(replies)
    }

    /// Waits for every message in flight to be broadcast: their replies, in order.
    pub async fn finish(&mut self) -> Vec<ServerMessage> {
        let mut replies = Vec::new();
        while let Some(more) = self.next().await {
            replies.extend(more);
        }
        replies
    }
}
