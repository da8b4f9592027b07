//! Party sessions over `/qf`: the REST calls that change a session, and
//! `/qf/party/{sessionId}/ws?context=lobby|game|other&token=…`, which sends a
//! `session_update` snapshot on connect and then the session's lifecycle events.

use axum::{
    extract::{rejection::JsonRejection, ws::Message, Path, Query, State, WebSocketUpgrade},
    http::{HeaderMap, StatusCode},
    response::Response,
    Json,
};
use confab_shared::channels::{self as wire, ChannelMessage};
use futures_util::StreamExt;
use serde::Deserialize;

use super::{authenticate_socket, ws_token_from, TokenQuery};
use crate::{
    core::{
        events::Event,
        now_ms,
        party::{PartyChange, PartyRefusal, PartyView, MIN_PARTY_PLAYERS},
        CoreError,
    },
    dialects::{
        plain_ws::{self, Stop},
        timefmt::iso8601_millis,
    },
    http::{caller::identify, error::ApiError},
    AppState,
};

/// Close codes of party sockets (after the token check, which closes with 1008). The first
/// two are in contract 003's no-reconnect set, so clients stop and show the error.
pub const CLOSE_UNKNOWN_SESSION: u16 = 4001;
pub const CLOSE_SESSION_ENDED: u16 = 4002;
pub const CLOSE_NOT_A_PLAYER: u16 = 4403;

pub async fn socket(
    ws: WebSocketUpgrade,
    Path(session_id): Path<String>,
    query: Query<TokenQuery>,
    headers: HeaderMap,
    State(state): State<AppState>,
) -> Response {
    let token = ws_token_from(&query, &headers);
    plain_ws::configure(ws).on_upgrade(move |socket| {
        let tracked = state.clone();
        async move { tracked.spawn_connection(serve(socket, state, token, session_id)) }
    })
}

async fn serve(
    socket: axum::extract::ws::WebSocket,
    state: AppState,
    token: Option<String>,
    session_id: String,
) {
    let (mut sink, mut stream) = socket.split();
    let (conn, mut inbox, session_end) = match authenticate_socket(&state, token.as_deref()).await {
        Ok(authenticated) => authenticated,
        Err(stop) => return plain_ws::finish(&mut sink, stop).await,
    };
    let core = state.core();
    let user_id = core.user(&conn).map(|u| u.user_id).unwrap_or_default();
    // Subscribe first, so nothing that happens while the snapshot is read is missed.
    core.watch_party(&conn, &session_id);
    let view = match core.party_for_socket(&user_id, &session_id).await {
        Ok(Ok(view)) => view,
        Ok(Err(refusal)) => {
            let stop = match refusal {
                PartyRefusal::Unknown => Stop::Close(CLOSE_UNKNOWN_SESSION, "session not found"),
                PartyRefusal::Ended => Stop::Close(CLOSE_SESSION_ENDED, "session ended"),
                PartyRefusal::NotAPlayer => {
                    Stop::Close(CLOSE_NOT_A_PLAYER, "not a player in this session")
                }
            };
            return plain_ws::finish(&mut sink, stop).await;
        }
        Err(err) => {
            err.log_if_internal();
            return plain_ws::finish(
                &mut sink,
                Stop::Close(axum::extract::ws::close_code::ERROR, "internal error"),
            )
            .await;
        }
    };
    let shutdown = state.shutdown_token().clone();
    let overflowed = inbox.overflowed.clone();
    let mut frames = vec![frame(ChannelMessage::SessionUpdate(session(&view)))];
    let stop = loop {
        if let Err(stop) = plain_ws::write(
            &mut sink,
            std::mem::take(&mut frames),
            &shutdown,
            &overflowed,
        )
        .await
        {
            break stop;
        }
        tokio::select! {
            () = shutdown.cancelled() => break Stop::SHUTDOWN,
            () = overflowed.cancelled() => break Stop::TOO_SLOW,
            () = tokio::time::sleep_until(session_end) => break super::SESSION_EXPIRED,
            delivery = inbox.queue.recv() => match delivery.as_deref().map(|d| &d.event) {
                Some(Event::Party { view, change }) => {
                    frames.extend(render(view, change).into_iter().map(frame));
                    if matches!(change, PartyChange::PlayerLeft { user_id: left } if *left == user_id) {
                        break Stop::Close(axum::extract::ws::close_code::NORMAL, "left the session");
                    }
                }
                Some(_) => {}
                None => break Stop::Gone,
            },
            frame = stream.next() => match frame {
                // The channel is server to client; anything a client sends is ignored.
                Some(Ok(Message::Close(_))) | None => break Stop::Gone,
                Some(Ok(_)) => {}
                Some(Err(err)) => break Stop::after_read_error(err),
            },
        }
    };
    // A socket closing because its user left still tells them so first.
    let _ = plain_ws::write(&mut sink, frames, &shutdown, &overflowed).await;
    plain_ws::finish(&mut sink, stop).await;
    drop(conn);
}

