//! The Socket.IO v4 dialects, on socketioxide at `/socket.io/` (WebSocket and long-polling):
//! contracts 001 and 004 share the default namespace (`chat.rs`), contract 002 adds its
//! events there and owns `/media` and `/notifications` (`studio.rs`).
//!
//! Every socket of every namespace is one core connection ([`Peer`]). Its events come from
//! the core's hub, like any other dialect's, and a pump task renders them (`render.rs`) in
//! the socket's own contract; socketioxide's own rooms are only bookkeeping for
//! `getConnectionInfo`. So a message posted by a `/ws` client reaches Socket.IO members of
//! the room and the reverse, each in its own shape.

pub mod chat;
pub mod head;
pub mod publish;
pub mod recovery;
pub mod render;
pub mod studio;
pub mod turn;

use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use serde_json::{json, Value};
use socketioxide::{extract::SocketRef, layer::SocketIoLayer, socket::DisconnectReason, SocketIo};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::{AuthError, Identity},
    core::{
        error::logged,
        events::{Delivery, Event, Topic},
        hub::Inbox,
        mailbox, now_ms, Connection, CoreError,
    },
    lock,
    ratelimit::Bucket,
    AppState,
};

/// The dialect's name in logs and metrics.
const DIALECT: &str = "socket.io";

/// Contract 004's Engine.IO timings.
pub const PING_INTERVAL: Duration = Duration::from_millis(25_000);
pub const PING_TIMEOUT: Duration = Duration::from_millis(60_000);
/// Largest Engine.IO payload accepted, over either transport: the same bound as a `/ws`
/// frame. Over WebSocket it bounds each message and frame, which engineioxide would
/// otherwise take up to 64 MiB and 16 MiB, before any token is seen.
pub const MAX_PAYLOAD_BYTES: u64 = confab_shared::limits::MAX_FRAME_BYTES as u64;

/// Event names Socket.IO clients reserve for themselves: a room event by one of these names
/// would never reach the application, so the publish API refuses them.
pub const RESERVED_EVENT_NAMES: &[&str] = &[
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "error",
    "newListener",
    "removeListener",
];

/// Which contract a default-namespace socket speaks. 001 and 004 use the same event names
/// with different payloads, so a socket is told apart by the shape of its first chat event
/// (a bare room id is 004's, an object with `userId` is 001's) and is rendered in that
/// contract from then on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Undecided,
    Chat001,
    Discussion004,
}

/// Which namespace a socket is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    Default,
    Media,
    Notifications,
}

/// One Socket.IO socket as the server keeps it: its core connection and per-socket state. Made by the namespace's
/// connect middleware (so the socket is signed in before its first event can arrive), kept
/// in the socket's extensions, and dropped (signing the connection out) when it disconnects.
///
/// socketioxide sends the CONNECT packet when the middleware returns and only then spawns
/// the connect handler, and it drops an event that arrives before a handler for its name
/// exists. So the middleware registers every handler ([`admit`]), and the connect handler
/// only greets and starts the pump ([`connected`]); the greeting holds the socket's first
/// turn, so events sent at once are answered after it, in the order sent.
pub struct Peer {
    pub conn: Connection,
    pub namespace: Namespace,
    pub connected_at_ms: i64,
    state: AppState,
    flavor: Mutex<Flavor>,
    /// When the signed-in identity's token expires (Unix seconds).
    expires_at: Mutex<Option<i64>>,
    /// Wakes the pump when the identity (and so the expiry or the backlog) changes.
    auth_changed: Notify,
    /// Notifications stored while the user had no socket are still to be sent.
    backlog_pending: AtomicBool,
    limiter: Mutex<Bucket>,
    /// The mailbox, until the pump takes it.
    inbox: Mutex<Option<Inbox>>,
    /// What the handshake's token came to, for the connect handler to announce.
    handshake: Mutex<Option<Handshake>>,
    /// Cancelled when the socket disconnects: the pump stops and drops its handle.
    closed: CancellationToken,
    /// The socket's events in arrival order, each handled in its turn.
    line: Mutex<turn::Line>,
    /// The first turn, held from admission until the connect handler has greeted.
    greeting: Mutex<Option<turn::Turn>>,
    /// How far the mailbox has been filled, and how far the pump has emitted it: a handler
    /// that answers waits for the one to reach the other (see `after_deliveries_so_far`).
    watermark: mailbox::Watermark,
    emitted: Emitted,
    /// With connection state recovery, where the socket is in its rooms; every event it is
    /// sent ends with the offset this makes. `None`: the socket has no `pid`.
    positions: Mutex<Option<recovery::Positions>>,
    /// What a recovered socket missed, to send before anything live.
    missed: Mutex<recovery::Missed>,
    /// The dialect's event and byte counters, held for the socket's emits.
    sent: metrics::Counter,
    bytes: metrics::Counter,
}

