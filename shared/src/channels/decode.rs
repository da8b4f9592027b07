//! Channel messages read by hand from a parsed `Value`, for the browser app, for the reason
//! `native/decode.rs` gives. The derive stays the definition; the tests in `channels.rs`
//! hold this decoder to it.

use serde_json::Value;

use super::{
    ChannelMessage, ChannelNotification, ChannelPing, OnlineUser, OnlineUsersUpdate, PartyPlayer,
    PartySession,
};
use crate::{
    fields::{Fields, Result},
    FromJson,
};

fn online_user(value: &Value) -> Result<OnlineUser> {
    let f = Fields::of(value, "user")?;
    Ok(OnlineUser {
        user_id: f.text("user_id")?,
        username: f.text("username")?,
        image_url: f.text("image_url")?,
    })
}

fn player(value: &Value) -> Result<PartyPlayer> {
    let f = Fields::of(value, "player")?;
    Ok(PartyPlayer {
        user_id: f.text("user_id")?,
        username: f.text("username")?,
        ready: f.flag("ready")?,
        is_host: f.flag("is_host")?,
    })
}

fn online_users_update(f: &Fields) -> Result<OnlineUsersUpdate> {
    Ok(OnlineUsersUpdate {
        users: f.list("users", online_user)?,
        total_count: f.usize("total_count")?,
        timestamp: f.text("timestamp")?,
    })
}

fn party_session(f: &Fields) -> Result<PartySession> {
    Ok(PartySession {
        session_id: f.text("session_id")?,
        code: f.text("code")?,
        host_id: f.text("host_id")?,
        phase: f.text("phase")?,
        min_players: f.usize("min_players")?,
        max_players: f.u32("max_players")?,
        players: f.list("players", player)?,
    })
}

/// The online list on its own, as `GET /qf/users/online` answers it.
impl FromJson for OnlineUsersUpdate {
    fn from_json(value: &Value) -> Result<Self> {
        online_users_update(&Fields::of(value, "online users")?)
    }
}

/// A session on its own, as the party calls answer it.
impl FromJson for PartySession {
    fn from_json(value: &Value) -> Result<Self> {
        party_session(&Fields::of(value, "session")?)
    }
}

/// A channel message from its parsed JSON.
impl FromJson for ChannelMessage {
    fn from_json(value: &Value) -> Result<Self> {
        let f = Fields::of(value, "message")?;
        let kind = f.text("type")?;
        let session_id = || f.text("session_id");
        let timestamp = || f.text("timestamp");
        Ok(match kind.as_str() {
            "online_users_update" => ChannelMessage::OnlineUsersUpdate(online_users_update(&f)?),
            "notification" => ChannelMessage::Notification(ChannelNotification {
                id: f.text("id")?,
                notification_type: f.text("notification_type")?,
                actor_username: f.text("actor_username")?,
                action: f.text("action")?,
                recipient_role: f.text("recipient_role")?,
                phrase_text: f.text("phrase_text")?,
                timestamp: timestamp()?,
            }),
            "ping" => ChannelMessage::Ping(ChannelPing {
                from_username: f.text("from_username")?,
                timestamp: timestamp()?,
                join_url: f.optional_text("join_url")?,
            }),
            "session_update" => ChannelMessage::SessionUpdate(party_session(&f)?),
            "player_joined" => ChannelMessage::PlayerJoined {
                session_id: session_id()?,
                player: player(f.get("player")?)?,
            },
            "player_left" => ChannelMessage::PlayerLeft {
                session_id: session_id()?,
                user_id: f.text("user_id")?,
                host_id: f.text("host_id")?,
            },
            "player_ready" => ChannelMessage::PlayerReady {
                session_id: session_id()?,
                user_id: f.text("user_id")?,
                ready: f.flag("ready")?,
            },
            "phase_transition" => ChannelMessage::PhaseTransition {
                session_id: session_id()?,
                from: f.text("from")?,
                to: f.text("to")?,
                timestamp: timestamp()?,
            },
            "progress_update" => ChannelMessage::ProgressUpdate {
                session_id: session_id()?,
                progress: f.get("progress")?.clone(),
                timestamp: timestamp()?,
            },
            "session_started" => ChannelMessage::SessionStarted {
                session_id: session_id()?,
                phase: f.text("phase")?,
                timestamp: timestamp()?,
            },
            "session_completed" => ChannelMessage::SessionCompleted {
                session_id: session_id()?,
                timestamp: timestamp()?,
            },
            "host_ping" => ChannelMessage::HostPing {
                session_id: session_id()?,
                from_username: f.text("from_username")?,
                message: f.optional_text("message")?,
                timestamp: timestamp()?,
            },
            other => return Err(format!("unknown message type \"{other}\"")),
        })
    }
}
