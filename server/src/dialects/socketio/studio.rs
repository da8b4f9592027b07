//! Contract 002: `welcome` and authentication on every namespace, rooms with acks,
//! connection info, ping and heartbeat; `/notifications` delivers the user's notifications
//! and `/media` the media jobs a socket subscribed to. On `/media` and `/notifications` a
//! refused token leaves the connection open, unauthenticated, with an `authError`.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};
use socketioxide::{
    extract::{AckSender, SocketRef, State, TryData},
    handler::ConnectHandler,
    SocketIo,
};

use super::{
    admit, connected, handshake_token, new_peer, peer_of, refusal_text, turn::Turn, Handshake,
    Namespace, Peer,
};
use crate::{
    auth::Identity,
    core::{now_ms, CoreError, IfMissing},
    lock,
    timefmt::iso8601_millis,
    AppState,
};

/// Room type of rooms created by `joinRoom`.
pub const STUDIO_ROOM_TYPE: &str = "studio";

pub fn register(io: &SocketIo) {
    let namespaces = [
        ("/media", Namespace::Media, media_handlers as fn(&SocketRef)),
        ("/notifications", Namespace::Notifications, register_common),
    ];
    for (path, namespace, handlers) in namespaces {
        let middleware = move |socket: SocketRef,
                               TryData(auth): TryData<Value>,
                               State(state): State<AppState>| async move {
            admit_to(&socket, &state, namespace, handlers, auth.ok()).await
        };
        io.ns(path, connected.with(middleware));
    }
}

fn media_handlers(socket: &SocketRef) {
    register_common(socket);
    socket.on("subscribeMedia", subscribe_media);
    socket.on("unsubscribeMedia", unsubscribe_media);
}

/// `/media` and `/notifications` let every connection in; a handshake token is checked and
/// the socket signed in before it connects, with the namespace's `handlers`. The outcome is
/// announced once connected.
async fn admit_to(
    socket: &SocketRef,
    state: &AppState,
    namespace: Namespace,
    handlers: fn(&SocketRef),
    auth: Option<Value>,
) -> Result<(), std::convert::Infallible> {
    let peer = new_peer(state, namespace);
    if let Some(token) = handshake_token(socket, auth.as_ref()) {
        let handshake = match state.verifier().verify(&token).await {
            Ok(identity) => match peer.sign_in(&identity).await {
                Ok(()) => Handshake::Authenticated(identity),
                Err(err) => Handshake::Refused(super::sign_in_refusal(&err)),
            },
            Err(err) => Handshake::Refused(refusal_text(&err)),
        };
        *lock(&peer.handshake) = Some(handshake);
    }
    admit(socket, peer, handlers);
    Ok(())
}

/// `welcome`, then what the handshake token came to: `authenticated` or `authError`.
pub fn greet(socket: &SocketRef, peer: &Peer) {
    let _ = peer.emit(
        socket,
        "welcome",
        &json!({
            "message": "Welcome to Confab",
            "socketId": socket.id.to_string(),
            "serverTime": iso8601_millis(now_ms()),
        }),
    );
    let handshake = lock(&peer.handshake).take();
    match handshake {
        Some(Handshake::Authenticated(identity)) => announce(socket, peer, &identity),
        Some(Handshake::Refused(message)) => {
            let _ = peer.emit(socket, "authError", &json!({"message": message}));
        }
        None => {}
    }
}

/// Joins the signed-in socket to `user:{userId}` and says `authenticated`.
fn announce(socket: &SocketRef, peer: &Peer, identity: &Identity) {
    let profile = &identity.profile;
    socket.join(user_room(&profile.user_id));
    let mut payload = json!({
        "userId": profile.user_id,
        "authenticatedAt": iso8601_millis(now_ms()),
    });
    if !profile.email.is_empty() {
        payload["email"] = json!(profile.email);
    }
    let _ = peer.emit(socket, "authenticated", &payload);
}

/// Signs a connected socket in (the `authenticate` event) and announces it.
async fn authenticate_as(
    socket: &SocketRef,
    peer: &Peer,
    identity: &Identity,
) -> Result<(), CoreError> {
    if let Some(previous) = peer.user() {
        socket.leave(user_room(&previous.user_id));
    }
    peer.sign_in(identity).await?;
    announce(socket, peer, identity);
    Ok(())
}

