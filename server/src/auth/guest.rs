//! `POST /api/auth/guest` {username, imageUrl?} → {token, userId, exp}: tokens for people
//! without an identity provider. Names are validated; requests are rate limited per client
//! IP address (behind `--trusted-proxies`, the address they forward).

use std::net::SocketAddr;

use axum::{
    extract::{rejection::JsonRejection, ConnectInfo, State},
    http::HeaderMap,
    Json,
};
use confab_shared::{
    api::{GuestRequest, GuestResponse},
    limits,
};
use jsonwebtoken::{encode, Header};
use serde::Serialize;

use super::GUEST_ISSUER;
use crate::{
    core::now_ms,
    ratelimit::{client_address, client_key},
    rest::ApiError,
    AppState,
};

/// Guest tokens one IP address may get at once, and per minute on average.
pub const GUEST_TOKENS_BURST: u32 = 10;
pub const GUEST_TOKENS_PER_MINUTE: u32 = 10;

#[derive(Serialize)]
struct GuestClaims<'a> {
    sub: &'a str,
    iss: &'static str,
    iat: i64,
    exp: i64,
    username: &'a str,
    image_url: &'a str,
}

pub async fn issue(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    request: Result<Json<GuestRequest>, JsonRejection>,
) -> Result<Json<GuestResponse>, ApiError> {
    let trusted = &state.config().trusted_proxies;
    let client = client_key(client_address(peer.ip(), &headers, trusted));
    if !state.guest_limiter().try_take(&client).await {
        return Err(ApiError::RateLimited);
    }
    let Json(request) = request?;
    let username =
        limits::validate_username(&request.username).map_err(|e| ApiError::BadRequest(e.into()))?;
    let image_url = request
        .image_url
        .as_deref()
        .map(str::trim)
        .unwrap_or_default();
    validate_image_url(image_url)?;

    let user_id = format!("guest_{}", uuid::Uuid::new_v4().simple());
    let now = now_ms() / 1000;
    let exp = now + i64::try_from(state.config().guest_token_ttl_secs).unwrap_or(i64::MAX / 2);
    let claims = GuestClaims {
        sub: &user_id,
        iss: GUEST_ISSUER,
        iat: now,
        exp,
        username,
        image_url,
    };
    let token = encode(&Header::default(), &claims, state.verifier().signing_key())
        .map_err(|err| ApiError::Internal(err.into()))?;
    Ok(Json(GuestResponse {
        token,
        user_id,
        exp,
    }))
}

/// Empty, or an `http(s)` URL of at most [`limits::MAX_IMAGE_URL_BYTES`].
pub fn validate_image_url(url: &str) -> Result<(), ApiError> {
    if url.is_empty() || super::is_safe_image_url(url) {
        return Ok(());
    }
    if url.len() > limits::MAX_IMAGE_URL_BYTES {
        return Err(ApiError::BadRequest("imageUrl is too long".into()));
    }
    Err(ApiError::BadRequest(
        "imageUrl must be an http(s) URL".into(),
    ))
}
