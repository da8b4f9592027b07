//! Token verification and Confab's own guest tokens.
//!
//! Accepted: HS256 tokens signed with the server's secret (its own guest tokens, and tokens
//! another backend signs with the shared secret), and RS256/ES256 tokens whose key is in the
//! configured JWKS (Clerk-style identity providers). When an issuer is configured, `iss` must
//! match it; guest tokens carry [`GUEST_ISSUER`] and are accepted alongside.

pub mod guest;
mod jwks;

use std::{path::Path, time::Duration};

use anyhow::Context;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, EncodingKey, Validation};
use serde::Deserialize;

pub use jwks::JwksSource;

use crate::core::model::Profile;

/// The `iss` of the guest tokens this server issues.
pub const GUEST_ISSUER: &str = "confab";
/// How far past `exp` a token still passes, for clock skew between issuer and server.
pub const EXPIRY_LEEWAY_SECS: u64 = 2;

/// A verified token: who it names and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub profile: Profile,
    /// `iss`, or empty when the token has none.
    pub issuer: String,
    /// `exp`, Unix seconds: the session ends then.
    pub expires_at: i64,
}

/// Why a token was refused. The texts are safe to show clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("token expired")]
    Expired,
    #[error("invalid token")]
    Invalid,
    #[error("token issuer not accepted")]
    WrongIssuer,
    #[error("userId does not match the token")]
    UserMismatch,
}

/// The claims Confab reads. Profile fields fall back across the names identity providers
/// use for them.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(default)]
    image_url: Option<String>,
    #[serde(default)]
    picture: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

impl Claims {
    fn into_identity(self) -> Identity {
        Identity {
            profile: Profile {
                username: self
                    .username
                    .or(self.name)
                    .or(self.preferred_username)
                    .unwrap_or_default(),
                image_url: self.image_url.or(self.picture).unwrap_or_default(),
                email: self.email.unwrap_or_default(),
                user_id: self.sub,
            },
            issuer: self.iss.unwrap_or_default(),
            expires_at: self.exp,
        }
    }
}

pub struct Verifier {
    secret: DecodingKey,
    encoding: EncodingKey,
    issuer: Option<String>,
    jwks: Option<jwks::Jwks>,
}

impl Verifier {
    /// `jwks` keys are fetched again at most once per `jwks_refresh`.
    pub fn new(
        secret: &[u8],
        issuer: Option<String>,
        jwks: Option<JwksSource>,
        jwks_refresh: Duration,
    ) -> Self {
        Self {
            secret: DecodingKey::from_secret(secret),
            encoding: EncodingKey::from_secret(secret),
            issuer,
            jwks: jwks.map(|source| jwks::Jwks::new(source, jwks_refresh)),
        }
    }

    /// The key guest tokens are signed with.
    pub fn signing_key(&self) -> &EncodingKey {
        &self.encoding
    }

    /// Verifies signature, expiry and issuer.
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let header = decode_header(token).map_err(|_| AuthError::Invalid)?;
        let (key, allowed_guest) = match header.alg {
            Algorithm::HS256 => (self.secret.clone(), true),
            Algorithm::RS256 | Algorithm::ES256 => {
                let jwks = self.jwks.as_ref().ok_or(AuthError::Invalid)?;
                let kid = header.kid.as_deref().ok_or(AuthError::Invalid)?;
                (
                    jwks.key(kid, header.alg).await.ok_or(AuthError::Invalid)?,
                    false,
                )
            }
            _ => return Err(AuthError::Invalid),
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = EXPIRY_LEEWAY_SECS;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let claims = decode::<Claims>(token, &key, &validation)
            .map_err(|err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid,
            })?
            .claims;
        if claims.sub.is_empty() {
            return Err(AuthError::Invalid);
        }
        let is_guest = allowed_guest && claims.iss.as_deref() == Some(GUEST_ISSUER);
        if let Some(issuer) = &self.issuer {
            if !is_guest && claims.iss.as_deref() != Some(issuer.as_str()) {
                return Err(AuthError::WrongIssuer);
            }
        }
        Ok(claims.into_identity())
    }
}

/// The HS256 secret: the configured one, else one generated on first start and kept in the
/// data directory so tokens survive restarts.
pub fn load_or_create_secret(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = configured {
        anyhow::ensure!(
            secret.len() >= 32,
            "CONFAB_JWT_SECRET must be at least 32 bytes"
        );
        return Ok(secret.as_bytes().to_vec());
    }
    let path = data_dir.join("jwt-secret");
    if let Ok(secret) = std::fs::read_to_string(&path) {
        return Ok(secret.trim().as_bytes().to_vec());
    }
    let secret: String = {
        use rand::Rng;
        let bytes: [u8; 32] = rand::rng().random();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    };
    write_private(&path, &secret).with_context(|| format!("cannot write {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated a token secret");
    Ok(secret.into_bytes())
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}