fn frame(message: ChannelMessage) -> String {
    serde_json::to_string(&message).expect("channel messages serialise")
}

/// The session as players see it.
pub fn session(view: &PartyView) -> wire::PartySession {
    wire::PartySession {
        session_id: view.party.id.clone(),
        code: view.party.code.clone(),
        host_id: view.party.host_id.clone(),
        phase: view.party.phase.clone(),
        min_players: MIN_PARTY_PLAYERS,
        max_players: view.party.max_players,
        players: view
            .players
            .iter()
            .map(|p| wire::PartyPlayer {
                user_id: p.user_id.clone(),
                username: p.username.clone(),
                ready: p.ready,
                is_host: p.user_id == view.party.host_id,
            })
            .collect(),
    }
}

fn render(view: &PartyView, change: &PartyChange) -> Vec<ChannelMessage> {
    let session_id = view.party.id.clone();
    let timestamp = iso8601_millis(now_ms());
    match change {
        PartyChange::PlayerJoined(player) => {
            let player = wire::PartyPlayer {
                user_id: player.user_id.clone(),
                username: player.username.clone(),
                ready: player.ready,
                is_host: player.user_id == view.party.host_id,
            };
            vec![ChannelMessage::PlayerJoined { session_id, player }]
        }
        PartyChange::PlayerLeft { user_id } => vec![
            ChannelMessage::PlayerLeft {
                session_id,
                user_id: user_id.clone(),
                host_id: view.party.host_id.clone(),
            },
            // The host may have changed, or the session ended: the snapshot says which.
            ChannelMessage::SessionUpdate(session(view)),
        ],
        PartyChange::PlayerReady { user_id, ready } => {
            vec![ChannelMessage::PlayerReady {
                session_id,
                user_id: user_id.clone(),
                ready: *ready,
            }]
        }
        PartyChange::PhaseTransition { from, to } => {
            vec![ChannelMessage::PhaseTransition {
                session_id,
                from: from.clone(),
                to: to.clone(),
                timestamp,
            }]
        }
        PartyChange::ProgressUpdate(progress) => vec![ChannelMessage::ProgressUpdate {
            session_id,
            progress: serde_json::from_str(progress).unwrap_or(serde_json::Value::Null),
            timestamp,
        }],
        PartyChange::SessionStarted => {
            vec![ChannelMessage::SessionStarted {
                session_id,
                phase: view.party.phase.clone(),
                timestamp,
            }]
        }
        PartyChange::SessionCompleted => vec![ChannelMessage::SessionCompleted {
            session_id,
            timestamp,
        }],
        PartyChange::HostPing {
            from_username,
            message,
        } => vec![ChannelMessage::HostPing {
            session_id,
            from_username: from_username.clone(),
            message: message.clone(),
            timestamp,
        }],
    }
}

