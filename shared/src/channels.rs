//! Messages on contract 003's `/qf/*` sockets: flat JSON objects whose `type` names the
//! message, with the document's snake_case fields beside it. Timestamps are ISO 8601 UTC
//! strings with milliseconds (`2026-02-07T10:00:00.000Z`).

use serde::{Deserialize, Serialize};

/// A message the server sends on a `/qf` socket.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChannelMessage {
    /// `/qf/users/online/ws`: everyone online, on connect and after every change (bursts
    /// coalesced).
    OnlineUsersUpdate(OnlineUsersUpdate),
    /// `/qf/notifications/ws`: a notification for this user.
    Notification(ChannelNotification),
    /// `/qf/notifications/ws`: a direct ping or party invitation.
    Ping(ChannelPing),
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ChannelNotification {
    /// Confab's notification id (for marking it read); beyond the contract's fields.
    pub id: String,
    pub notification_type: String,
    pub actor_username: String,
    pub action: String,
    pub recipient_role: String,
    pub phrase_text: String,
    pub timestamp: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ChannelPing {
    pub from_username: String,
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_url: Option<String>,
}

/// The online-users snapshot; `GET /qf/users/online` answers the same shape.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct OnlineUsersUpdate {
    pub users: Vec<OnlineUser>,
    pub total_count: usize,
    pub timestamp: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct OnlineUser {
    pub user_id: String,
    pub username: String,
    /// Empty when the user has no avatar.
    pub image_url: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_are_flat_objects_with_a_type() {
        let update = ChannelMessage::OnlineUsersUpdate(OnlineUsersUpdate {
            users: vec![OnlineUser {
                user_id: "u1".into(),
                username: "Ana".into(),
                image_url: String::new(),
            }],
            total_count: 1,
            timestamp: "2026-02-07T10:00:00.000Z".into(),
        });
        let value = json!({"type": "online_users_update", "users": [{"user_id": "u1", "username": "Ana", "image_url": ""}],
                           "total_count": 1, "timestamp": "2026-02-07T10:00:00.000Z"});
        assert_eq!(serde_json::to_value(&update).unwrap(), value);
        assert_eq!(
            serde_json::from_value::<ChannelMessage>(value).unwrap(),
            update
        );
    }
}
