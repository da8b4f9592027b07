//! `/qf/users/online/ws` and its REST fallback `GET /qf/users/online`: who is online, as
//! `online_users_update` {users, total_count, timestamp}, on connect and after every change,
//! with bursts coalesced to at most one update per [`COALESCE`].

use std::time::Duration;

use axum::{extract::State, response::Response, Json};
use confab_shared::channels::{ChannelMessage, OnlineUser, OnlineUsersUpdate};
use tokio::time::Instant;

use super::{
    socket::{self, frame, internal, Channel},
    SocketToken,
};
use crate::{
    core::{events::Event, now_ms, Connection, Core},
    dialects::{direct_ws::Upgrade, plain_ws::Stop},
    rest::Caller,
    timefmt::iso8601_millis,
    AppState,
};

/// The least time between two updates on one socket.
pub const COALESCE: Duration = Duration::from_millis(500);

pub async fn socket(
    upgrade: Upgrade,
    SocketToken(token): SocketToken,
    State(state): State<AppState>,
) -> Response {
    let channel = OnlineChannel {
        last_sent: Instant::now(),
        pending: None,
    };
    socket::accept(upgrade, state, token, channel)
}

/// The online-users channel: a snapshot on open, then one after each change, at most one
/// per [`COALESCE`].
struct OnlineChannel {
    last_sent: Instant,
    /// When the next snapshot is due, once something changed.
    pending: Option<Instant>,
}

impl Channel for OnlineChannel {
    const NAME: &'static str = "qf-online";

    async fn open(&mut self, state: &AppState, conn: &Connection) -> Result<Vec<String>, Stop> {
        let core = state.core();
        core.watch_presence(conn).map_err(internal)?;
        self.last_sent = Instant::now();
        Ok(vec![snapshot_frame(core)])
    }

    async fn on_event(
        &mut self,
        _state: &AppState,
        event: &Event,
        _frames: &mut Vec<String>,
    ) -> Result<(), Stop> {
        if *event == Event::PresenceChanged {
            let due = (self.last_sent + COALESCE).max(Instant::now());
            self.pending.get_or_insert(due);
        }
        Ok(())
    }

    fn deadline(&self) -> Option<Instant> {
        self.pending
    }

    fn on_deadline(&mut self, state: &AppState, frames: &mut Vec<String>) {
        self.pending = None;
        self.last_sent = Instant::now();
        frames.push(snapshot_frame(state.core()));
    }
}

fn snapshot(core: &Core) -> OnlineUsersUpdate {
    let users: Vec<OnlineUser> = core
        .online_users()
        .into_iter()
        .map(|profile| OnlineUser {
            user_id: profile.user_id,
            username: profile.username,
            image_url: profile.image_url,
        })
        .collect();
    OnlineUsersUpdate {
        total_count: users.len(),
        users,
        timestamp: iso8601_millis(now_ms()),
    }
}

fn snapshot_frame(core: &Core) -> String {
    frame(ChannelMessage::OnlineUsersUpdate(snapshot(core)))
}

/// `GET /qf/users/online`: the same snapshot over REST, for clients whose socket is down.
/// Authenticated like `/qf/auth/ws-token` (a JWT as bearer token or session cookie).
pub async fn list(State(core): State<Core>, _: Caller) -> Json<OnlineUsersUpdate> {
    Json(snapshot(&core))
}
