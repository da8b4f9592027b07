//! Party sessions over `/qf`: the REST calls that change a session, and
//! `/qf/party/{sessionId}/ws?context=lobby|game|other&token=…`, which sends a
//! `session_update` snapshot on connect and then the session's lifecycle events.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
    Json,
};
use confab_shared::channels::{self as wire, ChannelMessage};
use serde::Deserialize;

use super::{
    socket::{self, frame, internal, Channel, INTERNAL_ERROR},
    SocketToken,
};
use crate::dialects::plain_ws::close_code;
use crate::{
    core::{
        events::Event,
        now_ms,
        party::{PartyChange, PartyView, MIN_PARTY_PLAYERS},
        Connection, Core, CoreError,
    },
    dialects::{direct_ws::Upgrade, plain_ws::Stop},
    rest::{ApiError, Caller, JsonBody, OptionalJsonBody},
    timefmt::iso8601_millis,
    AppState,
};

/// Close codes of party sockets (after the token check, which closes with 1008). The first
/// two are in contract 003's no-reconnect set, so clients stop and show the error.
pub const CLOSE_UNKNOWN_SESSION: u16 = 4001;
pub const CLOSE_SESSION_ENDED: u16 = 4002;
pub const CLOSE_NOT_A_PLAYER: u16 = 4403;

/// Sessions one user may create: a burst of this many, then [`CREATED_PER_MINUTE`]. Sessions
/// are stored, so without a bound one account could fill the database.
pub const CREATED_BURST: u32 = 5;
pub const CREATED_PER_MINUTE: u32 = 10;

pub async fn socket(
    upgrade: Upgrade,
    Path(party_id): Path<String>,
    SocketToken(token): SocketToken,
    State(state): State<AppState>,
) -> Response {
    let channel = PartyChannel {
        party_id,
        user_id: String::new(),
    };
    socket::accept(upgrade, state, token, channel)
}

/// A party's channel: a `session_update` snapshot on open, then the party's lifecycle
/// events, until the socket's own user leaves it.
struct PartyChannel {
    party_id: String,
    /// The socket's user, known once it is open.
    user_id: String,
}

impl Channel for PartyChannel {
    const NAME: &'static str = "qf-party";

    async fn open(&mut self, state: &AppState, conn: &Connection) -> Result<Vec<String>, Stop> {
        let core = state.core();
        let Some(user) = core.user(conn) else {
            tracing::error!("a party socket opened without a signed-in user");
            return Err(INTERNAL_ERROR);
        };
        self.user_id = user.user_id;
        // Subscribe first, so nothing that happens while the snapshot is read is missed.
        core.watch_party(conn, &self.party_id);
        match core.party_for_socket(&self.user_id, &self.party_id).await {
            Ok(view) => Ok(vec![frame(ChannelMessage::SessionUpdate(snapshot(&view)))]),
            Err(CoreError::PartyNotFound) => {
                Err(Stop::Close(CLOSE_UNKNOWN_SESSION, "session not found"))
            }
            Err(CoreError::PartyEnded) => Err(Stop::Close(CLOSE_SESSION_ENDED, "session ended")),
            Err(CoreError::NotAPlayer) => Err(Stop::Close(
                CLOSE_NOT_A_PLAYER,
                "not a player in this session",
            )),
            Err(err) => Err(internal(err)),
        }
    }

    async fn on_event(
        &mut self,
        _state: &AppState,
        event: &Event,
        frames: &mut Vec<String>,
    ) -> Result<(), Stop> {
        if let Event::Party { view, change } = event {
            frames.extend(render(view, change).into_iter().map(frame));
            if matches!(change, PartyChange::PlayerLeft { user_id } if *user_id == self.user_id) {
                return Err(Stop::Close(close_code::NORMAL, "left the session"));
            }
        }
        Ok(())
    }
}

