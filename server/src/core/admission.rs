//! Admission: how many sign-ins and joins run at once.
//!
//! They are the store's heaviest commands (a write on the store's single writer and several
//! reads each), and they come in storms: when a node is lost, thousands of clients
//! reconnect, sign in and rejoin within a second or two. Let through all at once, they queue
//! for a database connection, and past the store's wait for one ([`crate::store`]'s acquire
//! timeout, 5 s) they fail as internal errors, while every chat message waits behind them.
//! So at most [`ADMISSIONS_IN_FLIGHT`] run at once and the rest wait their turn, in order
//! of arrival, for as long as it takes. The wait is bounded in number rather than time:
//! each connection handles its commands one at a time, so it waits for at most one
//! admission.
//!
//! The core's sign-in and join take an [`Admission`], so no door can forget to ask for one;
//! a door holds it for the whole command (a sign-in's resubscribing and room state
//! included) and lets it go before it writes the answer.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Core;

/// Sign-ins and joins running at once; more wait their turn. Twice PostgreSQL's 16
/// connections, and on SQLite (one connection by default, statements of a few tens of µs)
/// a queue short enough that a query waits for the connection milliseconds, not seconds:
/// enough to keep the store busy without queuing in it.
pub const ADMISSIONS_IN_FLIGHT: usize = 32;

/// A turn to run a sign-in or a join; the next waiting one runs when it is dropped.
pub struct Admission {
    _permit: OwnedSemaphorePermit,
}

/// The queue of sign-ins and joins.
pub(super) struct Admissions {
    permits: Arc<Semaphore>,
}

impl Default for Admissions {
    fn default() -> Self {
        Self {
            permits: Arc::new(Semaphore::new(ADMISSIONS_IN_FLIGHT)),
        }
    }
}

/// Counts a waiter in the gauge until it is admitted or gives up (its connection went).
struct Waiting;

impl Waiting {
    fn start() -> Self {
        metrics::gauge!(crate::metrics::ADMISSIONS_WAITING).increment(1.0);
        Self
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        metrics::gauge!(crate::metrics::ADMISSIONS_WAITING).decrement(1.0);
    }
}

impl Core {
    /// Waits for a turn to sign in or join.
    pub async fn admit(&self) -> Admission {
        let permits = &self.inner.admissions.permits;
        if let Ok(permit) = Arc::clone(permits).try_acquire_owned() {
            return Admission { _permit: permit };
        }
        let _waiting = Waiting::start();
        let permit = Arc::clone(permits)
            .acquire_owned()
            .await
            .expect("the admission semaphore is never closed");
        Admission { _permit: permit }
    }
}
