//! The notification API: publishing for other backends (with the service key), and listing
//! and marking read for the app (with the user's JWT). Delivery to sockets is the dialects'.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use confab_shared::api::{NotificationList, NotificationView, PublishNotification, Published};
use serde_json::Value;

use crate::rest::{ApiError, Caller, JsonBody, ServiceKey};
use crate::{
    core::{
        model::{Level, Notification},
        now_ms, Core,
    },
    timefmt::iso8601_millis,
};

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest message or phrase text, in characters.
pub const MAX_TEXT_CHARS: usize = 2000;
/// Longest short field (type, actor, action, role) and user id, in characters.
pub const MAX_FIELD_CHARS: usize = 128;
/// Largest `data`, in bytes of JSON.
pub const MAX_DATA_BYTES: usize = 16 * 1024;

/// `POST /api/notifications`: stores a notification for `userId` and delivers it to the
/// user's `/qf/notifications/ws` (and, later, Socket.IO `/notifications`) sockets.
pub async fn publish(
    State(core): State<Core>,
    _: ServiceKey,
    JsonBody(request): JsonBody<PublishNotification>,
) -> Result<(StatusCode, Json<Published>), ApiError> {
    let notification = build(request)?;
    let stored = core.notify(notification).await?;
    Ok((StatusCode::CREATED, Json(Published { id: stored.id })))
}

/// Validates a publish request and fills each shape's fields from the other's.
fn build(request: PublishNotification) -> Result<Notification, ApiError> {
    let field = |name: &str, value: Option<String>, max: usize| -> Result<String, ApiError> {
        let value = value.unwrap_or_default().trim().to_owned();
        if value.chars().count() > max {
            return Err(ApiError::BadRequest(format!(
                "{name} is longer than {max} characters"
            )));
        }
        Ok(value)
    };
    let user_id = field("userId", Some(request.user_id), MAX_FIELD_CHARS)?;
    if user_id.is_empty() {
        return Err(ApiError::BadRequest("userId is required".into()));
    }
    let level = match request.level.as_deref() {
        None => Level::Info,
        Some(text) => Level::parse(text).ok_or_else(|| {
            ApiError::BadRequest("type must be info, success, warning or error".into())
        })?,
    };
    let message = field("message", request.message, MAX_TEXT_CHARS)?;
    let phrase_text = field("phraseText", request.phrase_text, MAX_TEXT_CHARS)?;
    if message.is_empty() && phrase_text.is_empty() {
        return Err(ApiError::BadRequest(
            "message or phraseText is required".into(),
        ));
    }
    let notification_type = field(
        "notificationType",
        request.notification_type,
        MAX_FIELD_CHARS,
    )?;
    let title = field("title", request.title, MAX_TITLE_CHARS)?;
    let data = request.data.map(|m| Value::Object(m).to_string());
    if data.as_ref().is_some_and(|t| t.len() > MAX_DATA_BYTES) {
        return Err(ApiError::BadRequest(format!(
            "data is larger than {MAX_DATA_BYTES} bytes"
        )));
    }
    Ok(Notification {
        // Time-ordered, and ordered within a millisecond too: the backlog is sent oldest
        // first by (created_at, id), and notifications made in the same millisecond kept
        // no order with random ids.
        id: uuid::Uuid::now_v7().to_string(),
        user_id,
        level,
        title: or(title, &notification_type),
        message: or(message.clone(), &phrase_text),
        notification_type: or(notification_type, level.as_str()),
        actor_username: field("actorUsername", request.actor_username, MAX_FIELD_CHARS)?,
        action: field("action", request.action, MAX_FIELD_CHARS)?,
        recipient_role: field("recipientRole", request.recipient_role, MAX_FIELD_CHARS)?,
        phrase_text: or(phrase_text, &message),
        data,
        created_at_ms: now_ms(),
        read: false,
    })
}

/// `value`, or `fallback` when it is empty.
fn or(value: String, fallback: &str) -> String {
    if value.is_empty() {
        fallback.to_owned()
    } else {
        value
    }
}

/// `GET /api/notifications`: the caller's newest notifications, newest first.
pub async fn list(
    State(core): State<Core>,
    Caller(caller): Caller,
) -> Result<Json<NotificationList>, ApiError> {
    let notifications = core.notifications_of(&caller.profile.user_id).await?;
    Ok(Json(NotificationList {
        notifications: notifications.iter().map(view).collect(),
    }))
}

/// `POST /api/notifications/{id}/read`: `204`, or `404` when it is not the caller's.
pub async fn mark_read(
    State(core): State<Core>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    core.mark_read(&caller.profile.user_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn view(n: &Notification) -> NotificationView {
    NotificationView {
        id: n.id.clone(),
        level: n.level.as_str().to_owned(),
        title: n.title.clone(),
        message: n.message.clone(),
        notification_type: n.notification_type.clone(),
        actor_username: n.actor_username.clone(),
        action: n.action.clone(),
        recipient_role: n.recipient_role.clone(),
        phrase_text: n.phrase_text.clone(),
        data: n
            .data
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok()),
        timestamp: iso8601_millis(n.created_at_ms),
        read: n.read,
    }
}
