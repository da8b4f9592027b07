//! Token buckets: one per connection for inbound messages, and one per key (client IP) for
//! HTTP endpoints that mint things.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Keys a [`KeyedLimiter`] tracks at most; past it, idle (full) buckets are forgotten.
pub const MAX_TRACKED_KEYS: usize = 65_536;

/// Up to `burst` actions at once, refilled at `per_second`.
#[derive(Debug, Clone)]
pub struct Bucket {
    burst: f64,
    per_second: f64,
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    pub fn new(burst: u32, per_second: f64) -> Self {
        Self {
            burst: f64::from(burst),
            per_second,
            tokens: f64::from(burst),
            updated: Instant::now(),
        }
    }

    /// Takes one token; `false` when there is none (the action is over the limit).
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.updated = now;
    }

    fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }
}

/// A bucket per key, with a bounded number of keys.
pub struct KeyedLimiter<K> {
    burst: u32,
    per_second: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Eq + Hash + Clone> KeyedLimiter<K> {
    /// `burst` actions at once per key, `per_minute` on average.
    pub fn per_minute(burst: u32, per_minute: u32) -> Self {
        Self {
            burst,
            per_second: f64::from(per_minute) / Duration::from_secs(60).as_secs_f64(),
            buckets: Mutex::default(),
        }
    }

    pub fn try_take(&self, key: &K) -> bool {
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= MAX_TRACKED_KEYS && !buckets.contains_key(key) {
            buckets.retain(|_, bucket| !bucket.is_full(now));
            if buckets.len() >= MAX_TRACKED_KEYS {
                return false;
            }
        }
        buckets
            .entry(key.clone())
            .or_insert_with(|| Bucket::new(self.burst, self.per_second))
            .try_take(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let start = Instant::now();
        let mut bucket = Bucket::new(3, 2.0);
        assert!((0..3).all(|_| bucket.try_take(start)));
        assert!(!bucket.try_take(start));
        assert!(bucket.try_take(start + Duration::from_millis(500)));
        assert!(!bucket.try_take(start + Duration::from_millis(500)));
    }

    #[test]
    fn keys_have_separate_buckets() {
        let limiter = KeyedLimiter::per_minute(2, 2);
        assert!(limiter.try_take(&"a"));
        assert!(limiter.try_take(&"a"));
        assert!(!limiter.try_take(&"a"));
        assert!(limiter.try_take(&"b"));
    }
}
