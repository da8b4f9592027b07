//! A server WebSocket whose text frames are written straight to the connection.
//!
//! axum's `WebSocket` copies every outgoing frame into tungstenite's write buffer, and that
//! buffer keeps the capacity of the largest batch it ever held: on `/ws` the join answer (a
//! room's member list) left several KiB on every idle connection, about half of what a
//! connection cost. Here tungstenite still reads frames, answers pings and sends the close
//! frame; text frames are framed here, gathered into a buffer that lives only for the write,
//! and written with one system call per batch.
//!
//! Gathered, not written as an `iovec` per header and payload: the kernel copies a vectored
//! write one segment at a time with a fixed cost per segment, which at a room's fan-out
//! limit (two segments a frame, a few hundred bytes each) was a tenth of the server's time,
//! several times what one copy in user space costs.

use std::{future::Future, time::Duration};

use axum::{
    body::Body,
    extract::FromRequestParts,
    http::{header, request::Parts, HeaderMap, HeaderValue, Method, StatusCode, Version},
    response::{IntoResponse, Response},
};
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::{
    tungstenite::{
        self,
        handshake::derive_accept_key,
        protocol::{frame::coding::CloseCode, CloseFrame, Role, WebSocketConfig},
        Message, Utf8Bytes,
    },
    WebSocketStream,
};

/// Bytes gathered for one write at most (a larger frame is written alone), so a batch of
/// big frames does not need one big buffer.
const MAX_WRITE_BYTES: usize = 64 * 1024;

/// After a failed read (a frame over the size limit, invalid UTF-8, a protocol error) the
/// server closes while the peer may still be sending, maybe the rest of a frame of many
/// MiB. Closing the TCP connection with bytes unread makes the kernel send a reset, and a
/// peer that is reset loses the close frame it was sent (it sees 1006). So what the peer
/// still sends is read and thrown away, until it closes its side or these bounds run out.
pub const DISCARD_MAX_BYTES: usize = 32 * 1024 * 1024;
pub const DISCARD_MAX_TIME: Duration = Duration::from_secs(3);
/// Bytes read at a time while discarding.
const DISCARD_CHUNK_BYTES: usize = 16 * 1024;

/// A WebSocket upgrade request (HTTP/1.1), checked as RFC 6455 section 4.2.1 asks.
pub struct Upgrade {
    accept: HeaderValue,
    on_upgrade: OnUpgrade,
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let refuse = |status: StatusCode, why: &'static str| (status, why).into_response();
        if parts.version != Version::HTTP_11 || parts.method != Method::GET {
            return Err(refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                "a WebSocket upgrade is an HTTP/1.1 GET",
            ));
        }
        let headers = &parts.headers;
        if !has_token(headers, header::CONNECTION, "upgrade")
            || !has_token(headers, header::UPGRADE, "websocket")
        {
            return Err(refuse(
                StatusCode::UPGRADE_REQUIRED,
                "expected a WebSocket upgrade request",
            ));
        }
        if headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .map(HeaderValue::as_bytes)
            != Some(b"13")
        {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "unsupported Sec-WebSocket-Version; expected 13",
            ));
        }
        let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "missing Sec-WebSocket-Key header",
            ));
        };
        let accept = HeaderValue::try_from(derive_accept_key(key.as_bytes()))
            .map_err(|_| refuse(StatusCode::BAD_REQUEST, "invalid Sec-WebSocket-Key"))?;
        let on_upgrade = parts.extensions.remove::<OnUpgrade>().ok_or_else(|| {
            refuse(
                StatusCode::UPGRADE_REQUIRED,
                "this connection cannot be upgraded",
            )
        })?;
        Ok(Self { accept, on_upgrade })
    }
}

/// Whether a comma-separated header holds `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value.to_str().is_ok_and(|value| {
            value
                .split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    })
}

impl Upgrade {
    /// Answers 101 and, once the connection is switched, runs `serve` on the socket.
    pub fn on_upgrade<F, Fut>(self, config: WebSocketConfig, serve: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let inner = WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                Role::Server,
                Some(config),
            )
            .await;
            serve(Socket {
                inner,
                mid_frame: false,
                read_failed: false,
            })
            .await;
        });
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, self.accept);
        response
    }
}

/// An upgraded server connection.
pub struct Socket {
    inner: WebSocketStream<TokioIo<Upgraded>>,
    /// A write of ours stopped part-way through a frame (its future was dropped): the
    /// stream can carry nothing more, not even a close frame.
    mid_frame: bool,
    /// A read failed: the peer's stream may stop mid-frame, and cannot be parsed further.
    read_failed: bool,
}

impl Socket {
    /// The next frame from the peer; `None` once the connection has ended.
    pub async fn recv(&mut self) -> Option<Result<Message, tungstenite::Error>> {
        let next = self.inner.next().await;
        if matches!(next, Some(Err(_))) {
            self.read_failed = true;
        }
        next
    }