// REST. Every call takes the user's JWT (bearer or cookie) and answers the session, or an
// error: 404 unknown session, 403 not a player or not the host, 409 not now, 400 bad input.

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateParty {
    #[serde(default)]
    max_players: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinParty {
    code: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    ready: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MovePhase {
    phase: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    progress: serde_json::Value,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct HostPing {
    #[serde(default)]
    message: Option<String>,
}

type Answer = Result<Json<wire::PartySession>, ApiError>;

/// `POST /qf/party` {max_players?}: a new session hosted by the caller.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<CreateParty>, JsonRejection>,
) -> Result<(StatusCode, Json<wire::PartySession>), ApiError> {
    let caller = identify(&state, &headers).await?;
    let request = optional_body(body)?;
    let view = state
        .core()
        .create_party(&caller.profile, request.max_players)
        .await
        .map_err(from_core)?;
    Ok((StatusCode::CREATED, Json(session(&view))))
}

/// `POST /qf/party/join` {code}.
pub async fn join(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<JoinParty>, JsonRejection>,
) -> Answer {
    let caller = identify(&state, &headers).await?;
    let Json(request) = body?;
    answer(
        state
            .core()
            .join_party(&caller.profile, request.code.trim())
            .await,
    )
}

/// `GET /qf/party/{id}`.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let caller = identify(&state, &headers).await?;
    answer(state.core().player_view(&caller.profile, &id).await)
}

/// `POST /qf/party/{id}/leave`: `204`.
pub async fn leave(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let caller = identify(&state, &headers).await?;
    state
        .core()
        .leave_party(&caller.profile, &id)
        .await
        .map_err(from_core)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /qf/party/{id}/ready` {ready}.
pub async fn ready(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<Ready>, JsonRejection>,
) -> Answer {
    let caller = identify(&state, &headers).await?;
    let Json(request) = body?;
    answer(
        state
            .core()
            .set_party_ready(&caller.profile, &id, request.ready)
            .await,
    )
}

/// `POST /qf/party/{id}/start`: host only, everyone ready, enough players.
pub async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let caller = identify(&state, &headers).await?;
    answer(state.core().start_party(&caller.profile, &id).await)
}

/// `POST /qf/party/{id}/phase` {phase}: host only, started sessions.
pub async fn phase(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<MovePhase>, JsonRejection>,
) -> Answer {
    let caller = identify(&state, &headers).await?;
    let Json(request) = body?;
    answer(
        state
            .core()
            .advance_party(&caller.profile, &id, &request.phase)
            .await,
    )
}

/// `POST /qf/party/{id}/progress` {progress}: host only; `204`.
pub async fn progress(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<Progress>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let caller = identify(&state, &headers).await?;
    let Json(request) = body?;
    state
        .core()
        .party_progress(&caller.profile, &id, &request.progress.to_string())
        .await
        .map_err(from_core)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /qf/party/{id}/complete`: host only.
pub async fn complete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let caller = identify(&state, &headers).await?;
    answer(state.core().complete_party(&caller.profile, &id).await)
}

/// `POST /qf/party/{id}/host-ping` {message?}: host only; `204`.
pub async fn host_ping(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<HostPing>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let caller = identify(&state, &headers).await?;
    let request = optional_body(body)?;
    state
        .core()
        .host_ping(&caller.profile, &id, request.message)
        .await
        .map_err(from_core)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A session as the calls answer it, or the core's refusal as an API error.
fn answer(outcome: Result<PartyView, CoreError>) -> Answer {
    outcome.map(|view| Json(session(&view))).map_err(from_core)
}

/// A JSON body that may be left out entirely.
fn optional_body<T: Default>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    match body {
        Ok(Json(request)) => Ok(request),
        Err(JsonRejection::MissingJsonContentType(_)) => Ok(T::default()),
        Err(rejection) => Err(rejection.into()),
    }
}

fn from_core(err: CoreError) -> ApiError {
    match err {
        CoreError::Internal(cause) => ApiError::Internal(cause.0),
        CoreError::NotFound => ApiError::NotFound("session not found".into()),
        CoreError::NotAMember => ApiError::Forbidden("not a player in this session".into()),
        CoreError::NotHost => ApiError::Forbidden(err.to_string()),
        CoreError::Conflict(text) => ApiError::Conflict(text),
        CoreError::NotSignedIn => ApiError::Unauthorized,
        other => ApiError::BadRequest(other.to_string()),
    }
}
