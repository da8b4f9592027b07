//! Public keys from a JWKS document (a file or a URL), cached and fetched again when a token
//! names a key id the cache does not have (the issuer rotated its keys), at most once per
//! refresh interval (`CONFAB_JWKS_REFRESH`, 30 s by default).

use std::{
    collections::HashMap,
    path::PathBuf,
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

pub struct Jwks {
    source: JwksSource,
    min_refresh: Duration,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, (Option<Algorithm>, DecodingKey)>,
    fetched_at: Option<Instant>,
}

impl Jwks {
    /// Keys from `source`, fetched at most once per `min_refresh`.
    pub fn new(source: JwksSource, min_refresh: Duration) -> Self {
        Self {
            source,
            min_refresh,
            cache: Mutex::default(),
        }
    }

    /// The key `kid`, if the key set has it for `alg`.
    pub async fn key(&self, kid: &str, alg: Algorithm) -> Option<DecodingKey> {
        let mut cache = self.cache.lock().await;
        let stale = cache
            .fetched_at
            .is_none_or(|at| at.elapsed() >= self.min_refresh);
        if !cache.keys.contains_key(kid) && stale {
            match self.fetch().await {
                Ok(keys) => cache.keys = keys,
                Err(err) => tracing::warn!(error = %err, "cannot load the JWKS"),
            }
            cache.fetched_at = Some(Instant::now());
        }
        let (key_alg, key) = cache.keys.get(kid)?;
        key_alg
            .is_none_or(|key_alg| key_alg == alg)
            .then(|| key.clone())
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
