//! Plumbing shared by the plain-WebSocket dialects (`/ws` and `/qf/*`): accepting the
//! upgrade, frame limits, writes that a peer who stops reading cannot pin, and closing.

use std::{future::Future, sync::Arc, time::Duration};

use futures_util::FutureExt;

use axum::response::Response;
use confab_shared::limits::MAX_FRAME_BYTES;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{protocol::WebSocketConfig, Utf8Bytes};
use tracing::Instrument;

use super::direct_ws::{Socket, Upgrade};
use crate::{
    core::{
        mailbox::{End, Ending},
        model::Profile,
        Connection,
    },
    AppState,
};

/// Bytes tungstenite reads at a time. Its default (128 KiB) is zero-filled before every
/// read, which cost most of a busy server's CPU, and was kept by every idle connection; at
/// 4 KiB it was still 40 % of an idle `/ws` connection's heap. A chat frame fits in one read
/// of 512 bytes, a larger one (up to the 64 KiB limit) takes several, and neither the
/// ingest nor the room-chat benchmark notices the difference (BENCHMARKS.md, sixteenth
/// round). A connection waiting for its peer now holds no read buffer at all (the patched
/// tungstenite gives it back).
pub const READ_BUFFER_BYTES: usize = 512;

/// The close codes the plain WebSockets send (RFC 6455 section 7.4.1; 1013 from IANA's
/// registry). axum has the same constants, but only with its own WebSocket, which Confab
/// does not use (`direct_ws.rs`), and that would build a second tungstenite into the server.
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const AWAY: u16 = 1001;
    pub const PROTOCOL: u16 = 1002;
    pub const INVALID: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const SIZE: u16 = 1009;
    pub const ERROR: u16 = 1011;
    pub const AGAIN: u16 = 1013;
}

/// Close code for a connection whose outbound queue overflowed: it cannot keep up. It may
/// reconnect and resume.
pub const CLOSE_TOO_SLOW: u16 = close_code::AGAIN;

/// How long a closing handshake may wait on a peer that stopped reading.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long one write may wait on a peer that stopped reading before the connection is
/// dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Answers a WebSocket upgrade; once switched, `serve` runs the socket as a tracked
/// connection (so shutdown waits for it), in a span naming its `dialect`, in which the
/// socket records its core connection and user ([`record_connection`], [`record_user`]).
/// The span is at debug level: with `confab_server=debug` in `CONFAB_LOG` every log line of
/// a socket says whose it is. At info it is off, because an enabled span is entered and
/// left on every poll of every connection, which cost `/ws` fan-out about half its best
/// step in the benchmark.
pub fn accept<F, Fut>(
    upgrade: Upgrade,
    state: AppState,
    dialect: &'static str,
    serve: F,
) -> Response
where
    F: FnOnce(Socket, AppState) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    // The frame-size limit and the read buffer size of every plain WebSocket.
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES));
    upgrade.on_upgrade(config, move |socket| async move {
        let span = tracing::debug_span!(
            "socket",
            dialect,
            conn = tracing::field::Empty,
            user = tracing::field::Empty
        );
        let tracked = state.clone();
        let started = Instant::now();
        let open = metrics::gauge!(crate::metrics::CONNECTIONS_OPEN, "dialect" => dialect);
        open.increment(1.0);
        // Combinators rather than async blocks around `serve`: a block would keep the
        // socket it hands to `serve` a second time, in its own state, and the task is what
        // every idle connection keeps.
        let serving = serve(socket, state)
            .instrument(span)
            .map(|()| SESSION.with(Session::take));
        let connection = SESSION
            .scope(Session::new(dialect), serving)
            .map(move |ended| {
                open.decrement(1.0);
                let close = ended.close.map_or_else(|| "none".to_owned(), |code| code.to_string());
                metrics::counter!(crate::metrics::CONNECTIONS_CLOSED, "dialect" => dialect, "close" => close)
                    .increment(1);
                // The access log's line for the socket, at its end.
                tracing::info!(
                    dialect,
                    conn = ended.conn,
                    user = ended.user.as_ref().map_or("", |user| user.user_id.as_str()),
                    close = ended.close,
                    duration_ms = started.elapsed().as_millis() as u64,
                    "socket closed"
                );
            });
        tracked.spawn_connection(connection);
    })
}

tokio::task_local! {
    /// What the access log says of a socket when it ends, gathered as it runs.
    static SESSION: Session;
}

struct Session {
    conn: std::cell::Cell<u64>,
    /// Shared with the core rather than copied: every idle connection keeps it.
    user: std::cell::RefCell<Option<Arc<Profile>>>,
    close: std::cell::Cell<Option<u16>>,
    /// The dialect's frame and byte counters, held for the socket's writes.
    sent: metrics::Counter,
    bytes: metrics::Counter,
}

/// What a socket's session came to, for its line in the access log.
struct Ended {
    conn: u64,
    user: Option<Arc<Profile>>,
    /// The close code sent; `None` when the peer went without one.
    close: Option<u16>,
}

impl Session {
    fn new(dialect: &'static str) -> Self {
        Self {
            conn: std::cell::Cell::default(),
            user: std::cell::RefCell::default(),
            close: std::cell::Cell::default(),
            sent: metrics::counter!(crate::metrics::MESSAGES_SENT, "dialect" => dialect),
            bytes: metrics::counter!(crate::metrics::BYTES_SENT, "dialect" => dialect),
        }
    }

