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
    /// `/qf/party/{id}/ws`: the whole session, on connect and when its host or state changes
    /// in a way no finer event says.
    SessionUpdate(PartySession),
    PlayerJoined {
        session_id: String,
        player: PartyPlayer,
    },
    PlayerLeft {
        session_id: String,
        user_id: String,
        host_id: String,
    },
    PlayerReady {
        session_id: String,
        user_id: String,
        ready: bool,
    },
    PhaseTransition {
        session_id: String,
        from: String,
        to: String,
        timestamp: String,
    },
    /// The host's progress document, as sent.
    ProgressUpdate {
        session_id: String,
        progress: serde_json::Value,
        timestamp: String,
    },
    SessionStarted {
        session_id: String,
        phase: String,
        timestamp: String,
    },
    SessionCompleted {
        session_id: String,
        timestamp: String,
    },
    HostPing {
        session_id: String,
        from_username: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        timestamp: String,
    },
}

/// A party session as its players see it; the REST calls answer it too.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PartySession {
    pub session_id: String,
    /// The short code others join with.
    pub code: String,
    pub host_id: String,
    /// `lobby`, then the host's phases, then `completed` (or `ended` when everyone left).
    pub phase: String,
    pub min_players: usize,
    pub max_players: u32,
    pub players: Vec<PartyPlayer>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PartyPlayer {
    pub user_id: String,
    pub username: String,
    pub ready: bool,
    pub is_host: bool,
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

/// Decodes one channel message (the app's side), by hand rather than through the derive
/// (`native/decode.rs` says why); it accepts exactly what the derive accepts.
pub fn decode_channel(text: &str) -> Result<ChannelMessage, serde_json::Error> {
    crate::decode(text)
}

mod decode;

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

    /// One of every channel message, with every optional field both set and left out.
    fn every_channel_message() -> Vec<ChannelMessage> {
        let session_id = || "s1".to_owned();
        let timestamp = || "2026-02-07T10:00:00.000Z".to_owned();
        let player = PartyPlayer {
            user_id: "u1".into(),
            username: "Ana".into(),
            ready: true,
            is_host: false,
        };
        vec![
            ChannelMessage::OnlineUsersUpdate(OnlineUsersUpdate {
                users: vec![OnlineUser {
                    user_id: "u1".into(),
                    username: "Ana".into(),
                    image_url: String::new(),
                }],
                total_count: 1,
                timestamp: timestamp(),
            }),
            ChannelMessage::Notification(ChannelNotification {
                id: "n1".into(),
                notification_type: "comment".into(),
                actor_username: "bo".into(),
                action: "commented".into(),
                recipient_role: "owner".into(),
                phrase_text: "bo commented".into(),
                timestamp: timestamp(),
            }),
            ChannelMessage::Ping(ChannelPing {
                from_username: "bo".into(),
                timestamp: timestamp(),
                join_url: Some("https://example.com/j".into()),
            }),
            ChannelMessage::Ping(ChannelPing {
                from_username: "bo".into(),
                timestamp: timestamp(),
                join_url: None,
            }),
            ChannelMessage::SessionUpdate(PartySession {
                session_id: session_id(),
                code: "ABCD".into(),
                host_id: "u1".into(),
                phase: "lobby".into(),
                min_players: 2,
                max_players: 8,
                players: vec![player.clone()],
            }),
            ChannelMessage::PlayerJoined {
                session_id: session_id(),
                player,
            },
            ChannelMessage::PlayerLeft {
                session_id: session_id(),
                user_id: "u2".into(),
                host_id: "u1".into(),
            },
            ChannelMessage::PlayerReady {
                session_id: session_id(),
                user_id: "u2".into(),
                ready: false,
            },
            ChannelMessage::PhaseTransition {
                session_id: session_id(),
                from: "lobby".into(),
                to: "playing".into(),
                timestamp: timestamp(),
            },
            ChannelMessage::ProgressUpdate {
                session_id: session_id(),
                progress: json!({"done": 3, "of": [1, 2]}),
                timestamp: timestamp(),
            },
            ChannelMessage::SessionStarted {
                session_id: session_id(),
                phase: "playing".into(),
                timestamp: timestamp(),
            },
            ChannelMessage::SessionCompleted {
                session_id: session_id(),
                timestamp: timestamp(),
            },
            ChannelMessage::HostPing {
                session_id: session_id(),
                from_username: "Ana".into(),
                message: Some("ready?".into()),
                timestamp: timestamp(),
            },
            ChannelMessage::HostPing {
                session_id: session_id(),
                from_username: "Ana".into(),
                message: None,
                timestamp: timestamp(),
            },
        ]
    }

    #[test]
    fn every_channel_message_decodes_as_the_derive_decodes_it() {
        crate::fields::assert_decodes_as_derived(&every_channel_message(), decode_channel);
    }

    /// The online list and a party session also come on their own, as REST answers.
    #[test]
    fn the_parts_that_are_also_rest_answers_decode_as_the_derive_decodes_them() {
        let (mut updates, mut sessions) = (Vec::new(), Vec::new());
        for message in every_channel_message() {
            match message {
                ChannelMessage::OnlineUsersUpdate(update) => updates.push(update),
                ChannelMessage::SessionUpdate(session) => sessions.push(session),
                _ => {}
            }
        }
        assert!(!updates.is_empty() && !sessions.is_empty());
        crate::fields::assert_decodes_as_derived(&updates, crate::decode);
        crate::fields::assert_decodes_as_derived(&sessions, crate::decode);
    }
}
