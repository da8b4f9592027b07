//! The publish API for other backends, beside notifications: media-job updates for the
//! job's `/media` subscribers, and named events to a room. Authenticated by the service key;
//! nothing here is stored (see `core::signals`).

use axum::{
    extract::{rejection::JsonRejection, Path, State},
    http::{HeaderMap, StatusCode},
    Json,
};
use serde::Deserialize;
use serde_json::Value;

use super::{caller::require_service_key, error::ApiError};
use crate::{core::signals::MediaUpdate, dialects::socketio::RESERVED_EVENT_NAMES, AppState};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaProgress {
    progress: f64,
    stage: String,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MediaComplete {
    url: String,
    #[serde(default)]
    thumbnail_url: Option<String>,
    #[serde(default)]
    metadata: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaError {
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

/// `POST /api/media/{mediaId}/progress` {progress: 0..=100, stage, message?}: `202`.
pub async fn media_progress(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(media_id): Path<String>,
    body: Result<Json<MediaProgress>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    require_service_key(&state, &headers)?;
    let Json(request) = body?;
    if !(0.0..=100.0).contains(&request.progress) {
        return Err(ApiError::BadRequest(
            "progress must be between 0 and 100".into(),
        ));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let progress = request.progress.round() as u8;
    publish(
        &state,
        MediaUpdate::Progress {
            media_id,
            progress,
            stage: request.stage,
            message: request.message,
        },
    )
}

/// `POST /api/media/{mediaId}/complete` {url, thumbnailUrl?, metadata?}: `202`.
pub async fn media_complete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(media_id): Path<String>,
    body: Result<Json<MediaComplete>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    require_service_key(&state, &headers)?;
    let Json(request) = body?;
    publish(
        &state,
        MediaUpdate::Complete {
            media_id,
            url: request.url,
            thumbnail_url: request.thumbnail_url,
            metadata: request.metadata.map(|m| Value::Object(m).to_string()),
        },
    )
}

/// `POST /api/media/{mediaId}/error` {error, code?}: `202`.
pub async fn media_error(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(media_id): Path<String>,
    body: Result<Json<MediaError>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    require_service_key(&state, &headers)?;
    let Json(request) = body?;
    publish(
        &state,
        MediaUpdate::Failed {
            media_id,
            error: request.error,
            code: request.code,
        },
    )
}

/// `POST /api/rooms/{room}/events` {event, data?}: the event, with `data` as its payload, to
/// every Socket.IO socket in the room. `202`.
pub async fn room_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(room): Path<String>,
    body: Result<Json<RoomEvent>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    require_service_key(&state, &headers)?;
    let Json(request) = body?;
    if RESERVED_EVENT_NAMES.contains(&request.event.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "event {:?} is reserved",
            request.event
        )));
    }
    state
        .core()
        .publish_room_event(
            &room,
            &request.event,
            request.data.map(|data| data.to_string()),
        )
        .map_err(|err| ApiError::BadRequest(err.to_string()))?;
    Ok(StatusCode::ACCEPTED)
}

fn publish(state: &AppState, update: MediaUpdate) -> Result<StatusCode, ApiError> {
    state
        .core()
        .publish_media(update)
        .map_err(|err| ApiError::BadRequest(err.to_string()))?;
    Ok(StatusCode::ACCEPTED)
}
