//! Token buckets: one per connection for inbound messages, and one per key (client IP, user)
//! for HTTP endpoints that mint things. A [`SharedLimiter`] holds across the nodes of a
//! cluster.

use std::{
    collections::HashMap,
    fmt::Display,
    hash::Hash,
    net::{IpAddr, Ipv6Addr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use axum::http::HeaderMap;

use crate::lock;

/// Keys a [`KeyedLimiter`] tracks at most; past it, the least recently used is forgotten.
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

    /// Whether the bucket is back to its whole burst at `now`: forgetting it changes nothing.
    fn is_full(&self, now: Instant) -> bool {
        self.available(now) >= self.burst
    }

    fn refill(&mut self, now: Instant) {
        self.tokens = self.available(now).min(self.burst);
        self.updated = now;
    }

    /// The tokens at `now`, before the cap at `burst`.
    fn available(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens + elapsed * self.per_second
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
        self.try_take_at(key, Instant::now())
    }

    fn try_take_at(&self, key: &K, now: Instant) -> bool {
        let mut buckets = lock(&self.buckets);
        if buckets.len() >= MAX_TRACKED_KEYS && !buckets.contains_key(key) {
            make_room(&mut buckets, now);
        }
        buckets
            .entry(key.clone())
            .or_insert_with(|| Bucket::new(self.burst, self.per_second))
            .try_take(now)
    }
}

/// Of a full map's buckets, the stalest this fraction goes when none has refilled.
const EVICTED_WHEN_FULL: usize = 8;

/// Frees places in a full map of buckets. Buckets back to their whole burst go first (a
/// fresh one is the same). If none is, the stalest eighth goes, handing those keys a fresh
/// burst: refusing new keys instead would let one client that rotates addresses lock
/// everyone else out. Either way one pass frees many places, so a stream of new keys (the
/// accept loop sees one per new client address) costs a pass per many keys, not one each.
fn make_room<K: Eq + Hash>(buckets: &mut HashMap<K, Bucket>, now: Instant) {
    buckets.retain(|_, bucket| !bucket.is_full(now));
    if buckets.len() < MAX_TRACKED_KEYS {
        return;
    }
    let mut updated: Vec<Instant> = buckets.values().map(|bucket| bucket.updated).collect();
    let eighth = updated.len() / EVICTED_WHEN_FULL;
    let (_, &mut newest_evicted, _) = updated.select_nth_unstable(eighth);
    buckets.retain(|_, bucket| bucket.updated > newest_evicted);
}

/// Buckets every node of a cluster shares (in Redis).
#[async_trait]
pub trait SharedBuckets: Send + Sync + 'static {
    /// Takes a token from bucket `key` of limit `name`, which holds `burst` and refills at
    /// `per_minute`; `false` when it is empty.
    async fn try_take(
        &self,
        name: &str,
        key: &str,
        burst: u32,
        per_minute: u32,
    ) -> anyhow::Result<bool>;
}

/// A per-key limit that holds across the nodes of a cluster when they share buckets, and on
/// this node alone otherwise. While the shared buckets cannot be reached, each node keeps
/// its own: the limit is then per node, never gone.
pub struct SharedLimiter<K> {
    name: &'static str,
    burst: u32,
    per_minute: u32,
    here: KeyedLimiter<K>,
    shared: Option<Arc<dyn SharedBuckets>>,
}

impl<K: Eq + Hash + Clone + Display> SharedLimiter<K> {
    /// `burst` actions at once per key, `per_minute` on average; `name` tells the limit's
    /// buckets apart from other limits' in the shared store.
    pub fn per_minute(
        name: &'static str,
        burst: u32,
        per_minute: u32,
        shared: Option<Arc<dyn SharedBuckets>>,
    ) -> Self {
        Self {
            name,
            burst,
            per_minute,
            here: KeyedLimiter::per_minute(burst, per_minute),
            shared,
        }
    }

    pub async fn try_take(&self, key: &K) -> bool {
        let allowed = self.take(key).await;
        if !allowed {
            crate::metrics::rate_limited(self.name);
        }
        allowed
    }