/// The party as players see it (contract 003 calls a party a session).
pub fn snapshot(view: &PartyView) -> wire::PartySession {
    wire::PartySession {
        session_id: view.party.id.clone(),
        code: view.party.code.clone(),
        host_id: view.party.host_id.clone(),
        phase: view.party.phase.as_str().to_owned(),
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
            ChannelMessage::SessionUpdate(snapshot(view)),
        ],
        PartyChange::PlayerReady { user_id, ready } => vec![ChannelMessage::PlayerReady {
            session_id,
            user_id: user_id.clone(),
            ready: *ready,
        }],
        PartyChange::PhaseTransition { from, to } => vec![ChannelMessage::PhaseTransition {
            session_id,
            from: from.as_str().to_owned(),
            to: to.as_str().to_owned(),
            timestamp,
        }],
        PartyChange::ProgressUpdate(progress) => vec![ChannelMessage::ProgressUpdate {
            session_id,
            progress: serde_json::from_str(progress).unwrap_or(serde_json::Value::Null),
            timestamp,
        }],
        PartyChange::SessionStarted => vec![ChannelMessage::SessionStarted {
            session_id,
            phase: view.party.phase.as_str().to_owned(),
            timestamp,
        }],
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

/// A session as the calls answer it.
fn answer(view: &PartyView) -> Json<wire::PartySession> {
    Json(snapshot(view))
}

/// `POST /qf/party` {max_players?}: a new session hosted by the caller; rate limited per
/// user ([`CREATED_BURST`], [`CREATED_PER_MINUTE`]).
pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    OptionalJsonBody(request): OptionalJsonBody<CreateParty>,
) -> Result<(StatusCode, Json<wire::PartySession>), ApiError> {
    if !state
        .party_limiter()
        .try_take(&caller.profile.user_id)
        .await
    {
        return Err(ApiError::RateLimited);
    }
    let view = state
        .core()
        .create_party(&caller.profile, request.max_players)
        .await?;
    Ok((StatusCode::CREATED, answer(&view)))
}

/// `POST /qf/party/join` {code}.
pub async fn join(
    State(core): State<Core>,
    Caller(caller): Caller,
    JsonBody(request): JsonBody<JoinParty>,
) -> Answer {
    let view = core
        .join_party(&caller.profile, request.code.trim())
        .await?;
    Ok(answer(&view))
}

/// `GET /qf/party/{id}`.
pub async fn show(
    State(core): State<Core>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Answer {
    Ok(answer(&core.player_view(&caller.profile, &id).await?))
}

/// `POST /qf/party/{id}/leave`: `204`.
pub async fn leave(
    State(core): State<Core>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    core.leave_party(&caller.profile, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /qf/party/{id}/ready` {ready}.
pub async fn ready(
    State(core): State<Core>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<Ready>,
) -> Answer {
    let view = core
        .set_party_ready(&caller.profile, &id, request.ready)
        .await?;
    Ok(answer(&view))
}

/// `POST /qf/party/{id}/start`: host only, everyone ready, enough players.
pub async fn start(
    State(core): State<Core>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Answer {
    Ok(answer(&core.start_party(&caller.profile, &id).await?))
}

/// `POST /qf/party/{id}/phase` {phase}: host only, started sessions.
pub async fn phase(
    State(core): State<Core>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<MovePhase>,
) -> Answer {
    let view = core
        .advance_party(&caller.profile, &id, &request.phase)
        .await?;
    Ok(answer(&view))
}

/// `POST /qf/party/{id}/progress` {progress}: host only; `204`.
pub async fn progress(
    State(core): State<Core>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<Progress>,
) -> Result<StatusCode, ApiError> {
    core.party_progress(&caller.profile, &id, &request.progress.to_string())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /qf/party/{id}/complete`: host only.
pub async fn complete(
    State(core): State<Core>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Answer {
    Ok(answer(&core.complete_party(&caller.profile, &id).await?))
}

/// `POST /qf/party/{id}/host-ping` {message?}: host only; `204`.
pub async fn host_ping(
    State(core): State<Core>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    OptionalJsonBody(request): OptionalJsonBody<HostPing>,
) -> Result<StatusCode, ApiError> {
    core.host_ping(&caller.profile, &id, request.message)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