fn user_room(user_id: &str) -> String {
    format!("user:{user_id}")
}

/// The events every namespace answers.
pub fn register_common(socket: &SocketRef) {
    socket.on("authenticate", authenticate);
    socket.on("logout", logout);
    socket.on("joinRoom", join_room);
    socket.on("leaveRoom", leave_room);
    socket.on("getConnectionInfo", connection_info);
    socket.on(
        "ping",
        async |socket: SocketRef, mut turn: Turn, ack: AckSender| {
            turn.wait().await;
            let payload = json!({"timestamp": now_ms()});
            let _ = ack.send(&payload);
            if let Some(peer) = peer_of(&socket) {
                let _ = peer.emit(&socket, "pong", &payload);
            }
        },
    );
    socket.on("heartbeat", heartbeat);
}

#[derive(Deserialize)]
struct Authenticate {
    token: String,
}

/// `authenticate` {token} → ack {success, userId | error}; `authenticated` or `authError`.
async fn authenticate(
    socket: SocketRef,
    mut turn: Turn,
    TryData(data): TryData<Value>,
    ack: AckSender,
) {
    turn.wait().await;
    let Some(peer) = peer_of(&socket) else {
        return;
    };
    let Some(request) = data
        .ok()
        .and_then(|value| serde_json::from_value::<Authenticate>(value).ok())
    else {
        let _ = ack.send(&json!({"success": false, "error": "authenticate takes {token}"}));
        return;
    };
    let identity = match peer.state.verifier().verify(&request.token).await {
        Ok(identity) => identity,
        Err(err) => {
            let message = refusal_text(&err);
            let _ = ack.send(&json!({"success": false, "error": message}));
            let _ = peer.emit(&socket, "authError", &json!({"message": message}));
            return;
        }
    };
    match authenticate_as(&socket, &peer, &identity).await {
        Ok(()) => {
            let _ = ack.send(&json!({"success": true, "userId": identity.profile.user_id}));
        }
        Err(err) => {
            let message = super::sign_in_refusal(&err);
            let _ = ack.send(&json!({"success": false, "error": message}));
        }
    }
}

/// `logout` → ack {success}, then `loggedOut`. The connection stays, unauthenticated.
async fn logout(socket: SocketRef, mut turn: Turn, ack: AckSender) {
    turn.wait().await;
    let Some(peer) = peer_of(&socket) else {
        return;
    };
    // Its `user:{userId}` room and every joined one.
    socket.leave_all();
    peer.sign_out();
    let _ = ack.send(&json!({"success": true}));
    let _ = peer.emit(&socket, "loggedOut", &json!({"message": "Logged out"}));
}

/// Room acks: {success, room} or {success: false, error}.
async fn room_action<F, Fut>(socket: &SocketRef, data: Option<Value>, ack: AckSender, action: F)
where
    F: FnOnce(Arc<Peer>, String) -> Fut,
    Fut: std::future::Future<Output = Result<(), CoreError>>,
{
    let Some(peer) = peer_of(socket) else {
        return;
    };
    let Some(room) = data.as_ref().and_then(Value::as_str).map(str::to_owned) else {
        let _ = ack.send(&json!({"success": false, "error": "a room name is required"}));
        return;
    };
    if !peer.allow() {
        let _ = ack.send(&json!({"success": false, "error": "rate limit exceeded; slow down"}));
        return;
    }
    let outcome = action(peer, room.clone()).await;
    acknowledge(ack, "room", &room, outcome);
}

/// The ack of a room or media action: {success, `key`: `id`} or {success: false, error}.
fn acknowledge(ack: AckSender, key: &str, id: &str, outcome: Result<(), CoreError>) {
    let answer = match outcome {
        Ok(()) => json!({"success": true, key: id}),
        Err(err) => {
            err.log_if_internal();
            let error = match err {
                CoreError::NotSignedIn => "Authentication required".to_owned(),
                other => other.to_string(),
            };
            json!({"success": false, "error": error})
        }
    };
    let _ = ack.send(&answer);
}

