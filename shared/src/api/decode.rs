//! The HTTP API's answers that the app reads, read by hand from a parsed `Value` for the
//! reason the crate root gives. The tests in `api.rs` hold each to its derive.

use serde_json::Value;

use super::{
    ApiErrorBody, ApiErrorDetail, GuestResponse, NotificationList, NotificationView,
    WsTokenResponse,
};
use crate::{
    fields::{Fields, Result},
    FromJson,
};

impl FromJson for GuestResponse {
    fn from_json(value: &Value) -> Result<Self> {
        let f = Fields::of(value, "guest sign-in")?;
        Ok(GuestResponse {
            token: f.text("token")?,
            user_id: f.text("userId")?,
            exp: f.i64("exp")?,
        })
    }
}

impl FromJson for WsTokenResponse {
    fn from_json(value: &Value) -> Result<Self> {
        let f = Fields::of(value, "token")?;
        Ok(WsTokenResponse {
            token: f.text("token")?,
            expires_in: f.u64("expires_in")?,
        })
    }
}

impl FromJson for ApiErrorBody {
    fn from_json(value: &Value) -> Result<Self> {
        let f = Fields::of(value, "error body")?;
        let detail = Fields::of(f.get("error")?, "error")?;
        Ok(ApiErrorBody {
            error: ApiErrorDetail {
                code: detail.text("code")?,
                message: detail.text("message")?,
            },
        })
    }
}

fn notification(value: &Value) -> Result<NotificationView> {
    let f = Fields::of(value, "notification")?;
    Ok(NotificationView {
        id: f.text("id")?,
        level: f.text("type")?,
        title: f.text("title")?,
        message: f.text("message")?,
        notification_type: f.text("notificationType")?,
        actor_username: f.text("actorUsername")?,
        action: f.text("action")?,
        recipient_role: f.text("recipientRole")?,
        phrase_text: f.text("phraseText")?,
        data: f.optional("data").cloned(),
        timestamp: f.text("timestamp")?,
        read: f.flag("read")?,
    })
}

impl FromJson for NotificationList {
    fn from_json(value: &Value) -> Result<Self> {
        let f = Fields::of(value, "notifications")?;
        Ok(NotificationList {
            notifications: f.list("notifications", notification)?,
        })
    }
}
