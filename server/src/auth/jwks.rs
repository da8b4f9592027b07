//! Public keys from a JWKS document (a file or a URL), cached and fetched again when a token
//! names a key id the cache does not have (the issuer rotated its keys), at most once per
//! refresh interval (`CONFAB_JWKS_REFRESH`, 30 s by default).
//!
//! A fetch that fails (an error, or no answer within [`FETCH_TIMEOUT`]) is tried again
//! after [`FIRST_RETRY`], doubling with each failure up to the refresh interval, and the
//! keys last fetched keep verifying tokens meanwhile: an identity provider that is down or
//! slow for a moment neither locks sign-in out for the refresh interval nor drops keys that
//! were good.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::RwLock,
    time::{Duration, Instant},
};

use jsonwebtoken::{jwk::JwkSet, Algorithm, DecodingKey};
use tokio::sync::Mutex;

/// How long a fetch from a URL may take; a sign-in with an unknown key waits for it.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// The wait before trying again after a failed fetch; it doubles with each failure in a
/// row, up to the refresh interval.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub enum JwksSource {
    File(PathBuf),
    Url(String),
}

impl JwksSource {
    /// `http(s)://…` is a URL; anything else a file path.
    pub fn parse(text: &str) -> Self {
        if text.starts_with("http://") || text.starts_with("https://") {
            Self::Url(text.to_owned())
        } else {
            Self::File(PathBuf::from(text))
        }
    }
}

/// How long fetched keys are trusted before the set is fetched again, so a key the issuer
/// removed stops being accepted.
pub const MAX_KEY_AGE: Duration = Duration::from_secs(60 * 60);

pub struct Jwks {
    source: JwksSource,
    min_refresh: Duration,
    /// Read on every verification; written only after a fetch.
    cache: RwLock<Cache>,
    /// Held while fetching, so one fetch runs at a time and lookups of cached keys never
    /// wait for the network.
    fetching: Mutex<()>,
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, (Option<Algorithm>, DecodingKey)>,
    /// When `keys` were fetched.
    fetched_at: Option<Instant>,
    /// When a fetch was last tried, and how many in a row have failed since one succeeded.
    tried_at: Option<Instant>,
    failures: u32,
}

impl Cache {
    fn lookup(&self, kid: &str, alg: Algorithm) -> Option<DecodingKey> {
        let (key_alg, key) = self.keys.get(kid)?;
        key_alg
            .is_none_or(|key_alg| key_alg == alg)
            .then(|| key.clone())
    }

    fn fresh(&self) -> bool {
        self.fetched_at.is_some_and(|at| at.elapsed() < MAX_KEY_AGE)
    }

    /// Whether a fetch may be tried now: once per `min_refresh` after one that succeeded,
    /// and after failures with a doubling wait from [`FIRST_RETRY`] up to `min_refresh`.
    fn may_fetch(&self, min_refresh: Duration) -> bool {
        let Some(tried_at) = self.tried_at else {
            return true;
        };
        let wait = if self.failures == 0 {
            min_refresh
        } else {
            let doublings = self.failures.saturating_sub(1).min(16);
            FIRST_RETRY
                .saturating_mul(1 << doublings)
                .min(min_refresh.max(FIRST_RETRY))
        };
        tried_at.elapsed() >= wait
    }

    /// A fresh key, or `None` when the key must be fetched (or cannot be yet).
    fn fresh_key(&self, kid: &str, alg: Algorithm) -> Option<DecodingKey> {
        self.lookup(kid, alg).filter(|_| self.fresh())
    }
}

impl Jwks {
    /// Keys from `source`, fetched at most once per `min_refresh`.
    pub fn new(source: JwksSource, min_refresh: Duration) -> Self {
        Self {
            source,
            min_refresh,
            cache: RwLock::default(),
            fetching: Mutex::new(()),
        }
    }

    /// The key `kid`, if the key set has it for `alg`. A key last fetched more than
    /// [`MAX_KEY_AGE`] ago is fetched again first, and still used while fetching fails.
    pub async fn key(&self, kid: &str, alg: Algorithm) -> Option<DecodingKey> {
        if let Some(answer) = self.cached(kid, alg) {
            return answer;
        }
        let _fetching = self.fetching.lock().await;
        // Another lookup may have fetched while this one waited.
        if let Some(answer) = self.cached(kid, alg) {
            return answer;
        }
        let fetched = self.fetch().await;
        let mut cache = crate::write(&self.cache);
        let now = Instant::now();
        cache.tried_at = Some(now);
        let outcome = if fetched.is_ok() { "ok" } else { "failed" };
        metrics::counter!(crate::metrics::JWKS_REFRESHES, "outcome" => outcome).increment(1);
        match fetched {
            Ok(keys) => {
                cache.keys = keys;
                cache.fetched_at = Some(now);
                cache.failures = 0;
            }
            Err(err) => {
                cache.failures = cache.failures.saturating_add(1);
                tracing::warn!(
                    error = %err,
                    failures = cache.failures,
                    "cannot load the JWKS; keeping the keys fetched before"
                );
            }
        }
        cache.lookup(kid, alg)
    }

    /// The cache's answer when it needs no fetch: a fresh key, or what it holds while the
    /// next fetch must wait. `None` when a fetch is due.
    fn cached(&self, kid: &str, alg: Algorithm) -> Option<Option<DecodingKey>> {
        let cache = crate::read(&self.cache);
        if let Some(key) = cache.fresh_key(kid, alg) {
            return Some(Some(key));
        }
        (!cache.may_fetch(self.min_refresh)).then(|| cache.lookup(kid, alg))
    }

    async fn fetch(&self) -> anyhow::Result<HashMap<String, (Option<Algorithm>, DecodingKey)>> {
        let text = match &self.source {
            JwksSource::File(path) => tokio::fs::read_to_string(path).await?,
            JwksSource::Url(url) => {
                reqwest::Client::builder()
                    .timeout(FETCH_TIMEOUT)
                    .build()?
                    .get(url)
                    .send()
                    .await?
                    .error_for_status()?
                    .text()
                    .await?
            }
        };
        let set: JwkSet = serde_json::from_str(&text)?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            let alg = jwk
                .common
                .key_algorithm
                .and_then(|alg| alg.to_string().parse::<Algorithm>().ok());
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => {
                    keys.insert(kid, (alg, key));
                }
                Err(err) => tracing::warn!(%kid, error = %err, "skipping an unusable JWKS key"),
            }
        }
        Ok(keys)
    }
}
