//! Contract 003's channels under `/qf`: the short-lived token endpoint, and the sockets that
//! take its tokens. `PROTOCOL.md` has the close codes.
//!
//! Every socket checks its token before anything else: a missing, invalid or expired one
//! closes with 1008, so an unauthenticated caller learns nothing more. A socket also closes
//! with 1008 when the session its token came from expires.

pub mod notifications;
pub mod online;
pub mod party;
pub mod socket;

use axum::{
    extract::{FromRequestParts, Query, State},
    http::request::Parts,
    routing::{get, post},
    Json, Router,
};
use confab_shared::api::WsTokenResponse;
use serde::Deserialize;
use tokio::time::Instant;

use super::plain_ws::{self, close_code, Stop};
use crate::{
    auth::caller::{cookie, origin_allowed},
    auth::ws_token::WsTokenError,
    core::{hub::Inbox, now_ms, Connection, CoreError},
    rest::{ApiError, Caller},
    AppState,
};

/// The cookie that may carry a `/qf` token instead of the `token` query parameter.
pub const WS_TOKEN_COOKIE: &str = "confab_ws_token";

/// The close for a socket whose session (the JWT behind its token) has expired.
pub const SESSION_EXPIRED: Stop = Stop::Close(close_code::POLICY, "token expired");
/// The close for a socket whose user a moderator banned: in contract 003's no-reconnect set,
/// and not 1008, which means a bad token and only that.
pub const BANNED: Stop = Stop::Close(4003, "banned");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/qf/auth/ws-token", get(ws_token))
        .route("/qf/users/online/ws", get(online::socket))
        .route("/qf/users/online", get(online::list))
        .route(
            "/qf/users/online/{username}/ping",
            post(notifications::ping),
        )
        .route("/qf/notifications/ws", get(notifications::socket))
        .route("/qf/party", post(party::create))
        .route("/qf/party/join", post(party::join))
        .route("/qf/party/{id}", get(party::show))
        .route("/qf/party/{id}/ws", get(party::socket))
        .route("/qf/party/{id}/leave", post(party::leave))
        .route("/qf/party/{id}/ready", post(party::ready))
        .route("/qf/party/{id}/start", post(party::start))
        .route("/qf/party/{id}/phase", post(party::phase))
        .route("/qf/party/{id}/progress", post(party::progress))
        .route("/qf/party/{id}/complete", post(party::complete))
        .route("/qf/party/{id}/host-ping", post(party::host_ping))
}

/// The `token` query parameter of a `/qf` socket.
#[derive(Debug, Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// A `/qf` socket's token: the `token` query parameter, else the [`WS_TOKEN_COOKIE`]
/// cookie. The browser sends the cookie by itself, whichever site opened the socket, so it
/// counts only from an allowed Origin (`origin_allowed`); anything else is refused with 403
/// before the upgrade. A token in the query is the page's own, from any Origin.
pub struct SocketToken(Option<String>);

impl FromRequestParts<AppState> for SocketToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Query(query) = Query::<TokenQuery>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
        if query.token.is_some() {
            return Ok(Self(query.token));
        }
        let Some(token) = cookie(&parts.headers, WS_TOKEN_COOKIE) else {
            return Ok(Self(None));
        };
        if !origin_allowed(&parts.headers, &state.config().allowed_origins) {
            return Err(ApiError::Forbidden(format!(
                "the {WS_TOKEN_COOKIE} cookie is accepted from this site's pages and \
                 CONFAB_ALLOWED_ORIGINS only; send the token as ?token= instead"
            )));
        }
        Ok(Self(Some(token.to_owned())))
    }
}

/// Checks a socket's token and signs a new core connection in with it: the connection, its
/// inbox, and when its session ends. A bad token gives the 1008 close to send.
async fn authenticate_socket(
    state: &AppState,
    token: Option<&str>,
) -> Result<(Connection, Inbox, Instant), Stop> {
    let now_secs = now_ms() / 1000;
    let grant = state.ws_tokens().verify(token, now_secs).map_err(|err| {
        Stop::Close(
            close_code::POLICY,
            match err {
                WsTokenError::Missing => "missing token",
                WsTokenError::Invalid => "invalid token",
                WsTokenError::Expired => "token expired",
            },
        )
    })?;
    let core = state.core();
    let (conn, inbox) = core.connect();
    let admission = core.admit().await;
    match core.sign_in(&conn, grant.profile, &admission).await {
        Ok(user) => plain_ws::record_user(&user),
        Err(CoreError::Banned) => return Err(BANNED),
        Err(err) => return Err(socket::internal(err)),
    }
    let left = u64::try_from(grant.jwt_exp.saturating_sub(now_secs)).unwrap_or(0);
    let session_end =
        Instant::now() + std::time::Duration::from_secs(left.min(MAX_SESSION_WAIT_SECS));
    Ok((conn, inbox, session_end))
}

/// Sessions longer than this (a year) are treated as ending then, keeping timers in range.
const MAX_SESSION_WAIT_SECS: u64 = 365 * 24 * 60 * 60;

/// `GET /qf/auth/ws-token`: exchanges the caller's JWT (an `Authorization: Bearer` header, or
/// the session cookie) for a token that opens `/qf` sockets.
async fn ws_token(
    State(state): State<AppState>,
    Caller(identity): Caller,
) -> Json<WsTokenResponse> {
    let tokens = state.ws_tokens();
    Json(WsTokenResponse {
        token: tokens.issue(&identity, now_ms() / 1000),
        expires_in: tokens.ttl_secs(),
    })
}
