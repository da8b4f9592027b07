//! Scenario 6, recovery: what Socket.IO connection state recovery costs a reconnect.
//!
//! `clients` members of one room (contract 004 over WebSocket) drop their connections
//! without a goodbye, a sender posts `missed` messages, and all reconnect at once with their
//! `pid` and offset, as socket.io-client does. Measured: the time to the CONNECT reply, in a
//! round with nothing missed and in rounds with `missed` each; the time until a client has
//! its last missed message; and the messages replayed a second over all clients.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::{future::join_all, SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    client::{self, token, Reader, Writer},
    scenario::{row, Row},
    target::{Kind, Server},
};

/// How long a client may take to reconnect and read what it missed.
const ROUND_WAIT: Duration = Duration::from_secs(60);
/// How long after the drops the sender waits, so the server has seen them (Node keeps a
/// socket's session only once it knows the socket is gone).
const NOTICE: Duration = Duration::from_millis(500);

/// One Socket.IO client connection of the scenario.
struct Session {
    user: String,
    pid: Option<String>,
    offset: Option<String>,
    writer: Writer,
    reader: Reader,
}

/// An event frame (`42[name, payload, …]`): its name, payload and trailing offset.
fn event(frame: &str) -> Option<(String, Value, Option<String>)> {
    let args: Vec<Value> = serde_json::from_str(frame.strip_prefix("42")?).ok()?;
    let name = args.first()?.as_str()?.to_owned();
    let payload = args.get(1).cloned().unwrap_or(Value::Null);
    let offset = (args.len() > 2)
        .then(|| args.last().and_then(Value::as_str).map(str::to_owned))
        .flatten();
    Some((name, payload, offset))
}

impl Session {
    /// Opens a connection and sends CONNECT with `auth`; frames that came before the reply
    /// are returned for the caller to read.
    async fn open(port: u16, user: &str, auth: Value) -> anyhow::Result<(Self, Vec<String>)> {
        let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
        let (stream, _) = tokio_tungstenite::connect_async(&url)
            .await
            .with_context(|| format!("connecting to {url}"))?;
        let (writer, reader) = stream.split();
        let mut session = Self {
            user: user.to_owned(),
            pid: None,
            offset: None,
            writer,
            reader,
        };
        session.until_text(|text| text.starts_with("0{")).await?;
        session
            .writer
            .send(Message::text(format!("40{auth}")))
            .await?;
        let mut early = Vec::new();
        loop {
            let text = session.next_text().await?;
            if let Some(reply) = text.strip_prefix("40") {
                let reply: Value = serde_json::from_str(reply).context("CONNECT reply")?;
                session.pid = reply["pid"].as_str().map(str::to_owned);
                return Ok((session, early));
            }
            if text.starts_with("44") {
                bail!("connect_error: {text}");
            }
            early.push(text);
        }
    }

    /// The next text frame, answering Engine.IO pings on the way (both Socket.IO kinds
    /// frame alike).
    async fn next_text(&mut self) -> anyhow::Result<String> {
        client::next_text(&mut self.reader, &mut self.writer, Kind::ConfabSio).await
    }

    async fn until_text(&mut self, done: impl Fn(&str) -> bool) -> anyhow::Result<String> {
        loop {
            let text = self.next_text().await?;
            if done(&text) {
                return Ok(text);
            }
        }
    }

    /// Reads one frame as an event, keeping its offset.
    fn read_event(&mut self, frame: &str) -> Option<(String, Value)> {
        let (name, payload, offset) = event(frame)?;
        if offset.is_some() {
            self.offset = offset;
        }
        Some((name, payload))
    }

    async fn next_event(&mut self, name: &str) -> anyhow::Result<Value> {
        loop {
            let text = self.next_text().await?;
            if let Some((got, payload)) = self.read_event(&text) {
                if got == name {
                    return Ok(payload);
                }
            }
        }
    }

    async fn emit(&mut self, name: &str, payload: &Value) -> anyhow::Result<()> {
        let frame = format!("42{}", json!([name, payload]));
        self.writer.send(Message::text(frame)).await?;
        Ok(())
    }

    /// Reads `count` `new_message`s (after those in `early`), checking they are `tag 1..`.
    async fn read_messages(
        &mut self,
        early: Vec<String>,
        tag: &str,
        count: usize,
    ) -> anyhow::Result<()> {
        let check = |payload: &Value, seen: usize| -> anyhow::Result<()> {
            let expected = format!("{tag} {seen}");
            if payload["content"].as_str() != Some(expected.as_str()) {
                bail!("expected {expected:?}, got {payload}");
            }
            Ok(())
        };
        let mut seen = 0;
        for text in early {
            if let Some((name, payload)) = self.read_event(&text) {
                if name == "new_message" {
                    seen += 1;
                    check(&payload, seen)?;
                }
            }
        }
        while seen < count {
            let payload = self.next_event("new_message").await?;
            seen += 1;
            check(&payload, seen)?;
        }
        Ok(())
    }
}

async fn member(port: u16, user: &str, room: &str) -> anyhow::Result<Session> {
    let (mut session, _) = Session::open(port, user, json!({"token": token(user)})).await?;
    session.emit("join_room", &json!(room)).await?;
    session.next_event("room_history").await?;
    Ok(session)
}