    fn take(&self) -> Ended {
        Ended {
            conn: self.conn.get(),
            user: self.user.take(),
            close: self.close.get(),
        }
    }
}

/// Records the socket's core connection in its span and its access-log line.
pub fn record_connection(conn: &Connection) {
    tracing::Span::current().record("conn", conn.id().0);
    let _ = SESSION.try_with(|session| session.conn.set(conn.id().0));
}

/// Records the socket's user in its span and its access-log line.
pub fn record_user(user: &Arc<Profile>) {
    tracing::Span::current().record("user", user.user_id.as_str());
    let _ = SESSION.try_with(|session| *session.user.borrow_mut() = Some(Arc::clone(user)));
}

/// Why a connection's loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The peer went away or the socket failed: nothing more to send.
    Gone,
    /// Close with this code and reason.
    Close(u16, &'static str),
}

impl Stop {
    pub const SHUTDOWN: Self = Self::Close(close_code::AWAY, "server shutting down");
    pub const TOO_SLOW: Self = Self::Close(CLOSE_TOO_SLOW, "too slow: outbound queue full");

    /// How a failed read of tungstenite's ends the connection: 1009 for a frame over the
    /// size limit, 1007 for a text frame that is not UTF-8, 1002 for a frame that breaks
    /// RFC 6455; nothing more to send when the connection itself failed.
    pub fn after_ws_error(err: &tungstenite::Error) -> Self {
        use tungstenite::error::ProtocolError;
        match err {
            tungstenite::Error::Capacity(_) => Self::Close(close_code::SIZE, "message too big"),
            tungstenite::Error::Utf8(_) => Self::Close(close_code::INVALID, "invalid UTF-8"),
            tungstenite::Error::Protocol(
                ProtocolError::ResetWithoutClosingHandshake
                | ProtocolError::ReceivedAfterClosing
                | ProtocolError::SendAfterClosing,
            ) => Self::Gone,
            tungstenite::Error::Protocol(_) => Self::Close(close_code::PROTOCOL, "protocol error"),
            _ => Self::Gone,
        }
    }
}

/// What ends a connection from outside: the hub ending its mailbox, because it cannot keep
/// up, its user was banned or the server is shutting down.
pub struct Ends<'a> {
    ending: &'a Ending,
    /// The dialect's close for a banned user.
    banned: Stop,
}

impl<'a> Ends<'a> {
    pub fn new(ending: &'a Ending, banned: Stop) -> Self {
        Self { ending, banned }
    }

    /// How the connection is to close, once something has ended it. Made once per
    /// connection rather than on every turn of its loop, where each new wait would cost
    /// more than a delivery.
    pub async fn reached(&self) -> Stop {
        match self.ending.wait().await {
            End::Overflowed => Stop::TOO_SLOW,
            End::Revoked => self.banned,
            End::ShuttingDown => Stop::SHUTDOWN,
        }
    }
}

/// Writes `frames` in as few system calls as it can. The write races whatever `ends` the
/// connection and a deadline, so a peer that stops reading cannot pin the connection's task.
pub async fn write(socket: &mut Socket, frames: &[Utf8Bytes], ends: &Ends<'_>) -> Result<(), Stop> {
    if frames.is_empty() {
        return Ok(());
    }
    guarded(socket.write_texts(frames), ends).await?;
    let _ = SESSION.try_with(|session| {
        session.sent.increment(frames.len() as u64);
        let bytes: usize = frames.iter().map(|frame| frame.len()).sum();
        session.bytes.increment(bytes as u64);
    });
    Ok(())
}

/// Races a write against whatever `ends` the connection and [`WRITE_TIMEOUT`].
async fn guarded<E>(
    send: impl Future<Output = Result<(), E>>,
    ends: &Ends<'_>,
) -> Result<(), Stop> {
    tokio::select! {
        // The write usually completes at once; the others are only waited on when it does not.
        biased;
        written = tokio::time::timeout(WRITE_TIMEOUT, send) => match written {
            Ok(Ok(())) => Ok(()),
            _ => Err(Stop::Gone),
        },
        stop = ends.reached() => Err(stop),
    }
}

/// Ends the connection as `stop` says: a close frame (given up after a second on a peer
/// that does not read), or nothing. After a failed read, what the peer still
/// sends is discarded (bounded), so it reads the close code instead of a reset.
pub async fn finish(socket: &mut Socket, stop: Stop) {
    if let Stop::Close(code, reason) = stop {
        let _ = SESSION.try_with(|session| session.close.set(Some(code)));
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.close(code, reason)).await;
        socket.discard_unread().await;
    }
}

/// Sleeps until `deadline`, or forever when there is none.
pub async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(id: &str) -> Arc<Profile> {
        Arc::new(Profile::known_by_id(id))
    }

    #[tokio::test]
    async fn the_access_log_names_the_user_the_socket_signed_in_as_last() {
        let ended = SESSION
            .scope(Session::new("test"), async {
                record_user(&profile("ana"));
                record_user(&profile("ben"));
                SESSION.with(Session::take)
            })
            .await;
        assert_eq!(
            ended.user.map(|user| user.user_id.clone()).as_deref(),
            Some("ben")
        );
        let anonymous = SESSION
            .scope(Session::new("test"), async { SESSION.with(Session::take) })
            .await;
        assert!(anonymous.user.is_none());
    }
}