/// `joinRoom` "room" → ack, then `roomJoined` {room, success}. The socket then receives the
/// room's named events (`projectUpdate`, …) published through the API.
async fn join_room(
    socket: SocketRef,
    mut turn: Turn,
    TryData(data): TryData<Value>,
    ack: AckSender,
) {
    turn.wait().await;
    let joined = socket.clone();
    room_action(&socket, data.ok(), ack, async move |peer, room| {
        let if_missing = IfMissing::Create {
            room_type: STUDIO_ROOM_TYPE.into(),
        };
        let core = peer.state.core();
        let outcome = core
            .join_room(&peer.conn, &room, if_missing, &core.admit().await)
            .await?;
        joined.join(room.clone());
        let payload = json!({"room": room, "success": true});
        peer.emit_history(
            &joined,
            "roomJoined",
            &payload,
            &room,
            outcome.room.last_seq,
        );
        Ok(())
    })
    .await;
}

/// `leaveRoom` "room" → ack, then `roomLeft` {room, success}.
async fn leave_room(
    socket: SocketRef,
    mut turn: Turn,
    TryData(data): TryData<Value>,
    ack: AckSender,
) {
    turn.wait().await;
    let left = socket.clone();
    room_action(&socket, data.ok(), ack, async move |peer, room| {
        peer.state.core().leave_room(&peer.conn, &room).await?;
        left.leave(room.clone());
        peer.forget_room(&room);
        let _ = peer.emit(&left, "roomLeft", &json!({"room": room, "success": true}));
        Ok(())
    })
    .await;
}

/// `getConnectionInfo` → ack {socketId, connected, rooms, authenticated, connectedAt}.
async fn connection_info(socket: SocketRef, mut turn: Turn, ack: AckSender) {
    turn.wait().await;
    let Some(peer) = peer_of(&socket) else {
        return;
    };
    // As Socket.IO lists them: the socket's own room first.
    let mut rooms = vec![socket.id.to_string()];
    let mut joined: Vec<String> = socket.rooms().iter().map(ToString::to_string).collect();
    joined.sort();
    rooms.extend(joined);
    let _ = ack.send(&json!({
        "socketId": socket.id.to_string(),
        "connected": socket.connected(),
        "rooms": rooms,
        "authenticated": peer.user().is_some(),
        "connectedAt": iso8601_millis(peer.connected_at_ms),
    }));
}

/// `heartbeat` {timestamp?} → ack and `heartbeatAck` {timestamp, serverTime, latency}; the
/// latency is the server's time minus the client's, when the client sent one.
async fn heartbeat(
    socket: SocketRef,
    mut turn: Turn,
    TryData(data): TryData<Value>,
    ack: AckSender,
) {
    turn.wait().await;
    let now = now_ms();
    let latency = data
        .ok()
        .as_ref()
        .and_then(|value| value.get("timestamp"))
        .and_then(Value::as_i64)
        .map(|sent| (now - sent).max(0));
    let payload = json!({
        "timestamp": now,
        "serverTime": iso8601_millis(now),
        "latency": latency,
    });
    let _ = ack.send(&payload);
    if let Some(peer) = peer_of(&socket) {
        let _ = peer.emit(&socket, "heartbeatAck", &payload);
    }
}

/// `/media` `subscribeMedia` "mediaId" → ack {success, mediaId | error}.
async fn subscribe_media(
    socket: SocketRef,
    mut turn: Turn,
    TryData(data): TryData<Value>,
    ack: AckSender,
) {
    turn.wait().await;
    media_action(&socket, data.ok(), ack, |peer, media_id| {
        peer.state.core().watch_media(&peer.conn, media_id)
    });
}

/// `/media` `unsubscribeMedia` "mediaId" → ack {success, mediaId | error}.
async fn unsubscribe_media(
    socket: SocketRef,
    mut turn: Turn,
    TryData(data): TryData<Value>,
    ack: AckSender,
) {
    turn.wait().await;
    media_action(&socket, data.ok(), ack, |peer, media_id| {
        peer.state.core().unwatch_media(&peer.conn, media_id);
        Ok(())
    });
}

fn media_action(
    socket: &SocketRef,
    data: Option<Value>,
    ack: AckSender,
    action: impl FnOnce(&Peer, &str) -> Result<(), CoreError>,
) {
    let Some(peer) = peer_of(socket) else {
        return;
    };
    let Some(media_id) = data.as_ref().and_then(Value::as_str) else {
        let _ = ack.send(&json!({"success": false, "error": "a media id is required"}));
        return;
    };
    let outcome = action(&peer, media_id);
    acknowledge(ack, "mediaId", media_id, outcome);
}
