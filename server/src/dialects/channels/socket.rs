//! The one loop of every `/qf` socket. The token is checked first; then the [`Channel`]
//! (online users, notifications, a party) says what to send on open and what each core
//! event becomes, and this loop does the rest the same way for all of them: writes that a
//! peer who stops reading cannot pin, shutdown (1001), overflow (1013), the end of the
//! session behind the token (1008), frames over the limit (1009), and closing.

use std::future::Future;

use axum::response::Response;
use confab_shared::channels::ChannelMessage;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::{authenticate_socket, BANNED, SESSION_EXPIRED};
use crate::dialects::plain_ws::close_code;
use crate::{
    core::{events::Event, Connection, CoreError},
    dialects::{
        direct_ws::{Socket, Upgrade},
        plain_ws::{self, Stop},
    },
    AppState,
};

/// The close for a socket whose channel failed on the server's side.
pub const INTERNAL_ERROR: Stop = Stop::Close(close_code::ERROR, "internal error");

/// [`INTERNAL_ERROR`] for a failure of the core, whose cause is logged if it is internal.
pub fn internal(err: CoreError) -> Stop {
    err.log_if_internal();
    INTERNAL_ERROR
}

/// A message as the frame that carries it.
pub fn frame(message: ChannelMessage) -> String {
    serde_json::to_string(&message).expect("channel messages serialise")
}

/// What one kind of `/qf` socket sends. Everything a client sends on these sockets is
/// ignored (they are server to client), except a close.
pub trait Channel: Send + 'static {
    /// The channel's name in logs.
    const NAME: &'static str;

    /// Subscribes the signed-in connection to what the channel follows and returns the
    /// frames to send first. Subscribing comes before reading any snapshot, so nothing that
    /// happens in between is missed. `Err` closes the socket instead.
    fn open(
        &mut self,
        state: &AppState,
        conn: &Connection,
    ) -> impl Future<Output = Result<Vec<String>, Stop>> + Send;

    /// Adds the frames a core event calls for. `Err` closes the socket after those frames.
    fn on_event(
        &mut self,
        state: &AppState,
        event: &Event,
        frames: &mut Vec<String>,
    ) -> impl Future<Output = Result<(), Stop>> + Send;

    /// When [`Channel::on_deadline`] is due, if ever.
    fn deadline(&self) -> Option<Instant> {
        None
    }

    /// Adds the frames due at the deadline.
    fn on_deadline(&mut self, _state: &AppState, _frames: &mut Vec<String>) {}

    /// Hears whether the frames added since the last write were written (`true`) or not,
    /// because the socket stopped first (`false`).
    fn after_write(
        &mut self,
        _state: &AppState,
        _written: bool,
    ) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Answers a `/qf` socket's upgrade: the socket runs `channel` under `token`, tracked so
/// that shutdown waits for it.
pub fn accept<C: Channel>(
    upgrade: Upgrade,
    state: AppState,
    token: Option<String>,
    channel: C,
) -> Response {
    plain_ws::accept(
        upgrade,
        state,
        C::NAME,
        move |mut socket, state| async move {
            let stop = run(&mut socket, &state, token, channel).await;
            // Boxed: it runs once, at the end, and need not size every idle socket's task.
            Box::pin(plain_ws::finish(&mut socket, stop)).await;
        },
    )
}

/// The socket's life until it must stop, and how.
async fn run(
    socket: &mut Socket,
    state: &AppState,
    token: Option<String>,
    mut channel: impl Channel,
) -> Stop {
    let (conn, mut inbox, session_end) = match authenticate_socket(state, token.as_deref()).await {
        Ok(authenticated) => authenticated,
        Err(stop) => return stop,
    };
    plain_ws::record_connection(&conn);
    let mut frames = match channel.open(state, &conn).await {
        Ok(frames) => frames,
        Err(stop) => {
            channel.after_write(state, false).await;
            return stop;
        }
    };
    let ends = plain_ws::Ends::new(&inbox.ending, BANNED);
    loop {
        let written = plain_ws::write(socket, &batch(&mut frames), &ends).await;
        channel.after_write(state, written.is_ok()).await;
        if let Err(stop) = written {
            return stop;
        }
        let stop = tokio::select! {
            stop = ends.reached() => stop,
            () = tokio::time::sleep_until(session_end) => SESSION_EXPIRED,
            () = plain_ws::sleep_until(channel.deadline()) => {
                channel.on_deadline(state, &mut frames);
                continue;
            }
            delivery = inbox.queue.recv() => match delivery {
                Some(delivery) => match channel.on_event(state, &delivery.event, &mut frames).await {
                    Ok(()) => continue,
                    Err(stop) => {
                        // A socket closing because of an event (its user left the party)
                        // still sends what that event said first.
                        let written = plain_ws::write(socket, &batch(&mut frames), &ends).await;
                        channel.after_write(state, written.is_ok()).await;
                        stop
                    }
                },
                None => Stop::Gone,
            },
            frame = socket.recv() => match frame {
                Some(Ok(Message::Close(_))) | None => Stop::Gone,
                Some(Ok(_)) => continue,
                Some(Err(err)) => Stop::after_ws_error(&err),
            },
        };
        return stop;
    }
}

/// The frames a channel added, taken out as one write's batch (without copying them).
fn batch(frames: &mut Vec<String>) -> Vec<Utf8Bytes> {
    frames.drain(..).map(Utf8Bytes::from).collect()
}
