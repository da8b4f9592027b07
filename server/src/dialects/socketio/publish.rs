//! The publish API other backends use to reach Socket.IO clients: media-job updates for the
//! job's `/media` subscribers, and named events to a room's sockets. Authenticated by the
//! service key; nothing here is stored (see `core::signals`).

use axum::{
    extract::{Path, State},
    http::StatusCode,
    routing::post,
    Router,
};
use serde::Deserialize;
use serde_json::Value;

use super::RESERVED_EVENT_NAMES;
use crate::{
    core::{signals::MediaUpdate, Core},
    rest::{ApiError, JsonBody, ServiceKey},
    AppState,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/media/{media_id}/progress", post(media_progress))
        .route("/api/media/{media_id}/complete", post(media_complete))
        .route("/api/media/{media_id}/error", post(media_error))
        .route("/api/rooms/{room}/events", post(room_event))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaProgress {
    /// The job's owner: only their subscribed sockets are told.
    #[serde(default, rename = "userId")]
    user_id: Option<String>,
    progress: f64,
    stage: String,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MediaComplete {
    #[serde(default)]
    user_id: Option<String>,
    url: String,
    #[serde(default)]
    thumbnail_url: Option<String>,
    #[serde(default)]
    metadata: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaError {
    #[serde(default, rename = "userId")]
    user_id: Option<String>,
    error: String,
    #[serde(default)]
    code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomEvent {
    event: String,
    #[serde(default)]
    data: Option<Value>,
}

/// `POST /api/media/{mediaId}/progress` {progress: 0..=100, stage, message?, userId?}: `202`.
/// Each media call takes `userId`, the job's owner: then only the owner's subscribed sockets
/// are told.
pub async fn media_progress(
    State(core): State<Core>,
    _: ServiceKey,
    Path(media_id): Path<String>,
    JsonBody(request): JsonBody<MediaProgress>,
) -> Result<StatusCode, ApiError> {
    if !(0.0..=100.0).contains(&request.progress) {
        return Err(ApiError::BadRequest(
            "progress must be between 0 and 100".into(),
        ));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let progress = request.progress.round() as u8;
    publish(
        &core,
        MediaUpdate::Progress {
            media_id,
            progress,
            stage: request.stage,
            message: request.message,
        },
        request.user_id,
    )
}

/// `POST /api/media/{mediaId}/complete` {url, thumbnailUrl?, metadata?, userId?}: `202`.
pub async fn media_complete(
    State(core): State<Core>,
    _: ServiceKey,
    Path(media_id): Path<String>,
    JsonBody(request): JsonBody<MediaComplete>,
) -> Result<StatusCode, ApiError> {
    publish(
        &core,
        MediaUpdate::Complete {
            media_id,
            url: request.url,
            thumbnail_url: request.thumbnail_url,
            metadata: request.metadata.map(|m| Value::Object(m).to_string()),
        },
        request.user_id,
    )
}

/// `POST /api/media/{mediaId}/error` {error, code?, userId?}: `202`.
pub async fn media_error(
    State(core): State<Core>,
    _: ServiceKey,
    Path(media_id): Path<String>,
    JsonBody(request): JsonBody<MediaError>,
) -> Result<StatusCode, ApiError> {
    publish(
        &core,
        MediaUpdate::Failed {
            media_id,
            error: request.error,
            code: request.code,
        },
        request.user_id,
    )
}

/// `POST /api/rooms/{room}/events` {event, data?}: the event, with `data` as its payload, to
/// every Socket.IO socket in the room. `202`.
pub async fn room_event(
    State(core): State<Core>,
    _: ServiceKey,
    Path(room): Path<String>,
    JsonBody(request): JsonBody<RoomEvent>,
) -> Result<StatusCode, ApiError> {
    if RESERVED_EVENT_NAMES.contains(&request.event.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "event {:?} is reserved",
            request.event
        )));
    }
    core.publish_room_event(
        &room,
        &request.event,
        request.data.map(|data| data.to_string()),
    )?;
    Ok(StatusCode::ACCEPTED)
}

fn publish(
    core: &Core,
    update: MediaUpdate,
    owner: Option<String>,
) -> Result<StatusCode, ApiError> {
    core.publish_media(update, owner.as_deref())?;
    Ok(StatusCode::ACCEPTED)
}
