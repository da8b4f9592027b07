//! One load-generator connection, speaking the target's wire: Confab's native envelope, the
//! raw server's text (broadcast as sent), or Engine.IO 4 / Socket.IO 5 framing over a
//! WebSocket (open packet `0{…}`, connect `40{auth}`, events `42["name",data]`, ping `2` →
//! pong `3`).

use std::time::Duration;

use anyhow::{anyhow, Context};
use base64::Engine as _;
use confab_shared::native::{ChatMessage, ServerMessage};
use futures_util::{
    stream::{SplitSink, SplitStream},
    SinkExt, StreamExt,
};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    tungstenite::{protocol::WebSocketConfig, Message},
    MaybeTlsStream, WebSocketStream,
};

use crate::target::{Kind, SECRET};

type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;
pub type Writer = SplitSink<Stream, Message>;
pub type Reader = SplitStream<Stream>;

/// Bytes read at a time. tungstenite's default (128 KiB) is zero-filled before every read,
/// which would cost the generator most of its core and make it, not the server, the limit.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// How long setting up one connection may take.
const SETUP_WAIT: Duration = Duration::from_secs(30);

/// An HS256 JWT for `user`, valid for a day.
pub fn token(user: &str) -> String {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + 86_400;
    let header = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = b64(json!({"sub": user, "username": user, "exp": exp})
        .to_string()
        .as_bytes());
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(format!("{header}.{claims}").as_bytes());
    format!("{header}.{claims}.{}", b64(&mac.finalize().into_bytes()))
}

/// A connected, authenticated member of one room.
pub struct Member {
    /// The room as the wire names it (a code for `/ws`).
    pub room: String,
    pub writer: Writer,
    pub reader: Reader,
}

pub async fn next_text(
    reader: &mut Reader,
    writer: &mut Writer,
    kind: Kind,
) -> anyhow::Result<String> {
    loop {
        let frame = reader
            .next()
            .await
            .ok_or_else(|| anyhow!("connection closed"))??;
        if let Message::Text(text) = frame {
            if kind.is_socket_io() && text.as_str() == "2" {
                writer.send(Message::text("3")).await?;
                continue;
            }
            return Ok(text.to_string());
        }
    }
}

/// Frames that refuse what the client asked for, in each wire.
const REFUSALS: &[&str] = &[
    r#"{"type":"error""#,
    r#"{"type":"auth:error""#,
    r#"{"type":"room:error""#,
    r#"42["error""#,
    r#"44{"#,
];

/// Reads until a frame starting with `prefix`; a refusal fails at once, so a refused client
/// counts as failed instead of waiting out its deadline.
async fn until(
    reader: &mut Reader,
    writer: &mut Writer,
    kind: Kind,
    prefix: &str,
) -> anyhow::Result<String> {
    loop {
        let text = next_text(reader, writer, kind).await?;
        if text.starts_with(prefix) {
            return Ok(text);
        }
        if REFUSALS.iter().any(|refusal| text.starts_with(refusal)) {
            return Err(anyhow!("refused: {text}"));
        }
    }
}

/// Connects `user` to `port` and joins `room`. For `/ws`, `room` `None` creates a room
/// (up to `capacity` members) and the member's `room` is its code.
pub async fn join(
    kind: Kind,
    port: u16,
    user: &str,
    room: Option<&str>,
    capacity: u32,
) -> anyhow::Result<Member> {
    tokio::time::timeout(SETUP_WAIT, join_inner(kind, port, user, room, capacity))
        .await
        .context("joining took too long")?
}

