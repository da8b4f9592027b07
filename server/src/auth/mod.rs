//! Token verification and Confab's own guest tokens.
//!
//! Accepted: HS256 tokens signed with the server's secret (its own guest tokens, and tokens
//! another backend signs with the shared secret), and RS256/ES256 tokens whose key is in the
//! configured JWKS (Clerk-style identity providers). `exp` is required and `nbf` honoured.
//! When an issuer is configured, `iss` must match it, and when an audience is, `aud` must
//! name it; guest tokens carry [`GUEST_ISSUER`] and no audience, and are accepted alongside.

pub mod caller;
pub mod guest;
pub mod jwks;
pub mod ws_token;

use std::{path::Path, time::Duration};

use anyhow::Context;
use confab_shared::limits;
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
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token issuer not accepted")]
    WrongIssuer,
    #[error("token audience not accepted")]
    WrongAudience,
    #[error("userId does not match the token")]
    UserMismatch,
}

impl AuthError {
    /// Counts the refusal in `confab_auth_failures_total`.
    pub fn count(&self) {
        let reason = match self {
            Self::Expired => "expired",
            Self::Invalid => "invalid",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::UserMismatch => "user_mismatch",
        };
        metrics::counter!(crate::metrics::AUTH_FAILURES, "reason" => reason).increment(1);
    }
}

/// Longest email kept from a token, in characters.
const MAX_EMAIL_CHARS: usize = 254;

/// Names from identity providers are shown to everyone: trimmed, without control
/// characters, and cut to the display-name limit.
pub fn sanitize_username(name: &str) -> String {
    name.trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(limits::MAX_USERNAME_CHARS)
        .collect()
}

/// An avatar URL others' browsers will load: `http(s)` only, bounded, no control characters.
pub fn is_safe_image_url(url: &str) -> bool {
    url.len() <= limits::MAX_IMAGE_URL_BYTES
        && (url.starts_with("https://") || url.starts_with("http://"))
        && !url.chars().any(char::is_control)
}

/// The claims Confab reads. Profile fields fall back across the names identity providers
/// use for them.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    iss: Option<String>,
    aud: Option<Audience>,
    username: Option<String>,
    name: Option<String>,
    preferred_username: Option<String>,
    image_url: Option<String>,
    picture: Option<String>,
    email: Option<String>,
}

/// `aud`: one audience or several (RFC 7519 section 4.1.3).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn names(&self, audience: &str) -> bool {
        match self {
            Self::One(one) => one == audience,
            Self::Many(many) => many.iter().any(|one| one == audience),
        }
    }
}

impl Claims {
    fn into_identity(self) -> Identity {
        let username = self
            .username
            .or(self.name)
            .or(self.preferred_username)
            .unwrap_or_default();
        let image_url = self.image_url.or(self.picture).unwrap_or_default();
        let email = self.email.unwrap_or_default();
        Identity {
            profile: Profile {
                username: sanitize_username(&username),
                image_url: if is_safe_image_url(&image_url) {
                    image_url
                } else {
                    String::new()
                },
                email: email
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_EMAIL_CHARS)
                    .collect(),
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
    audience: Option<String>,
    jwks: Option<jwks::Jwks>,
}

impl Verifier {
    /// `jwks` keys are fetched again at most once per `jwks_refresh`.
    pub fn new(
        secret: &[u8],
        issuer: Option<String>,
        audience: Option<String>,
        jwks: Option<JwksSource>,
        jwks_refresh: Duration,
    ) -> Self {
        Self {
            secret: DecodingKey::from_secret(secret),
            encoding: EncodingKey::from_secret(secret),
            issuer,
            audience,
            jwks: jwks.map(|source| jwks::Jwks::new(source, jwks_refresh)),
        }
    }

    /// The key guest tokens are signed with.
    pub fn signing_key(&self) -> &EncodingKey {
        &self.encoding
    }

    /// Verifies signature, expiry, not-before, issuer and audience.
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let verified = self.check(token).await;
        if let Err(err) = &verified {
            err.count();
        }
        verified
    }

    async fn check(&self, token: &str) -> Result<Identity, AuthError> {
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
        // The audience is checked below, where guest tokens (which have none) are known.
        validation.validate_aud = false;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let claims = decode::<Claims>(token, &key, &validation)
            .map_err(|err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                jsonwebtoken::errors::ErrorKind::ImmatureSignature => AuthError::NotYetValid,
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
        if let Some(audience) = &self.audience {
            if !is_guest && !claims.aud.as_ref().is_some_and(|aud| aud.names(audience)) {
                return Err(AuthError::WrongAudience);
            }
        }
        Ok(claims.into_identity())
    }
}

/// The least length of an HS256 secret, configured or kept on disk.
pub const MIN_SECRET_BYTES: usize = 32;

/// The HS256 secret: the configured one, else one generated on first start and kept in the
/// data directory so tokens survive restarts.
pub fn load_or_create_secret(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = configured {
        anyhow::ensure!(
            secret.len() >= MIN_SECRET_BYTES,
            "CONFAB_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes"
        );
        return Ok(secret.as_bytes().to_vec());
    }
    let path = data_dir.join("jwt-secret");
    match std::fs::read_to_string(&path) {
        Ok(secret) => {
            let secret = secret.trim();
            anyhow::ensure!(
                secret.len() >= MIN_SECRET_BYTES,
                "{} holds a secret shorter than {MIN_SECRET_BYTES} bytes; delete it to generate a new one",
                path.display()
            );
            return Ok(secret.as_bytes().to_vec());
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
    let secret: String = {
        use rand::Rng;
        let bytes: [u8; 32] = rand::rng().random();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    };
    write_private_atomically(&path, &secret)
        .with_context(|| format!("cannot write {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated a token secret");
    Ok(secret.into_bytes())
}

/// Writes `contents` to a private temporary file and renames it into place, so a crash never
/// leaves a partial secret behind.
fn write_private_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let temporary = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}
