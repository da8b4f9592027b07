//! Plumbing shared by the plain-WebSocket dialects (`/ws` and `/qf/*`): frame limits, writes
//! that a peer who stops reading cannot pin, and closing.

use std::{future::Future, time::Duration};

use axum::extract::ws::{close_code, CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use confab_shared::limits::MAX_FRAME_BYTES;
use futures_util::{stream::SplitSink, SinkExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{protocol::WebSocketConfig, Utf8Bytes as WsText};
use tokio_util::sync::CancellationToken;

use super::direct_ws::Socket;

/// Bytes tungstenite reads at a time. Its default (128 KiB) is zero-filled before every
/// read, which costs most of a busy server's CPU and 128 KiB per idle connection.
pub const READ_BUFFER_BYTES: usize = 4 * 1024;

/// Close code for a connection whose outbound queue overflowed: it cannot keep up. It may
/// reconnect and resume.
pub const CLOSE_TOO_SLOW: u16 = close_code::AGAIN;

/// How long a closing handshake may wait on a peer that stopped reading.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long one write may wait on a peer that stopped reading before the connection is
/// dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

pub type Sink = SplitSink<WebSocket, Message>;

/// Applies the frame-size limit and the read buffer size.
pub fn configure(ws: WebSocketUpgrade) -> WebSocketUpgrade {
    ws.read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
}

/// The same limits for a [`super::direct_ws`] socket.
pub fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES))
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

    /// How a failed read ends the connection: 1009 when a frame was over the size limit
    /// (the one read error after which the socket can still carry a close frame).
    pub fn after_read_error(err: axum::Error) -> Self {
        match err.into_inner().downcast_ref::<tungstenite::Error>() {
            Some(err) => Self::after_ws_error(err),
            None => Self::Gone,
        }
    }

    /// [`Self::after_read_error`] for tungstenite's own error.
    pub fn after_ws_error(err: &tungstenite::Error) -> Self {
        if matches!(err, tungstenite::Error::Capacity(_)) {
            Self::Close(close_code::SIZE, "message too big")
        } else {
            Self::Gone
        }
    }
}

/// Writes `frames` and flushes once. The write races the server's shutdown, the
/// connection's overflow flag and a deadline, so a peer that stops reading cannot pin the
/// connection's task.
pub async fn write<F: Into<Utf8Bytes>>(
    sink: &mut Sink,
    frames: Vec<F>,
    shutdown: &CancellationToken,
    overflowed: &CancellationToken,
) -> Result<(), Stop> {
    if frames.is_empty() {
        return Ok(());
    }
    let send = async {
        for frame in frames {
            sink.feed(Message::Text(frame.into())).await?;
        }
        sink.flush().await
    };
    guarded(send, shutdown, overflowed).await
}

/// [`write`] for a [`super::direct_ws`] socket.
pub async fn write_direct(
    socket: &mut Socket,
    frames: &[WsText],
    shutdown: &CancellationToken,
    overflowed: &CancellationToken,
) -> Result<(), Stop> {
    if frames.is_empty() {
        return Ok(());
    }
    guarded(socket.write_texts(frames), shutdown, overflowed).await
}

/// Races a write against the server's shutdown, the connection's overflow flag and
/// [`WRITE_TIMEOUT`].
async fn guarded<E>(
    send: impl Future<Output = Result<(), E>>,
    shutdown: &CancellationToken,
    overflowed: &CancellationToken,
) -> Result<(), Stop> {
    tokio::select! {
        // The write usually completes at once; the others are only waited on when it does not.
        biased;
        written = tokio::time::timeout(WRITE_TIMEOUT, send) => match written {
            Ok(Ok(())) => Ok(()),
            _ => Err(Stop::Gone),
        },
        () = shutdown.cancelled() => Err(Stop::SHUTDOWN),
        () = overflowed.cancelled() => Err(Stop::TOO_SLOW),
    }
}

/// [`finish`] for a [`super::direct_ws`] socket.
pub async fn finish_direct(socket: &mut Socket, stop: Stop) {
    if let Stop::Close(code, reason) = stop {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.close(code, reason)).await;
    }
}

/// Ends the connection as `stop` says: a close frame (given up after a second on a peer
/// that does not read), or nothing.
pub async fn finish(sink: &mut Sink, stop: Stop) {
    if let Stop::Close(code, reason) = stop {
        let frame = Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        }));
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(frame)).await;
    }
}

/// Sleeps until `deadline`, or forever when there is none.
pub async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
