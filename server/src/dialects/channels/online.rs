//! `/qf/users/online/ws` and its REST fallback `GET /qf/users/online`: who is online, as
//! `online_users_update` {users, total_count, timestamp}, on connect and after every change,
//! with bursts coalesced to at most one update per [`COALESCE`].

use std::time::Duration;

use axum::{
    extract::{ws::Message, State, WebSocketUpgrade},
    http::HeaderMap,
    response::Response,
    Json,
};
use confab_shared::channels::{ChannelMessage, OnlineUser, OnlineUsersUpdate};
use futures_util::StreamExt;
use tokio::time::Instant;

use super::{authenticate_socket, ws_token_from, TokenQuery};
use crate::{
    core::{events::Event, now_ms, Core},
    dialects::{
        plain_ws::{self, Stop},
        timefmt::iso8601_millis,
    },
    http::error::ApiError,
    AppState,
};

/// The least time between two updates on one socket.
pub const COALESCE: Duration = Duration::from_millis(500);

pub async fn socket(
    ws: WebSocketUpgrade,
    query: axum::extract::Query<TokenQuery>,
    headers: HeaderMap,
    State(state): State<AppState>,
) -> Response {
    let token = ws_token_from(&query, &headers);
    plain_ws::configure(ws).on_upgrade(move |socket| {
        let tracked = state.clone();
        async move { tracked.spawn_connection(serve(socket, state, token)) }
    })
}

async fn serve(socket: axum::extract::ws::WebSocket, state: AppState, token: Option<String>) {
    let (mut sink, mut stream) = socket.split();
    let (conn, mut inbox, session_end) = match authenticate_socket(&state, token.as_deref()).await {
        Ok(authenticated) => authenticated,
        Err(stop) => return plain_ws::finish(&mut sink, stop).await,
    };
    let core = state.core();
    if let Err(err) = core.watch_presence(&conn) {
        err.log_if_internal();
        return plain_ws::finish(&mut sink, Stop::Gone).await;
    }
    let shutdown = state.shutdown_token().clone();
    let overflowed = inbox.overflowed.clone();
    let mut frames = vec![snapshot_frame(core)];
    let mut last_sent = Instant::now();
    let mut pending: Option<Instant> = None;
    let stop = loop {
        if let Err(stop) = plain_ws::write(
            &mut sink,
            std::mem::take(&mut frames),
            &shutdown,
            &overflowed,
        )
        .await
        {
            break stop;
        }
        tokio::select! {
            () = shutdown.cancelled() => break Stop::SHUTDOWN,
            () = overflowed.cancelled() => break Stop::TOO_SLOW,
            () = tokio::time::sleep_until(session_end) => break super::SESSION_EXPIRED,
            () = plain_ws::sleep_until(pending) => {
                pending = None;
                last_sent = Instant::now();
                frames.push(snapshot_frame(core));
            }
            delivery = inbox.queue.recv() => match delivery {
                Some(delivery) if delivery.event == Event::PresenceChanged => {
                    pending.get_or_insert_with(|| (last_sent + COALESCE).max(Instant::now()));
                }
                Some(_) => {}
                None => break Stop::Gone,
            },
            frame = stream.next() => match frame {
                // The channel is server to client; anything a client sends is ignored.
                Some(Ok(Message::Close(_))) | None => break Stop::Gone,
                Some(Ok(_)) => {}
                Some(Err(err)) => break Stop::after_read_error(err),
            },
        }
    };
    plain_ws::finish(&mut sink, stop).await;
    drop(conn);
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
    serde_json::to_string(&ChannelMessage::OnlineUsersUpdate(snapshot(core))).expect("serialises")
}

/// `GET /qf/users/online`: the same snapshot over REST, for clients whose socket is down.
/// Authenticated like `/qf/auth/ws-token` (a JWT as bearer token or session cookie).
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<OnlineUsersUpdate>, ApiError> {
    crate::http::caller::identify(&state, &headers).await?;
    Ok(Json(snapshot(state.core())))
}
