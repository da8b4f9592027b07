//! Fan-out: how a published event reaches the subscribers of its topic on every node. One
//! node delivers in-process ([`InProcess`]); several nodes would share events through a
//! broker behind the same trait.

use std::sync::Arc;

use crate::core::{events::Delivery, hub::Hub};

pub trait Fanout: Send + Sync + 'static {
    /// Sends `delivery` to every subscriber of its topic, on every node. Never waits.
    fn publish(&self, delivery: Delivery);
}

/// Delivers straight to this node's hub.
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