async fn join_inner(
    kind: Kind,
    port: u16,
    user: &str,
    room: Option<&str>,
    capacity: u32,
) -> anyhow::Result<Member> {
    let url = match kind {
        Kind::ConfabWs => format!("ws://127.0.0.1:{port}/ws"),
        Kind::RawWs => format!("ws://127.0.0.1:{port}/ws?room={}", room.unwrap_or("room")),
        Kind::ConfabSio | Kind::NodeSio => {
            format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket")
        }
    };
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES);
    // Nagle off, as browsers have it.
    let (stream, _) = tokio_tungstenite::connect_async_with_config(&url, Some(config), true)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let (mut writer, mut reader) = stream.split();
    let room = match kind {
        Kind::RawWs => room.unwrap_or("room").to_owned(),
        Kind::ConfabWs => {
            let auth = json!({"type": "auth", "token": token(user)});
            writer.send(Message::text(auth.to_string())).await?;
            until(&mut reader, &mut writer, kind, r#"{"type":"auth:ok""#).await?;
            match room {
                Some(code) => {
                    writer
                        .send(Message::text(
                            json!({"type": "room:join", "code": code}).to_string(),
                        ))
                        .await?;
                    until(&mut reader, &mut writer, kind, r#"{"type":"room:history""#).await?;
                    code.to_owned()
                }
                None => {
                    let create =
                        json!({"type": "room:create", "roomType": "bench", "maxUsers": capacity});
                    writer.send(Message::text(create.to_string())).await?;
                    let created =
                        until(&mut reader, &mut writer, kind, r#"{"type":"room:created""#).await?;
                    let created: Value = serde_json::from_str(&created)?;
                    created["room"]["code"]
                        .as_str()
                        .ok_or_else(|| anyhow!("no room code"))?
                        .to_owned()
                }
            }
        }
        Kind::ConfabSio | Kind::NodeSio => {
            until(&mut reader, &mut writer, kind, "0{").await?;
            writer
                .send(Message::text(format!(
                    "40{}",
                    json!({"token": token(user)})
                )))
                .await?;
            until(&mut reader, &mut writer, kind, "40").await?;
            let room = room.unwrap_or("room").to_owned();
            writer
                .send(Message::text(format!(r#"42["join_room",{}]"#, json!(room))))
                .await?;
            until(&mut reader, &mut writer, kind, r#"42["room_history""#).await?;
            room
        }
    };
    Ok(Member {
        room,
        writer,
        reader,
    })
}

/// Has `member` post `count` messages of about 100 bytes to its room, one at a time, each
/// once the last has come back: a history for the members who join later.
pub async fn post_history(kind: Kind, member: &mut Member, count: usize) -> anyhow::Result<()> {
    for n in 0..count {
        let text = format!("history {n:04} {}", "lorem ipsum dolor sit amet ".repeat(3));
        member
            .writer
            .send(chat_frame(kind, &member.room, &text))
            .await?;
        let echoed = async {
            loop {
                let frame = next_text(&mut member.reader, &mut member.writer, kind).await?;
                if chat_text(kind, &frame).is_some() {
                    return anyhow::Ok(());
                }
            }
        };
        tokio::time::timeout(SETUP_WAIT, echoed)
            .await
            .context("a history message did not come back")??;
    }
    Ok(())
}

/// The frame that posts `text` to `room`.
pub fn chat_frame(kind: Kind, room: &str, text: &str) -> Message {
    match kind {
        Kind::RawWs => Message::text(raw_delivery(room, text)),
        Kind::ConfabWs => {
            Message::text(json!({"type": "room:chat", "code": room, "message": text}).to_string())
        }
        Kind::ConfabSio | Kind::NodeSio => Message::text(format!(
            r#"42["send_message",{}]"#,
            json!({"roomId": room, "content": text})
        )),
    }
}

/// What the raw server is sent, and broadcasts as it is: the frame Confab's `/ws` delivers
/// for the same message, in shape and size (ids and numbers as long as a benchmark run's),
/// so that both servers write the same bytes and the generator does the same work for each
/// delivery. With bare text (about 15 bytes against Confab's 190) the generator, not the
/// server, set the ceiling, and at a lower rate for Confab than for raw.
fn raw_delivery(room: &str, text: &str) -> String {
    ServerMessage::RoomChat(ChatMessage {
        code: room.to_owned(),
        from: "u0-0".to_owned(),
        message: text.to_owned(),
        ts: 1_764_000_000,
        username: "u0-0".to_owned(),
        image_url: String::new(),
        id: "00000000-0000-4000-8000-000000000000".to_owned(),
        seq: 100_000,
    })
    .to_json()
}

/// The chat text a delivered frame carries, if it is a chat delivery. Reads only the one
/// field, so the generator spends its core on connections rather than on parsing.
pub fn chat_text(kind: Kind, frame: &str) -> Option<&str> {
    let field = match kind {
        Kind::RawWs | Kind::ConfabWs if frame.starts_with(r#"{"type":"room:chat""#) => {
            r#""message":""#
        }
        Kind::ConfabSio | Kind::NodeSio if frame.starts_with(r#"42["new_message""#) => {
            r#""content":""#
        }
        _ => return None,
    };
    let start = frame.find(field)? + field.len();
    let len = frame[start..].find('"')?;
    Some(&frame[start..start + len])
}

/// Answers Engine.IO pings; `true` when `frame` was one.
pub async fn answer_ping(
    kind: Kind,
    frame: &str,
    writer: &tokio::sync::Mutex<Writer>,
) -> anyhow::Result<bool> {
    if kind.is_socket_io() && frame == "2" {
        writer.lock().await.send(Message::text("3")).await?;
        return Ok(true);
    }
    Ok(false)
}
