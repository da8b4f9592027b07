//! Retention: chat messages and notifications older than their configured age are deleted
//! by a periodic job, in small batches with a pause between them, so the deletes never
//! hold the database long enough to stall chat. Unset ages keep everything.
//!
//! A room's sequence numbers are not touched: history after a deleted message starts at
//! the first one kept, and a client asking for messages after an old `seq` gets the ones
//! that remain.

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use crate::store::{Rows, Store, StoreResult};

/// How often the job runs.
pub const SWEEP_EVERY: Duration = Duration::from_secs(10 * 60);
/// Rows deleted per statement at most.
pub const BATCH: usize = 500;
/// The pause between two batches, in which chat has the database to itself.
const PAUSE: Duration = Duration::from_millis(50);
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// How long each kind of row is kept; `None` keeps it forever.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    pub message_days: Option<u64>,
    pub notification_days: Option<u64>,
}

impl Policy {
    pub fn keeps_everything(&self) -> bool {
        self.message_days.is_none() && self.notification_days.is_none()
    }
}

/// What one sweep deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub messages: u64,
    pub notifications: u64,
}

/// Deletes, as of `now_ms`, everything `policy` no longer keeps, a batch at a time.
pub async fn sweep(store: &dyn Store, policy: Policy, now_ms: i64) -> StoreResult<Swept> {
    let cutoff = |days: Option<u64>| {
        days.map(|days| now_ms - i64::try_from(days).unwrap_or(i64::MAX / DAY_MS) * DAY_MS)
    };
    Ok(Swept {
        messages: in_batches(store, Rows::Messages, cutoff(policy.message_days)).await?,
        notifications: in_batches(store, Rows::Notifications, cutoff(policy.notification_days))
            .await?,
    })
}

/// Deletes `rows` created before `before`, [`BATCH`] at a time until a batch comes back
/// short, pausing between batches; how many went. Nothing when `before` is `None`.
async fn in_batches(store: &dyn Store, rows: Rows, before: Option<i64>) -> StoreResult<u64> {
    let Some(before) = before else { return Ok(0) };
    let mut total = 0;
    loop {
        let deleted = store.delete_before(rows, before, BATCH).await?;
        total += deleted;
        if deleted < BATCH as u64 {
            return Ok(total);
        }
        tokio::time::sleep(PAUSE).await;
    }
}

/// Runs [`sweep`] every [`SWEEP_EVERY`] until `stop`.
pub async fn run(store: Arc<dyn Store>, policy: Policy, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = stop.cancelled() => return,
        }
        match sweep(store.as_ref(), policy, crate::core::now_ms()).await {
            Ok(swept) if swept != Swept::default() => tracing::info!(
                messages = swept.messages,
                notifications = swept.notifications,
                "retention: deleted what is past its age"
            ),
            Ok(_) => {}
            Err(err) => tracing::warn!(%err, "retention sweep failed; trying again later"),
        }
    }
}
