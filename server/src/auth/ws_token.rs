//! Short-lived tokens for the `/qf/*` sockets (contract 003).
//!
//! A token is `qf1.<payload>.<mac>`: base64url JSON naming the user and two expiries, and an
//! HMAC-SHA256 over it with a key derived from the server secret. It is not a JWT, so
//! nothing that accepts JWTs accepts it, and a JWT is not one; any node holding the secret
//! can check it without shared state.
//!
//! `exp` (the token's own, [`DEFAULT_TTL_SECS`] after issue) bounds when a socket may be
//! opened with it; `jwt_exp` (the exp of the JWT it was exchanged for) bounds how long
//! such a socket stays open.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{Identity, EXPIRY_LEEWAY_SECS};
use crate::core::model::Profile;

/// How long a token may be used to open a socket, unless configured otherwise.
pub const DEFAULT_TTL_SECS: u64 = 60;
/// Longest token accepted, in bytes (a bound on work done for garbage input).
pub const MAX_TOKEN_BYTES: usize = 2048;

const PREFIX: &str = "qf1";
/// Separates this key from every other use of the server secret.
const KEY_CONTEXT: &[u8] = b"confab/qf-ws-token/v1";

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    sub: String,
    username: String,
    image_url: String,
    /// Unix seconds: the token opens no socket after this.
    exp: i64,
    /// Unix seconds: a socket opened with it closes then.
    jwt_exp: i64,
}

/// Why a token was refused; the text is the close reason sent with 1008.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WsTokenError {
    #[error("missing token")]
    Missing,
    #[error("invalid token")]
    Invalid,
    #[error("token expired")]
    Expired,
}

/// A verified token: who, and until when their socket may stay open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsGrant {
    pub profile: Profile,
    pub jwt_exp: i64,
}

pub struct WsTokens {
    key: Vec<u8>,
    ttl_secs: u64,
}

impl WsTokens {
    pub fn new(secret: &[u8], ttl_secs: u64) -> Self {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(KEY_CONTEXT);
        Self {
            key: mac.finalize().into_bytes().to_vec(),
            ttl_secs,
        }
    }

    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// A token for the holder of `identity`, valid for the configured TTL (never past the
    /// identity's own expiry).
    pub fn issue(&self, identity: &Identity, now_secs: i64) -> String {
        let ttl = i64::try_from(self.ttl_secs).unwrap_or(i64::MAX);
        let payload = Payload {
            sub: identity.profile.user_id.clone(),
            username: identity.profile.username.clone(),
            image_url: identity.profile.image_url.clone(),
            exp: now_secs.saturating_add(ttl).min(identity.expires_at),
            jwt_exp: identity.expires_at,
        };
        self.sign(&serde_json::to_vec(&payload).expect("payload serialises"))
    }

    /// A token whose body is `payload` as it is, under this key. [`WsTokens::issue`] makes
    /// a person's token; this takes any bytes, so that tests and the fuzzer can see what
    /// [`WsTokens::verify`] makes of a payload that a valid MAC covers.
    pub fn sign(&self, payload: &[u8]) -> String {
        let body = URL_SAFE_NO_PAD.encode(payload);
        let signed = format!("{PREFIX}.{body}");
        let tag = URL_SAFE_NO_PAD.encode(self.mac(signed.as_bytes()).finalize().into_bytes());
        format!("{signed}.{tag}")
    }