    /// Writes `texts` as text frames, gathered into as few writes as [`MAX_WRITE_BYTES`]
    /// allows.
    pub async fn write_texts(&mut self, texts: &[Utf8Bytes]) -> std::io::Result<()> {
        if self.mid_frame {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        // Whatever tungstenite has queued (a pong) goes first, whole, so frames never mix.
        self.inner
            .flush()
            .await
            .map_err(|err| std::io::Error::other(err.to_string()))?;
        let mut rest = texts;
        while !rest.is_empty() {
            let (batch, bytes) = next_write(rest);
            let mut buffer = Vec::with_capacity(bytes);
            for text in &rest[..batch] {
                buffer.extend_from_slice(FrameHeader::text(text.len()).bytes());
                buffer.extend_from_slice(text.as_bytes());
            }
            self.mid_frame = true;
            self.inner.get_mut().write_all(&buffer).await?;
            self.mid_frame = false;
            rest = &rest[batch..];
        }
        Ok(())
    }

    /// Sends a close frame (unless a write stopped mid-frame) and flushes it.
    pub async fn close(&mut self, code: u16, reason: &'static str) {
        if self.mid_frame {
            return;
        }
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = self.inner.send(Message::Close(Some(frame))).await;
    }

    /// After a failed read, reads and throws away what the peer still sends, until it
    /// closes its side, [`DISCARD_MAX_BYTES`] have come or [`DISCARD_MAX_TIME`] has passed,
    /// so that the close frame already sent is read rather than lost to a reset. Does
    /// nothing when no read failed: the peer then answers a close frame with its own.
    pub async fn discard_unread(&mut self) {
        if !self.read_failed || self.mid_frame {
            return;
        }
        let stream = self.inner.get_mut();
        let mut chunk = vec![0; DISCARD_CHUNK_BYTES];
        let mut left = DISCARD_MAX_BYTES;
        let discard = async {
            while left > 0 {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(read) => left = left.saturating_sub(read),
                }
            }
        };
        let _ = tokio::time::timeout(DISCARD_MAX_TIME, discard).await;
    }
}

/// How many of `texts` (at least one) the next write takes, and its size in bytes.
fn next_write(texts: &[Utf8Bytes]) -> (usize, usize) {
    let mut bytes = 0;
    let mut frames = 0;
    for text in texts {
        let size = FrameHeader::MAX_LEN + text.len();
        if frames > 0 && bytes + size > MAX_WRITE_BYTES {
            break;
        }
        bytes += size;
        frames += 1;
    }
    (frames, bytes)
}

/// The header of an unmasked, final server frame (RFC 6455 section 5.2).
struct FrameHeader {
    bytes: [u8; Self::MAX_LEN],
    len: usize,
}

impl FrameHeader {
    const FIN_TEXT: u8 = 0x81;
    const MAX_LEN: usize = 10;

    fn text(payload: usize) -> Self {
        let mut bytes = [0u8; Self::MAX_LEN];
        bytes[0] = Self::FIN_TEXT;
        let len = match payload {
            0..=125 => {
                bytes[1] = payload as u8;
                2
            }
            126..=0xFFFF => {
                bytes[1] = 126;
                bytes[2..4].copy_from_slice(&(payload as u16).to_be_bytes());
                4
            }
            _ => {
                bytes[1] = 127;
                bytes[2..10].copy_from_slice(&(payload as u64).to_be_bytes());
                10
            }
        };
        Self { bytes, len }
    }

    fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::{next_write, FrameHeader, Utf8Bytes, MAX_WRITE_BYTES};

    #[test]
    fn writes_gather_frames_up_to_the_byte_bound() {
        let small = Utf8Bytes::from("x".repeat(100));
        let texts = vec![small; 1000];
        let (frames, bytes) = next_write(&texts);
        assert_eq!(frames, MAX_WRITE_BYTES / 110);
        assert!(bytes <= MAX_WRITE_BYTES);
        let big = Utf8Bytes::from("y".repeat(MAX_WRITE_BYTES * 2));
        assert_eq!(
            next_write(&[big.clone(), big]).0,
            1,
            "a big frame goes alone"
        );
    }

    /// Each length form at its edges, read back by tungstenite's own frame parser.
    #[test]
    fn headers_parse_back_at_every_length_edge() {
        use tokio_tungstenite::tungstenite::protocol::frame::{
            coding::OpCode, FrameHeader as Parsed,
        };
        for len in [0, 1, 125, 126, 127, 0xFFFF, 0x1_0000, 1 << 20] {
            let header = FrameHeader::text(len);
            let mut cursor = std::io::Cursor::new(header.bytes().to_vec());
            let (parsed, parsed_len) = Parsed::parse(&mut cursor)
                .expect("a valid header")
                .expect("a whole header");
            assert!(parsed.is_final, "length {len}");
            assert_eq!(
                parsed.opcode,
                OpCode::Data(tokio_tungstenite::tungstenite::protocol::frame::coding::Data::Text)
            );
            assert_eq!(parsed.mask, None, "server frames are not masked");
            assert_eq!(parsed_len, len as u64, "length {len}");
            assert_eq!(
                cursor.position() as usize,
                header.bytes().len(),
                "length {len}"
            );
        }
    }
}
