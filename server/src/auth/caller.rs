//! Who is calling an HTTP endpoint: a JWT as `Authorization: Bearer`, or (for other
//! backends) the service key; and whether a request's Origin may use the one credential a
//! browser adds by itself, the `/qf` token cookie.
//!
//! No JWT is read from a cookie: no contract needs it, and a cookie is sent by the browser
//! on requests any site starts (cross-site request forgery, WebSocket hijacking).

use axum::http::{header, HeaderMap};

use super::Identity;
use crate::{rest::ApiError, AppState};

/// The verified identity of a caller presenting a JWT; `401` otherwise, `403` for a banned
/// user.
pub async fn identify(state: &AppState, headers: &HeaderMap) -> Result<Identity, ApiError> {
    let jwt = jwt_from_headers(headers).ok_or(ApiError::Unauthorized)?;
    let identity = state
        .verifier()
        .verify(jwt)
        .await
        .map_err(|_| ApiError::Unauthorized)?;
    state
        .core()
        .check_not_banned(&identity.profile.user_id)
        .await?;
    Ok(identity)
}

/// Checks the service key (`Authorization: Bearer <key>` or `X-Api-Key: <key>`) against
/// `CONFAB_API_KEY`. Without a configured key, publishing is off: `403`.
pub fn require_service_key(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = state.config().api_key.as_deref() else {
        return Err(ApiError::Forbidden(
            "publishing is disabled: CONFAB_API_KEY is not set".into(),
        ));
    };
    let given = bearer_token(headers)
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .ok_or(ApiError::Unauthorized)?;
    if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// The caller's JWT: `Authorization: Bearer`.
pub fn jwt_from_headers(headers: &HeaderMap) -> Option<&str> {
    bearer_token(headers)
}

/// Whether a request's `Origin` may use a credential the browser adds by itself: no
/// `Origin` (not sent by a web page), the server's own (the `Host` it was sent to), or one
/// of `allowed` (`*` allows any).
pub fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let origin = origin.trim_end_matches('/');
    let listed =
        |entry: &String| entry == "*" || entry.trim_end_matches('/').eq_ignore_ascii_case(origin);
    if allowed.iter().any(listed) {
        return true;
    }
    let authority = origin.split_once("://").map(|(_, authority)| authority);
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    matches!((authority, host), (Some(authority), Some(host)) if authority.eq_ignore_ascii_case(host))
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The value of cookie `name`, if present and not empty.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// Compares without an early exit, so the time taken does not reveal how much matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}
