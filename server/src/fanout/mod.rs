//! Fan-out: how a published event reaches the subscribers of its topic on every node, and
//! what the other nodes must know of this one's users. One node delivers in-process
//! ([`InProcess`]); nodes in a cluster share deliveries and presence through Redis
//! ([`redis::RedisFanout`]).

pub mod order;
pub mod redis;

use std::sync::Arc;

use crate::core::{events::Delivery, hub::Hub, model::Profile};

pub trait Fanout: Send + Sync + 'static {
    /// Sends `delivery` to every subscriber of its topic, on every node. Never waits.
    fn publish(&self, delivery: Delivery);

    /// A connection of this node signed in as `profile`; `first_here` when it is the user's
    /// only one on this node.
    fn signed_in(&self, _profile: &Profile, _first_here: bool) {}

    /// The user's last connection on this node signed out or closed.
    fn gone_from_here(&self, _user_id: &str) {}

    /// A connection of this node follows room `key`, and has (or needs no) stored messages
    /// up to `last_seq`.
    fn follow_room(&self, _key: &str, _last_seq: u64) {}

    /// Tells the other nodes, after everything queued for them, that this node is leaving.
    fn leave(&self) -> futures_util::future::BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// Whether deliveries reach the other nodes and theirs reach this one; why not if not.
    fn ready(&self) -> Result<(), &'static str> {
        Ok(())
    }
}

/// Delivers straight to this node's hub: one writer publishes in commit order, so rooms
/// receive their messages in order without more.
pub struct InProcess {
    hub: Arc<Hub>,
}

impl InProcess {
    pub fn new(hub: Arc<Hub>) -> Self {
        Self { hub }
    }
}

impl Fanout for InProcess {
    fn publish(&self, delivery: Delivery) {
        self.hub.deliver(&Arc::new(delivery));
    }
}
