//! The moderation API, for operators and their tools, with the service key: delete a
//! message, remove a member, close a room, ban and unban a user, and read the bans and the
//! audit log. Every action takes an optional JSON body `{moderator, reason}`, which the
//! audit log keeps.

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    routing::{delete, get, post, put},
    Json, Router,
};
use confab_shared::api::{
    AuditEntryView, AuditLog, BanList, BanView, DeletedMessageView, ModerationRequest,
};
use serde::Deserialize;

use crate::{
    core::{
        model::{AuditEntry, Ban},
        Core, Moderator, MAX_MODERATION_LIST,
    },
    rest::{ApiError, OptionalJsonBody, ServiceKey},
    timefmt::iso8601_millis,
    AppState,
};

/// Entries a listing returns when the request names no `limit`.
const DEFAULT_LIST: usize = 100;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/admin/messages/{id}", delete(delete_message))
        .route(
            "/api/admin/rooms/{room}/members/{user}",
            delete(remove_member),
        )
        .route("/api/admin/rooms/{room}/close", post(close_room))
        .route("/api/admin/bans", get(bans))
        .route("/api/admin/bans/{user}", put(ban).delete(unban))
        .route("/api/admin/audit", get(audit_log))
}

fn moderator(request: &ModerationRequest) -> Result<Moderator, ApiError> {
    Ok(Moderator::new(
        request.moderator.as_deref(),
        request.reason.as_deref(),
    )?)
}

/// `DELETE /api/admin/messages/{id}`: history no longer has it, and the room is told.
async fn delete_message(
    State(core): State<Core>,
    _: ServiceKey,
    Path(id): Path<String>,
    OptionalJsonBody(request): OptionalJsonBody<ModerationRequest>,
) -> Result<Json<DeletedMessageView>, ApiError> {
    let deleted = core.delete_message(&moderator(&request)?, &id).await?;
    Ok(Json(DeletedMessageView {
        id: deleted.id,
        room_id: deleted.room_key,
        seq: deleted.seq,
    }))
}

/// `DELETE /api/admin/rooms/{room}/members/{user}`: removes the member, who may join again.
async fn remove_member(
    State(core): State<Core>,
    _: ServiceKey,
    Path((room, user)): Path<(String, String)>,
    OptionalJsonBody(request): OptionalJsonBody<ModerationRequest>,
) -> Result<StatusCode, ApiError> {
    core.remove_member(&moderator(&request)?, &room, &user)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/admin/rooms/{room}/close`: removes every member; no one joins again.
async fn close_room(
    State(core): State<Core>,
    _: ServiceKey,
    Path(room): Path<String>,
    OptionalJsonBody(request): OptionalJsonBody<ModerationRequest>,
) -> Result<StatusCode, ApiError> {
    core.close_room(&moderator(&request)?, &room).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/admin/bans/{user}`: refuses the user's tokens and closes their connections.
async fn ban(
    State(core): State<Core>,
    _: ServiceKey,
    Path(user): Path<String>,
    OptionalJsonBody(request): OptionalJsonBody<ModerationRequest>,
) -> Result<Json<BanView>, ApiError> {
    let ban = core.ban(&moderator(&request)?, &user).await?;
    Ok(Json(ban_view(ban)))
}

/// `DELETE /api/admin/bans/{user}`.
async fn unban(
    State(core): State<Core>,
    _: ServiceKey,
    Path(user): Path<String>,
    OptionalJsonBody(request): OptionalJsonBody<ModerationRequest>,
) -> Result<StatusCode, ApiError> {
    core.unban(&moderator(&request)?, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<usize>,
}

impl ListQuery {
    fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIST),
            Some(limit) if (1..=MAX_MODERATION_LIST).contains(&limit) => Ok(limit),
            Some(_) => Err(ApiError::BadRequest(format!(
                "limit must be between 1 and {MAX_MODERATION_LIST}"
            ))),
        }
    }
}

/// `GET /api/admin/bans?limit=N`: newest first.
async fn bans(
    State(core): State<Core>,
    _: ServiceKey,
    Query(query): Query<ListQuery>,
) -> Result<Json<BanList>, ApiError> {
    let bans = core.bans(query.limit()?).await?;
    Ok(Json(BanList {
        bans: bans.into_iter().map(ban_view).collect(),
    }))
}

/// `GET /api/admin/audit?limit=N`: newest first.
async fn audit_log(
    State(core): State<Core>,
    _: ServiceKey,
    Query(query): Query<ListQuery>,
) -> Result<Json<AuditLog>, ApiError> {
    let entries = core.audit_log(query.limit()?).await?;
    Ok(Json(AuditLog {
        entries: entries.into_iter().map(audit_view).collect(),
    }))
}

fn ban_view(ban: Ban) -> BanView {
    BanView {
        user_id: ban.user_id,
        reason: ban.reason,
        moderator: ban.moderator,
        banned_at: iso8601_millis(ban.banned_at_ms),
    }
}

fn audit_view(entry: AuditEntry) -> AuditEntryView {
    AuditEntryView {
        id: entry.id,
        at: iso8601_millis(entry.at_ms),
        moderator: entry.moderator,
        action: entry.action.as_str().to_owned(),
        target: entry.target,
        reason: entry.reason,
    }
}