    /// Checks the MAC and the token's expiry.
    pub fn verify(&self, token: Option<&str>, now_secs: i64) -> Result<WsGrant, WsTokenError> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or(WsTokenError::Missing)?;
        if token.len() > MAX_TOKEN_BYTES {
            return Err(WsTokenError::Invalid);
        }
        let (signed, tag) = token.rsplit_once('.').ok_or(WsTokenError::Invalid)?;
        let body = signed.strip_prefix("qf1.").ok_or(WsTokenError::Invalid)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| WsTokenError::Invalid)?;
        self.mac(signed.as_bytes())
            .verify_slice(&tag)
            .map_err(|_| WsTokenError::Invalid)?;
        let payload: Payload = URL_SAFE_NO_PAD
            .decode(body)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or(WsTokenError::Invalid)?;
        let leeway = i64::try_from(EXPIRY_LEEWAY_SECS).unwrap_or(0);
        if payload.exp.saturating_add(leeway) < now_secs {
            return Err(WsTokenError::Expired);
        }
        Ok(WsGrant {
            profile: Profile {
                user_id: payload.sub,
                username: payload.username,
                image_url: payload.image_url,
                email: String::new(),
            },
            jwt_exp: payload.jwt_exp,
        })
    }

    fn mac(&self, data: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(data);
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(expires_at: i64) -> Identity {
        Identity {
            profile: Profile {
                user_id: "u1".into(),
                username: "Ana".into(),
                image_url: "https://img/a.png".into(),
                email: "a@example.com".into(),
            },
            issuer: "confab".into(),
            expires_at,
        }
    }

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn a_token_round_trips_until_it_expires() {
        let tokens = WsTokens::new(b"0123456789abcdef0123456789abcdef", 60);
        let token = tokens.issue(&identity(NOW + 3600), NOW);
        assert!(token.starts_with("qf1."));
        let grant = tokens.verify(Some(&token), NOW + 60).unwrap();
        assert_eq!(
            (
                grant.profile.user_id.as_str(),
                grant.profile.username.as_str()
            ),
            ("u1", "Ana")
        );
        assert_eq!(grant.jwt_exp, NOW + 3600);
        assert_eq!(
            tokens.verify(Some(&token), NOW + 60 + 3),
            Err(WsTokenError::Expired)
        );
    }

    #[test]
    fn a_token_never_outlives_the_identity_it_came_from() {
        let tokens = WsTokens::new(b"0123456789abcdef0123456789abcdef", 60);
        let token = tokens.issue(&identity(NOW + 10), NOW);
        assert_eq!(
            tokens.verify(Some(&token), NOW + 13),
            Err(WsTokenError::Expired)
        );
    }

    #[test]
    fn tampered_foreign_and_malformed_tokens_are_refused() {
        let tokens = WsTokens::new(b"0123456789abcdef0123456789abcdef", 60);
        let other = WsTokens::new(b"another secret, another server!!", 60);
        let token = tokens.issue(&identity(NOW + 3600), NOW);
        assert_eq!(other.verify(Some(&token), NOW), Err(WsTokenError::Invalid));
        let (signed, _) = token.rsplit_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"admin","username":"x","image_url":"","exp":9999999999,"jwt_exp":9999999999}"#);
        let forged = format!("qf1.{forged_payload}.{}", token.rsplit_once('.').unwrap().1);
        for bad in [
            forged.as_str(),
            signed,
            "qf1..",
            "not-a-token",
            "a.b.c",
            &"x".repeat(MAX_TOKEN_BYTES + 1),
        ] {
            assert_eq!(
                tokens.verify(Some(bad), NOW),
                Err(WsTokenError::Invalid),
                "{bad}"
            );
        }
        assert_eq!(tokens.verify(None, NOW), Err(WsTokenError::Missing));
        assert_eq!(tokens.verify(Some(""), NOW), Err(WsTokenError::Missing));
    }

    #[test]
    fn a_validly_signed_payload_that_is_not_a_grant_is_refused() {
        let tokens = WsTokens::new(b"0123456789abcdef0123456789abcdef", 60);
        for payload in [
            &b""[..],
            b"\xff\xfe",
            b"null",
            b"[]",
            br#"{"sub":"ana"}"#,
            br#"{"sub":"ana","username":"a","image_url":"","exp":"soon","jwt_exp":1}"#,
        ] {
            assert_eq!(
                tokens.verify(Some(&tokens.sign(payload)), NOW),
                Err(WsTokenError::Invalid),
                "{}",
                String::from_utf8_lossy(payload)
            );
        }
        let grant = br#"{"sub":"ana","username":"a","image_url":"","exp":1,"jwt_exp":1}"#;
        assert_eq!(
            tokens.verify(Some(&tokens.sign(grant)), NOW),
            Err(WsTokenError::Expired)
        );
    }
}