/// An event the socket could not take: socketioxide's buffer is full or the socket is gone.
#[derive(Debug)]
pub struct NotSent;

/// The outcome of a handshake token.
#[derive(Debug, Clone)]
pub enum Handshake {
    Authenticated(Identity),
    Refused(&'static str),
}

impl Peer {
    pub fn flavor(&self) -> Flavor {
        *lock(&self.flavor)
    }

    /// Fixes the socket's contract on its first chat event; later events keep it.
    pub fn decide(&self, flavor: Flavor) -> Flavor {
        let mut current = lock(&self.flavor);
        if *current == Flavor::Undecided {
            *current = flavor;
        }
        *current
    }

    /// Takes a token from the socket's inbound rate limit; `false` when over it.
    pub fn allow(&self) -> bool {
        let allowed = lock(&self.limiter).try_take(std::time::Instant::now());
        if !allowed {
            crate::metrics::rate_limited("messages");
        }
        allowed
    }

    /// Signs the socket in as `identity` until its token expires.
    pub async fn sign_in(&self, identity: &Identity) -> crate::core::CoreResult<()> {
        let core = self.state.core();
        if core.user(&self.conn).map(|u| u.user_id) == Some(identity.profile.user_id.clone()) {
            core.update_profile(&self.conn, identity.profile.clone())
                .await?;
        } else {
            let admission = core.admit().await;
            core.sign_in(&self.conn, identity.profile.clone(), &admission)
                .await?;
            // Signing in as someone else leaves every room.
            if let Some(positions) = lock(&self.positions).as_mut() {
                *positions = recovery::Positions::default();
            }
        }
        *lock(&self.expires_at) = Some(identity.expires_at);
        if self.namespace == Namespace::Notifications {
            core.watch_user(&self.conn)?;
            self.backlog_pending.store(true, Ordering::Release);
        }
        self.auth_changed.notify_one();
        Ok(())
    }

    pub fn sign_out(&self) {
        self.state.core().sign_out(&self.conn);
        *lock(&self.expires_at) = None;
        self.auth_changed.notify_one();
    }

    pub fn user(&self) -> Option<crate::core::model::Profile> {
        self.state.core().user(&self.conn)
    }

    /// Emits an event. A socket with a `pid` gets its offset as the last argument.
    pub fn emit<T: serde::Serialize + ?Sized>(
        &self,
        socket: &SocketRef,
        event: &str,
        payload: &T,
    ) -> Result<(), NotSent> {
        self.emit_at(socket, event, payload, None)
            .map_err(|()| NotSent)
    }

    /// Emits an event that sends room `key` up to `seq` (a join's history): the socket's
    /// offset says so from this event on.
    pub fn emit_history<T: serde::Serialize + ?Sized>(
        &self,
        socket: &SocketRef,
        event: &str,
        payload: &T,
        key: &str,
        seq: u64,
    ) {
        let _ = self.emit_at(socket, event, payload, Some((key, seq)));
    }

    /// The one place events leave for the socket: the offset is made and the event sent
    /// under one lock, so offsets reach the client in the order they were made.
    fn emit_at<T: serde::Serialize + ?Sized>(
        &self,
        socket: &SocketRef,
        event: &str,
        payload: &T,
        sent_up_to: Option<(&str, u64)>,
    ) -> Result<(), ()> {
        let mut positions = lock(&self.positions);
        let emitted = match positions.as_mut() {
            None => socket.emit(event, payload),
            Some(positions) => {
                if let Some((key, seq)) = sent_up_to {
                    positions.advance(key, seq);
                }
                let offset = positions.offset(self.flavor());
                socket.emit(event, &(payload, offset))
            }
        };
        emitted.map_err(drop)?;
        self.sent.increment(1);
        Ok(())
    }

