//! Public keys from a JWKS document (a file or a URL), cached and fetched again when a token
//! names a key id the cache does not have (the issuer rotated its keys), at most once per
//! refresh interval (`CONFAB_JWKS_REFRESH`, 30 s by default).

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::RwLock,
    time::{Duration, Instant},
};

use jsonwebtoken::{jwk::JwkSet, Algorithm, DecodingKey};
use tokio::sync::Mutex;

/// How long a fetch from a URL may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

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
    fetched_at: Option<Instant>,
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

    fn may_refetch(&self, min_refresh: Duration) -> bool {
        self.fetched_at.is_none_or(|at| at.elapsed() >= min_refresh)
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

    /// The key `kid`, if the key set has it for `alg`.
    pub async fn key(&self, kid: &str, alg: Algorithm) -> Option<DecodingKey> {
        {
            let cache = self.read();
            if cache.fresh() {
                if let Some(key) = cache.lookup(kid, alg) {
                    return Some(key);
                }
            }
            if !cache.may_refetch(self.min_refresh) && cache.fresh() {
                return None;
            }
        }
        let _fetching = self.fetching.lock().await;
        // Another lookup may have fetched while this one waited.
        if let Some(key) = self.read().lookup(kid, alg).filter(|_| self.read().fresh()) {
            return Some(key);
        }
        if self.read().may_refetch(self.min_refresh) || !self.read().fresh() {
            let fetched = self.fetch().await;
            let mut cache = self
                .cache
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match fetched {
                Ok(keys) => cache.keys = keys,
                Err(err) => tracing::warn!(error = %err, "cannot load the JWKS"),
            }
            cache.fetched_at = Some(Instant::now());
        }
        self.read().lookup(kid, alg)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Cache> {
        self.cache
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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
