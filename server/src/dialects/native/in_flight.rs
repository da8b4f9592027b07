//! Chat messages a connection has sent that are not yet stored. The connection reads its
//! next request while they are being written, so one busy sender's messages reach the
//! store's writer together and are committed together, instead of each waiting for the
//! last one's commit. They are announced in the order sent, which is the order the store
//! numbers them; any other request waits until they are all announced, so its answer
//! comes after theirs, as it would have before.

use std::{future::Future, pin::Pin};

use confab_shared::native::ServerMessage;
use futures_util::{stream::FuturesOrdered, FutureExt, StreamExt};

use super::room_reply;
use crate::core::{Core, CoreResult, QueuedMessage, StoredMessage};

/// Chat messages one connection may have waiting for the store; past it, the connection
/// reads nothing more until one is stored.
pub const MAX_POSTS_IN_FLIGHT: usize = 64;

type Storing = Pin<Box<dyn Future<Output = (String, CoreResult<StoredMessage>)> + Send + Sync>>;

#[derive(Default)]
pub struct InFlight {
    posts: FuturesOrdered<Storing>,
}

impl InFlight {
    pub fn push(&mut self, code: String, queued: QueuedMessage) {
        self.posts
            .push_back(Box::pin(async move { (code, queued.stored().await) }));
    }

    pub fn is_empty(&self) -> bool {
        self.posts.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.posts.len() >= MAX_POSTS_IN_FLIGHT
    }

    /// Waits for the oldest message to be stored and announces it, with those after it that
    /// are stored already (a batch commits together): their replies, which are nothing or
    /// `room:error`s. `None` when nothing is in flight. Cancel-safe: nothing is lost when
    /// the future is dropped before it finishes.
    pub async fn next(&mut self, core: &Core) -> Option<Vec<ServerMessage>> {
        let (code, stored) = self.posts.next().await?;
        let mut replies = announce(core, &code, stored);
        while let Some(Some((code, stored))) = self.posts.next().now_or_never() {
            replies.extend(announce(core, &code, stored));
        }
        Some(replies)
    }

    /// Waits for every message in flight and announces each, in order.
    pub async fn finish(&mut self, core: &Core) -> Vec<ServerMessage> {
        let mut replies = Vec::new();
        while let Some(more) = self.next(core).await {
            replies.extend(more);
        }
        replies
    }
}

fn announce(core: &Core, code: &str, stored: CoreResult<StoredMessage>) -> Vec<ServerMessage> {
    room_reply(
        code,
        stored.map(|stored| {
            core.announce_message(stored);
            Vec::new()
        }),
    )
}