/// Posts `tag 1..=count` from the sender and waits until each is broadcast back.
async fn post(sender: &mut Session, room: &str, tag: &str, count: usize) -> anyhow::Result<()> {
    for i in 1..=count {
        let message = json!({"roomId": room, "content": format!("{tag} {i}")});
        sender.emit("send_message", &message).await?;
    }
    sender.read_messages(Vec::new(), tag, count).await
}

/// What one client's reconnect took.
struct Reconnect {
    session: Session,
    connect: Duration,
    last_missed: Duration,
    recovered: bool,
}

async fn reconnect(
    port: u16,
    dropped: (String, Option<String>, Option<String>),
    tag: String,
    missed: usize,
    started: Instant,
) -> anyhow::Result<Reconnect> {
    let (user, pid, offset) = dropped;
    let auth = json!({"token": token(&user), "pid": pid, "offset": offset});
    let (mut session, early) = Session::open(port, &user, auth).await?;
    let connect = started.elapsed();
    let recovered = session.pid.is_some() && session.pid == pid;
    // As socket.io-client does: the offset stands until an event brings a newer one.
    session.offset = offset;
    if recovered {
        session.read_messages(early, &tag, missed).await?;
    }
    Ok(Reconnect {
        session,
        connect,
        last_missed: started.elapsed(),
        recovered,
    })
}

/// Figures of one round.
struct Round {
    connect_ms: Vec<f64>,
    last_missed_ms: Vec<f64>,
    recovered: usize,
    replayed_per_second: f64,
}

async fn round(
    port: u16,
    room: &str,
    sender: &mut Session,
    sessions: &mut Vec<Session>,
    tag: &str,
    missed: usize,
) -> anyhow::Result<Round> {
    let dropped: Vec<_> = sessions
        .drain(..)
        .map(|session| (session.user, session.pid, session.offset))
        .collect();
    tokio::time::sleep(NOTICE).await;
    post(sender, room, tag, missed).await?;
    let started = Instant::now();
    let reconnects = dropped
        .into_iter()
        .map(|dropped| reconnect(port, dropped, tag.to_owned(), missed, started));
    let done = tokio::time::timeout(ROUND_WAIT, join_all(reconnects))
        .await
        .context("reconnects took too long")?;
    let mut figures = Round {
        connect_ms: Vec::new(),
        last_missed_ms: Vec::new(),
        recovered: 0,
        replayed_per_second: 0.0,
    };
    let mut slowest = Duration::ZERO;
    for outcome in done {
        let outcome = outcome?;
        figures
            .connect_ms
            .push(outcome.connect.as_secs_f64() * 1000.0);
        figures
            .last_missed_ms
            .push(outcome.last_missed.as_secs_f64() * 1000.0);
        figures.recovered += usize::from(outcome.recovered);
        slowest = slowest.max(outcome.last_missed);
        sessions.push(outcome.session);
    }
    let replayed = (figures.recovered * missed) as f64;
    figures.replayed_per_second = replayed / slowest.as_secs_f64().max(1e-9);
    Ok(figures)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Scenario 6: `clients` drop and reconnect `rounds` times with `missed` messages to
/// recover each time, after one round with nothing missed.
pub async fn recovery(
    kind: Kind,
    clients: usize,
    missed: usize,
    rounds: usize,
) -> anyhow::Result<Row> {
    if !kind.is_socket_io() {
        bail!("recovery is a Socket.IO scenario: use confab-sio or node-sio");
    }
    let server = Server::start_recovering(kind).await?;
    let port = server.port;
    let room = format!("recovery-{}", std::process::id());
    let mut sender = member(port, "sender", &room).await?;
    let mut sessions = Vec::with_capacity(clients);
    for i in 0..clients {
        sessions.push(member(port, &format!("r{i}"), &room).await?);
    }
    // Every client holds an offset from a broadcast (Node's recovery needs one).
    post(&mut sender, &room, "warm-up", 1).await?;
    for session in &mut sessions {
        session.read_messages(Vec::new(), "warm-up", 1).await?;
    }
    let baseline = round(port, &room, &mut sender, &mut sessions, "none", 0).await?;
    let mut connect_ms = Vec::new();
    let mut last_missed_ms = Vec::new();
    let mut rates = Vec::new();
    let mut recovered = 0;
    for i in 0..rounds {
        let figures = round(
            port,
            &room,
            &mut sender,
            &mut sessions,
            &format!("round{i}"),
            missed,
        )
        .await?;
        eprintln!(
            "  {}: round {i}: {} of {clients} recovered, {:.0} msgs/s replayed",
            kind.name(),
            figures.recovered,
            figures.replayed_per_second
        );
        connect_ms.extend(figures.connect_ms);
        last_missed_ms.extend(figures.last_missed_ms);
        rates.push(figures.replayed_per_second);
        recovered += figures.recovered;
    }
    server.stop().await;
    let mut baseline_connect = baseline.connect_ms;
    Ok(row(
        kind,
        "",
        vec![
            ("clients", clients as f64),
            ("missed each", missed as f64),
            (
                "recovered %",
                recovered as f64 * 100.0 / (clients * rounds).max(1) as f64,
            ),
            ("connect ms p50, none missed", median(&mut baseline_connect)),
            ("connect ms p50, missed", median(&mut connect_ms)),
            ("last missed ms p50", median(&mut last_missed_ms)),
            (
                "last missed ms max",
                last_missed_ms.last().copied().unwrap_or(0.0),
            ),
            ("replayed msgs/s (median round)", median(&mut rates)),
        ],
    ))
}