    async fn take(&self, key: &K) -> bool {
        let Some(shared) = &self.shared else {
            return self.here.try_take(key);
        };
        let key_text = key.to_string();
        let shared_take = shared.try_take(self.name, &key_text, self.burst, self.per_minute);
        match shared_take.await {
            Ok(allowed) => allowed,
            Err(err) => {
                tracing::debug!(%err, limit = self.name, "shared rate limit unreachable; limiting on this node");
                self.here.try_take(key)
            }
        }
    }
}

/// The address of the client behind a request: the peer's own, or, when the peer is one of
/// the `trusted` proxies, the last address in `X-Forwarded-For` that is not one of them.
/// Proxies append the address they received the request from, so entries before that are
/// the client's own word and could be forged.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|address| address.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|address| !trusted.contains(address))
        .unwrap_or(peer)
}

/// The key for rate limiting a client address: the address itself for IPv4, its /64 network
/// for IPv6 (one subscriber commonly holds a whole /64).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
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
    fn ipv6_clients_are_keyed_by_their_64_bit_network() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(other));
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(client_key(v4), v4);
    }

    #[test]
    fn behind_a_trusted_proxy_the_client_is_the_last_address_it_forwarded() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "6.6.6.6, 203.0.113.9".parse().unwrap());
        assert_eq!(
            client_address(proxy, &headers, &[proxy]).to_string(),
            "203.0.113.9",
            "the entry the proxy added, not the one the client sent"
        );
        let stranger: IpAddr = "198.51.100.4".parse().unwrap();
        assert_eq!(
            client_address(stranger, &headers, &[proxy]),
            stranger,
            "only a trusted proxy's word counts"
        );
        assert_eq!(client_address(proxy, &HeaderMap::new(), &[proxy]), proxy);
    }

    /// Fills `limiter` to its bound, key `k` taking its one action at `at(k)`.
    fn fill(limiter: &KeyedLimiter<usize>, at: impl Fn(usize) -> Instant) {
        for key in 0..MAX_TRACKED_KEYS {
            assert!(limiter.try_take_at(&key, at(key)));
        }
    }

    #[test]
    fn a_full_limiter_forgets_refilled_buckets_first() {
        // One action, refilled in a second.
        let limiter = KeyedLimiter::per_minute(1, 60);
        let start = Instant::now();
        let half = MAX_TRACKED_KEYS / 2;
        fill(&limiter, |key| {
            if key < half {
                start
            } else {
                start + Duration::from_millis(500)
            }
        });
        let later = start + Duration::from_millis(1200);
        assert!(
            limiter.try_take_at(&usize::MAX, later),
            "a new key has room"
        );
        assert_eq!(
            limiter.buckets.lock().unwrap().len(),
            half + 1,
            "the refilled half went, in one pass"
        );
        assert!(
            !limiter.try_take_at(&(MAX_TRACKED_KEYS - 1), later),
            "a key still refilling is remembered"
        );
    }

    #[test]
    fn a_full_limiter_of_busy_keys_forgets_the_stalest_eighth() {
        // Never refilled: no bucket is ever full again.
        let limiter = KeyedLimiter::per_minute(1, 0);
        let start = Instant::now();
        fill(&limiter, |key| start + Duration::from_millis(key as u64));
        let later = start + Duration::from_secs(100);
        assert!(limiter.try_take_at(&usize::MAX, later));
        let tracked = limiter.buckets.lock().unwrap().len();
        // The stalest eighth and one (through the one at the eighth's place) went; the new
        // key came.
        let evicted = MAX_TRACKED_KEYS / EVICTED_WHEN_FULL + 1;
        assert_eq!(tracked, MAX_TRACKED_KEYS - evicted + 1);
        assert!(
            limiter.try_take_at(&0, later),
            "the stalest key starts afresh"
        );
        assert!(
            !limiter.try_take_at(&(MAX_TRACKED_KEYS - 1), later),
            "the newest is still held to its limit"
        );
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
