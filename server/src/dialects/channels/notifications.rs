//! `/qf/notifications/ws`: a user's notifications and pings, and
//! `POST /qf/users/online/{username}/ping`.
//!
//! Offline delivery: a notification is stored first; every notification socket of its user
//! that is open gets it at once. One created while none was open is sent, oldest first, when
//! the user's next notification socket connects; so is one created while that socket was
//! opening, even if another socket of the user was sent it meanwhile. Either way it is
//! marked delivered just before its frame is written, so that it is not sent on connect
//! again (it stays listed in `GET /api/notifications` with its read state), and unmarked
//! when the write fails, so that it is. Pings are not stored: they reach the sockets open
//! at the time.

use std::collections::HashSet;

use axum::{
    extract::{Path, State},
    response::Response,
    Json,
};
use confab_shared::{
    api::{PingRequest, PingResult},
    channels::{ChannelMessage, ChannelNotification, ChannelPing},
};

use super::{
    socket::{self, frame, internal, Channel},
    SocketToken,
};
use crate::{
    auth::is_safe_image_url,
    core::{error::logged, events::Event, model::Notification, now_ms, Connection},
    dialects::{direct_ws::Upgrade, plain_ws::Stop},
    rest::{ApiError, Caller, OptionalJsonBody},
    timefmt::iso8601_millis,
    AppState,
};

pub async fn socket(
    upgrade: Upgrade,
    SocketToken(token): SocketToken,
    State(state): State<AppState>,
) -> Response {
    let channel = NotificationChannel {
        opened_at_ms: now_ms(),
        ..NotificationChannel::default()
    };
    socket::accept(upgrade, state, token, channel)
}

/// The notifications channel: the backlog on open, then each notification and ping.
#[derive(Default)]
struct NotificationChannel {
    /// When the upgrade was answered: the client counts the socket open from then on.
    opened_at_ms: i64,
    /// Notifications sent from the backlog, not to be sent again when they also arrive live.
    from_backlog: HashSet<String>,
    /// Notifications this socket marked delivered whose frames are not written yet.
    unwritten: Vec<String>,
}

impl NotificationChannel {
    /// Marks `notification` delivered and adds its frame.
    async fn send(
        &mut self,
        state: &AppState,
        notification: &Notification,
        frames: &mut Vec<String>,
    ) {
        frames.push(notification_frame(notification));
        // `false`: another socket of the user marked it first; its write answers for it.
        if logged(state.core().mark_delivered(&notification.id).await) == Some(true) {
            self.unwritten.push(notification.id.clone());
        }
    }
}

impl Channel for NotificationChannel {
    const NAME: &'static str = "qf-notifications";

    async fn open(&mut self, state: &AppState, conn: &Connection) -> Result<Vec<String>, Stop> {
        let core = state.core();
        // Subscribe before reading the backlog, so nothing published in between is missed;
        // what arrives both ways is sent once.
        core.watch_user(conn).map_err(internal)?;
        let backlog = core
            .undelivered_notifications(conn, self.opened_at_ms)
            .await
            .map_err(internal)?;
        let mut frames = Vec::with_capacity(backlog.len());
        for notification in &backlog {
            self.send(state, notification, &mut frames).await;
            self.from_backlog.insert(notification.id.clone());
        }
        Ok(frames)
    }

    async fn on_event(
        &mut self,
        state: &AppState,
        event: &Event,
        frames: &mut Vec<String>,
    ) -> Result<(), Stop> {
        match event {
            Event::Notification(notification) if !self.from_backlog.contains(&notification.id) => {
                self.send(state, notification, frames).await;
            }
            Event::Ping {
                from_username,
                join_url,
                at_ms,
            } => frames.push(frame(ChannelMessage::Ping(ChannelPing {
                from_username: from_username.clone(),
                timestamp: iso8601_millis(*at_ms),
                join_url: join_url.clone(),
            }))),
            _ => {}
        }
        Ok(())
    }

    async fn after_write(&mut self, state: &AppState, written: bool) {
        if written {
            self.unwritten.clear();
            return;
        }
        for id in self.unwritten.drain(..) {
            logged(state.core().unmark_delivered(&id).await);
        }
    }
}

/// Contract 003's shape of a notification.
fn notification_frame(n: &Notification) -> String {
    frame(ChannelMessage::Notification(ChannelNotification {
        id: n.id.clone(),
        notification_type: n.notification_type.clone(),
        actor_username: n.actor_username.clone(),
        action: n.action.clone(),
        recipient_role: n.recipient_role.clone(),
        phrase_text: n.phrase_text.clone(),
        timestamp: iso8601_millis(n.created_at_ms),
    }))
}

/// `POST /qf/users/online/{username}/ping` {join_url?}: a `ping` to the notification
/// sockets of everyone online by that name. `404` when nobody by that name is online;
/// rate limited per sender. The body is optional: no body is a ping without a link.
pub async fn ping(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(username): Path<String>,
    OptionalJsonBody(request): OptionalJsonBody<PingRequest>,
) -> Result<Json<PingResult>, ApiError> {
    if !state.ping_limiter().try_take(&caller.profile.user_id).await {
        return Err(ApiError::RateLimited);
    }
    if let Some(url) = &request.join_url {
        if !is_safe_image_url(url) {
            return Err(ApiError::BadRequest(
                "join_url must be an http(s) URL".into(),
            ));
        }
    }
    match state
        .core()
        .ping(&caller.profile, &username, request.join_url)
    {
        0 => Err(ApiError::NotFound("no online user by that name".into())),
        delivered_to => Ok(Json(PingResult { delivered_to })),
    }
}
