//! The JSON bodies of the HTTP API the app uses.

use serde::{Deserialize, Serialize};

/// `POST /api/auth/guest`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GuestRequest {
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
}

/// The answer to `POST /api/auth/guest`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GuestResponse {
    /// A JWT for `auth` on `/ws`.
    pub token: String,
    pub user_id: String,
    /// Unix seconds.
    pub exp: i64,
}

/// Every API error: `{"error": {"code": ..., "message": ...}}`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ApiErrorBody {
    pub error: ApiErrorDetail,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ApiErrorDetail {
    /// Stable and machine-readable: `bad_request`, `unauthorized`, `rate_limited`, `internal`.
    pub code: String,
    /// For people.
    pub message: String,
}

/// The answer to `GET /qf/auth/ws-token` (contract 003).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct WsTokenResponse {
    /// Opens `/qf/*` sockets as `?token=…`; not accepted anywhere else.
    pub token: String,
    /// Seconds the token can be used to open a socket.
    pub expires_in: u64,
}

/// `POST /api/notifications` (other backends, with the service key): a notification for one
/// user. Either shape may be given, contract 002's (`type`, `title`, `message`, `data`) or
/// contract 003's (`notificationType`, `actorUsername`, `action`, `recipientRole`,
/// `phraseText`); missing fields are filled from the other shape.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PublishNotification {
    pub user_id: String,
    /// `info` (default), `success`, `warning` or `error`.
    #[serde(default, rename = "type")]
    pub level: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub data: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub notification_type: Option<String>,
    #[serde(default)]
    pub actor_username: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub recipient_role: Option<String>,
    #[serde(default)]
    pub phrase_text: Option<String>,
}

/// The answer to `POST /api/notifications`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub id: String,
}

/// A notification as `GET /api/notifications` lists it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NotificationView {
    pub id: String,
    #[serde(rename = "type")]
    pub level: String,
    pub title: String,
    pub message: String,
    pub notification_type: String,
    pub actor_username: String,
    pub action: String,
    pub recipient_role: String,
    pub phrase_text: String,
    pub data: Option<serde_json::Value>,
    /// ISO 8601 UTC.
    pub timestamp: String,
    pub read: bool,
}

/// `GET /api/notifications`: the caller's newest notifications, newest first.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct NotificationList {
    pub notifications: Vec<NotificationView>,
}

/// `POST /qf/users/online/{username}/ping`, body optional.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct PingRequest {
    #[serde(default)]
    pub join_url: Option<String>,
}

/// The answer to a ping: how many online users by that name it reached.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PingResult {
    pub delivered_to: usize,
}

/// The optional body of every moderation request: who acts and why, for the audit log.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct ModerationRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The answer to `DELETE /api/admin/messages/{id}`: where the deleted message was.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DeletedMessageView {
    pub id: String,
    pub room_id: String,
    pub seq: u64,
}

/// A ban, as `PUT /api/admin/bans/{userId}` and `GET /api/admin/bans` show it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BanView {
    pub user_id: String,
    pub reason: String,
    pub moderator: String,
    /// ISO 8601 UTC.
    pub banned_at: String,
}

/// `GET /api/admin/bans`: newest first.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct BanList {
    pub bans: Vec<BanView>,
}

/// One moderator action in `GET /api/admin/audit`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AuditEntryView {
    pub id: String,
    /// ISO 8601 UTC.
    pub at: String,
    pub moderator: String,
    /// `delete_message`, `remove_member`, `close_room`, `ban` or `unban`.
    pub action: String,
    /// A message id, a room id, a user id, or `roomId/userId` for `remove_member`.
    pub target: String,
    pub reason: String,
}

/// `GET /api/admin/audit`: newest first.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AuditLog {
    pub entries: Vec<AuditEntryView>,
}

mod decode;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode, decode_json, fields::assert_decodes_as_derived};
    use serde_json::json;

    fn notification(id: &str, data: Option<serde_json::Value>) -> NotificationView {
        NotificationView {
            id: id.into(),
            level: "info".into(),
            title: "Ana pinged you".into(),
            message: "come play".into(),
            notification_type: "ping".into(),
            actor_username: "Ana".into(),
            action: "ping".into(),
            recipient_role: "player".into(),
            phrase_text: "Ana pinged you".into(),
            data,
            timestamp: "2026-01-02T03:04:05Z".into(),
            read: false,
        }
    }

    #[test]
    fn each_answer_the_app_reads_decodes_as_the_derive_decodes_it() {
        assert_decodes_as_derived(
            &[GuestResponse {
                token: "eyJ.x.y".into(),
                user_id: "u1".into(),
                exp: 1_700_000_000,
            }],
            decode,
        );
        assert_decodes_as_derived(
            &[WsTokenResponse {
                token: "t".into(),
                expires_in: 60,
            }],
            decode,
        );
        assert_decodes_as_derived(
            &[ApiErrorBody {
                error: ApiErrorDetail {
                    code: "rate_limited".into(),
                    message: "slow down".into(),
                },
            }],
            decode,
        );
        assert_decodes_as_derived(
            &[
                NotificationList {
                    notifications: vec![
                        notification("n1", Some(json!({"joinUrl": "/party/X", "n": [1]}))),
                        notification("n2", None),
                    ],
                },
                NotificationList {
                    notifications: Vec::new(),
                },
            ],
            decode,
        );
    }

    #[test]
    fn an_empty_answer_reads_only_from_null_as_the_derive_reads_it() {
        for text in ["null", "{}", "0", "\"\"", "[]", "nul"] {
            assert_eq!(
                decode::<()>(text).ok(),
                decode_json::<()>(text).ok(),
                "{text}"
            );
        }
        assert_eq!(decode::<()>("null").ok(), Some(()));
    }
}