    /// Emits a chat message's events, unless the socket was sent the message already
    /// (replayed after a reconnect, or in a join's history).
    fn emit_message(
        &self,
        socket: &SocketRef,
        emits: &render::Emits,
        key: &str,
        seq: u64,
    ) -> Result<(), ()> {
        let mut positions = lock(&self.positions);
        let offset = match positions.as_mut() {
            None => None,
            Some(positions) => {
                if !positions.admit(key, seq) {
                    return Ok(());
                }
                Some(positions.offset(self.flavor()))
            }
        };
        for (event, payload) in emits.iter() {
            let emitted = match &offset {
                None => socket.emit(event, payload),
                Some(offset) => socket.emit(event, &(payload, offset)),
            };
            emitted.map_err(drop)?;
            self.sent.increment(1);
            self.bytes.increment(payload.get().len() as u64);
        }
        Ok(())
    }

    /// The socket stopped following room `key`.
    pub fn forget_room(&self, key: &str) {
        if let Some(positions) = lock(&self.positions).as_mut() {
            positions.forget(key);
        }
    }

    /// The rooms the socket's offset names.
    fn followed_rooms(&self) -> Vec<String> {
        lock(&self.positions)
            .as_ref()
            .map(|positions| positions.keys().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// Sends a recovered socket what it missed, before anything live.
    fn send_missed(&self, socket: &SocketRef) -> Result<(), ()> {
        let missed = std::mem::take(&mut *lock(&self.missed));
        for message in missed {
            let (key, seq) = (message.room_key.clone(), message.seq);
            let delivery = Delivery::new(Topic::Room(key.clone()), Event::Message(message), None);
            self.emit_message(socket, &render::delivery(self, &delivery), &key, seq)?;
        }
        Ok(())
    }

    /// Waits until the pump has emitted every delivery already in the mailbox, so that an
    /// answer emitted next follows them: a refused `send_message` is answered after the
    /// broadcast of the message before it, which the store's writer had published when its
    /// turn ended. Handlers emit answers and the pump emits deliveries, each from a task of
    /// its own, so without this an answer can overtake a broadcast. Gives up after
    /// [`DELIVERY_WAIT`] (a pump that far behind is about to disconnect) or on disconnect.
    pub async fn after_deliveries_so_far(&self) {
        let target = self.watermark.pushed();
        tokio::select! {
            () = self.emitted.reached(target) => {}
            () = self.closed.cancelled() => {}
            () = tokio::time::sleep(DELIVERY_WAIT) => {}
        }
    }
}

/// How many deliveries the pump has emitted, for the answers that wait for them.
///
/// A counter and a `Notify` inline in the peer, rather than a `watch` channel: that is an
/// allocation of its own, about 400 bytes, which every socket kept for its whole life.
#[derive(Default)]
struct Emitted {
    count: AtomicU64,
    advanced: Notify,
}

impl Emitted {
    fn advance_to(&self, count: u64) {
        self.count.store(count, Ordering::Release);
        self.advanced.notify_waiters();
    }

    /// Returns once `target` deliveries have been emitted.
    async fn reached(&self, target: u64) {
        loop {
            let advanced = self.advanced.notified();
            tokio::pin!(advanced);
            // Registered before the count is read, so an advance in between is not missed.
            advanced.as_mut().enable();
            if self.count.load(Ordering::Acquire) >= target {
                return;
            }
            advanced.await;
        }
    }
}

/// The Socket.IO layer, with the three namespaces registered. It closes every socket when
/// the server shuts down.
pub fn layer(state: &AppState) -> SocketIoLayer {
    let (layer, io) = SocketIo::builder()
        .ping_interval(PING_INTERVAL)
        .ping_timeout(PING_TIMEOUT)
        .max_payload(MAX_PAYLOAD_BYTES)
        .ws_max_message_size(confab_shared::limits::MAX_FRAME_BYTES)
        .ws_max_frame_size(confab_shared::limits::MAX_FRAME_BYTES)
        .max_buffer_size(state.config().outbound_queue)
        // The same small read buffer as the plain WebSockets' (see there why).
        .ws_read_buffer_size(crate::dialects::plain_ws::READ_BUFFER_BYTES)
        .with_state(state.clone())
        .build_layer();
    chat::register(&io);
    studio::register(&io);
    let shutdown = state.shutdown_token().clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        io.close().await;
    });
    layer
}

/// How long an answer waits for the deliveries before it to be emitted, at most.
const DELIVERY_WAIT: Duration = Duration::from_secs(1);

/// A new peer for a socket of `namespace`: a core connection, not yet delivering.
pub fn new_peer(state: &AppState, namespace: Namespace) -> Arc<Peer> {
    let (conn, inbox) = state.core().connect();
    let watermark = inbox.queue.watermark();
    let config = state.config();
    let peer = Arc::new(Peer {
        conn,
        namespace,
        connected_at_ms: now_ms(),
        state: state.clone(),
        flavor: Mutex::new(Flavor::Undecided),
        expires_at: Mutex::new(None),
        auth_changed: Notify::new(),
        backlog_pending: AtomicBool::new(false),
        limiter: Mutex::new(Bucket::new(config.message_burst, config.message_rate)),
        inbox: Mutex::new(Some(inbox)),
        handshake: Mutex::new(None),
        closed: CancellationToken::new(),
        line: Mutex::new(turn::Line::new(config.message_rate, config.message_burst)),
        greeting: Mutex::new(None),
        watermark,
        emitted: Emitted::default(),
        positions: Mutex::new(None),
        missed: Mutex::new(Vec::new()),
        sent: metrics::counter!(crate::metrics::MESSAGES_SENT, "dialect" => DIALECT),
        bytes: metrics::counter!(crate::metrics::BYTES_SENT, "dialect" => DIALECT),
    });
    *lock(&peer.greeting) = turn::Turn::take(&peer.line).ok();
    peer
}

/// Admits a socket from its namespace's connect middleware, before the client is told it is
/// connected: `handlers` registers the namespace's event handlers, then its [`Peer`] is
/// attached. An event the client sends as soon as it is connected finds both.
pub fn admit(socket: &SocketRef, peer: Arc<Peer>, handlers: impl FnOnce(&SocketRef)) {
    handlers(socket);
    metrics::gauge!(crate::metrics::CONNECTIONS_OPEN, "dialect" => DIALECT).increment(1.0);
    socket.on_disconnect(async |socket: SocketRef, reason: DisconnectReason| {
        if let Some(peer) = socket.extensions.remove::<Arc<Peer>>() {
            peer.closed.cancel();
            metrics::gauge!(crate::metrics::CONNECTIONS_OPEN, "dialect" => DIALECT)
                .decrement(1.0);
            let reason_label = format!("{reason:?}");
            metrics::counter!(crate::metrics::CONNECTIONS_CLOSED, "dialect" => DIALECT, "close" => reason_label)
                .increment(1);
            let user = peer.state.core().user(&peer.conn).map(|user| user.user_id);
            tracing::info!(
                dialect = DIALECT,
                namespace = ?peer.namespace,
                conn = peer.conn.id().0,
                user = user.as_deref().unwrap_or(""),
                reason = ?reason,
                duration_ms = now_ms() - peer.connected_at_ms,
                "socket closed"
            );
        }
    });
    socket.extensions.insert(peer);
}

/// The connect handler of every namespace: greets the socket (`welcome`, and what its
/// handshake token came to), lets its events be handled, and starts delivering the core's
/// events to it until it disconnects.
pub async fn connected(socket: SocketRef) {
    let Some(peer) = peer_of(&socket) else {
        return;
    };
    studio::greet(&socket, &peer);
    if peer.send_missed(&socket).is_err() {
        let _ = socket.clone().disconnect();
        return;
    }
    drop(lock(&peer.greeting).take());
    let inbox = lock(&peer.inbox).take();
    if let Some(inbox) = inbox {
        let state = peer.state.clone();
        state.spawn_connection(pump(socket.clone(), Arc::clone(&peer), inbox));
    }
}

/// The socket's peer; `None` once it has disconnected.
pub fn peer_of(socket: &SocketRef) -> Option<Arc<Peer>> {
    socket.extensions.get::<Arc<Peer>>()
}

/// Deliveries emitted in one turn of a pump, at most: a socket that fell behind catches up
/// in batches, and the other tasks get their turn between them.
const DELIVERIES_PER_TURN: usize = 64;

/// Delivers the core's events to the socket until it disconnects. A socket that cannot keep
/// up (its mailbox or socketioxide's buffer is full) is disconnected rather than let grow.
async fn pump(socket: SocketRef, peer: Arc<Peer>, mut inbox: Inbox) {
    // Notifications sent from the backlog, not to be sent again when they also arrive live.
    let mut from_backlog = HashSet::new();
    // Made once, not on every turn: a pump turns once per delivery, and a new timer or
    // cancellation waiter each time costs a good part of what the delivery itself does.
    let closed = peer.closed.cancelled();
    let ended = inbox.ending.wait();
    // Deliveries taken out of the mailbox and emitted: the pump is its only receiver.
    let mut emitted: u64 = 0;
    let auth_changed = peer.auth_changed.notified();
    let expiry_timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(closed, ended, auth_changed, expiry_timer);
    // The expiry the timer is set for (`None` in it: signed out, no timer).
    let mut timer_set_for: Option<Option<i64>> = None;
    loop {
        // Boxed, like every path that waits on the store: the pump's future is what each
        // idle socket keeps, so it holds only what waiting for deliveries needs.
        if peer.backlog_pending.swap(false, Ordering::AcqRel)
            && Box::pin(send_backlog(&socket, &peer, &mut from_backlog))
                .await
                .is_err()
        {
            break;
        }
        let expires_at = *lock(&peer.expires_at);
        if timer_set_for != Some(expires_at) {
            timer_set_for = Some(expires_at);
            if let Some(expires_at) = expires_at {
                expiry_timer.as_mut().reset(expiry_instant(expires_at));
            }
        }
        tokio::select! {
            () = &mut closed => break,
            end = &mut ended => {
                match end {
                    mailbox::End::Overflowed => {
                        tracing::debug!(sid = %socket.id, "socket too slow; disconnecting");
                        let _ = socket.clone().disconnect();
                    }
                    mailbox::End::Revoked => revoke(&socket, &peer),
                    // socketioxide closes every socket itself (`layer`).
                    mailbox::End::ShuttingDown => {}
                }
                break;
            }
            () = &mut auth_changed => {
                auth_changed.set(peer.auth_changed.notified());
            }
            () = &mut expiry_timer, if expires_at.is_some() => expire(&socket, &peer),
            deliveries = inbox.queue.recv_many(DELIVERIES_PER_TURN) => {
                if deliveries.is_empty() {
                    break;
                }
                for delivery in &deliveries {
                    if emit_delivery(&socket, &peer, delivery, &from_backlog)
                        .await
                        .is_err()
                    {
                        let _ = socket.clone().disconnect();
                        return;
                    }
                }
                emitted += deliveries.len() as u64;
                peer.emitted.advance_to(emitted);
            }
        }
    }
}

/// Emits one delivery to the socket; `Err` when socketioxide's buffer is full or the socket
/// is gone.
async fn emit_delivery(
    socket: &SocketRef,
    peer: &Peer,
    delivery: &Delivery,
    from_backlog: &HashSet<String>,
) -> Result<(), ()> {
    if let Event::Notification(notification) = &delivery.event {
        if from_backlog.contains(&notification.id) {
            return Ok(());
        }
        return Box::pin(emit_notification(peer, &notification.id, || {
            emit_each(socket, peer, &render::delivery(peer, delivery))
        }))
        .await;
    }
    let emits = render::delivery(peer, delivery);
    if let Event::Message(message) = &delivery.event {
        return peer.emit_message(socket, &emits, &message.room_key, message.seq);
    }
    emit_each(socket, peer, &emits)?;
    // The hub has ended the socket's subscription; its own bookkeeping follows.
    let ended = match &delivery.event {
        Event::RoomClosed { room_key } => Some(room_key),
        Event::MemberRemoved { room_key, user }
            if peer.user().is_some_and(|me| me.user_id == user.user_id) =>
        {
            Some(room_key)
        }
        _ => None,
    };
    if let Some(room_key) = ended {
        socket.leave(room_key.clone());
        peer.forget_room(room_key);
    }
    Ok(())
}

/// Emits a delivery's renderings in order; an error once one could not be emitted.
fn emit_each(socket: &SocketRef, peer: &Peer, emits: &render::Emits) -> Result<(), ()> {
    emits
        .iter()
        .try_for_each(|(event, payload)| peer.emit_at(socket, event, payload, None))
}

/// Sends the notifications stored while the user had no notification socket.
async fn send_backlog(
    socket: &SocketRef,
    peer: &Peer,
    sent: &mut HashSet<String>,
) -> Result<(), ()> {
    let core = peer.state.core();
    // Signed out meanwhile, or storage failed: nothing to send now.
    let Some(backlog) = logged(
        core.undelivered_notifications(&peer.conn, peer.connected_at_ms)
            .await,
    ) else {
        return Ok(());
    };
    for notification in backlog {
        let emitted = emit_notification(peer, &notification.id, || {
            let payload = render::notification_002(&notification);
            peer.emit(socket, "notification", &payload)
        });
        if emitted.await.is_err() {
            let _ = socket.clone().disconnect();
            return Err(());
        }
        sent.insert(notification.id);
    }
    Ok(())
}

/// Marks a notification delivered before `emit` hands it to socketioxide, so that a socket
/// of the user that connects meanwhile does not send it from the backlog too; if the
/// hand-over fails, unmarks it when this call was the one that marked it.
async fn emit_notification<E>(
    peer: &Peer,
    id: &str,
    emit: impl FnOnce() -> Result<(), E>,
) -> Result<(), E> {
    let core = peer.state.core();
    // A store error counts as not marked.
    let marked = logged(core.mark_delivered(id).await).unwrap_or(false);
    let emitted = emit();
    if emitted.is_err() && marked {
        logged(core.unmark_delivered(id).await);
    }
    emitted
}

fn expiry_instant(expires_at: i64) -> tokio::time::Instant {
    let left_ms = (expires_at.saturating_mul(1000) - now_ms()).max(0);
    tokio::time::Instant::now() + Duration::from_millis(left_ms.unsigned_abs())
}

/// A peer's token expired. The default namespace refuses expired tokens, so its sockets
/// are disconnected; contract 002's namespaces keep the connection and say `authError`.
fn expire(socket: &SocketRef, peer: &Peer) {
    peer.sign_out();
    match peer.namespace {
        Namespace::Default => {
            let _ = socket.clone().disconnect();
        }
        Namespace::Media | Namespace::Notifications => {
            let _ = peer.emit(socket, "authError", &json!({"message": "Token expired"}));
        }
    }
}

/// The socket's token: the handshake's `auth.token`, else `Authorization: Bearer`.
pub fn handshake_token(socket: &SocketRef, auth: Option<&Value>) -> Option<String> {
    if let Some(token) = auth
        .and_then(|auth| auth.get("token"))
        .and_then(Value::as_str)
        .filter(|token| !token.is_empty())
    {
        return Some(token.to_owned());
    }
    crate::auth::caller::jwt_from_headers(&socket.req_parts().headers).map(str::to_owned)
}

/// The text for a verified token whose sign-in failed: a ban, or the server's failure
/// (whose cause is logged).
pub fn sign_in_refusal(error: &CoreError) -> &'static str {
    error.log_if_internal();
    match error {
        CoreError::Banned => BANNED_TEXT,
        _ => "Authentication failed",
    }
}

/// What a banned user's sockets are told, on connecting and when the ban closes them.
const BANNED_TEXT: &str = "Account banned";

/// A moderator banned the peer's user: every namespace says `authError`, as 002's do for a
/// refused token, and the socket is disconnected.
fn revoke(socket: &SocketRef, peer: &Peer) {
    peer.sign_out();
    let _ = peer.emit(socket, "authError", &json!({"message": BANNED_TEXT}));
    let _ = socket.clone().disconnect();
}

/// The contract's text for a refused token.
pub fn refusal_text(error: &AuthError) -> &'static str {
    match error {
        AuthError::Expired => "Token expired",
        _ => "Invalid token",
    }
}
