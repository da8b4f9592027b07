//! The soak: a long run of mixed load on one Confab with its production rate limits, to
//! show that nothing builds up. `/ws` and Socket.IO rooms chat steadily; clients of both
//! dialects keep arriving, joining, leaving and going; now and then one floods. Each
//! minute the server's memory, its live tasks and open connections are sampled, with the
//! minute's deliveries and latency.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    client,
    scenario::{populate_on, record_all, row, start_senders, stop, Row},
    target::{Kind, Server},
};

/// What the soak runs.
#[derive(clap::Args)]
pub struct Shape {
    #[arg(long, default_value_t = 30)]
    pub minutes: u64,
    /// `/ws` rooms chatting throughout, of `members` each.
    #[arg(long, default_value_t = 40)]
    pub ws_rooms: usize,
    /// Socket.IO rooms chatting throughout, of `members` each.
    #[arg(long, default_value_t = 10)]
    pub sio_rooms: usize,
    #[arg(long, default_value_t = 25)]
    pub members: usize,
    /// Messages a second into each chatting room.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Clients a second that connect, sign in, join, leave and disconnect.
    #[arg(long, default_value_t = 20.0)]
    pub churn: f64,
    /// Seconds between floods (one `/ws` chat flood and one Socket.IO join flood).
    #[arg(long, default_value_t = 30)]
    pub flood_every: u64,
}

/// Users the churning clients sign in as, in turn: enough to overlap, few enough that the
/// user table stays small.
const CHURN_USERS: u64 = 100;
/// Frames one flood sends as fast as it can.
const FLOOD_FRAMES: usize = 2_000;

/// Counts of what the background clients did, reset each minute.
#[derive(Default)]
struct Activity {
    churned: AtomicU64,
    churn_failed: AtomicU64,
    floods: AtomicU64,
}

pub async fn soak(shape: Shape) -> anyhow::Result<Vec<Row>> {
    let server = Server::start_rate_limited(Kind::ConfabWs).await?;
    let port = server.port;
    let ws = populate_on(
        Kind::ConfabWs,
        &[port],
        "w",
        shape.ws_rooms,
        shape.members,
        0,
        "soak: /ws",
    )
    .await?;
    let sio = populate_on(
        Kind::ConfabSio,
        &[port],
        "s",
        shape.sio_rooms,
        shape.members,
        0,
        "soak: Socket.IO",
    )
    .await?;
    // A room of its own for the churning /ws clients, big enough for all of them.
    let host = client::join(Kind::ConfabWs, port, "churn-host", None, 1000).await?;
    let churn_room = host.room.clone();
    let (ws_recorder, ws_live) = record_all(Kind::ConfabWs, ws).await;
    let (sio_recorder, sio_live) = record_all(Kind::ConfabSio, sio).await;
    let seconds = shape.minutes * 60;
    let mut senders = start_senders(Kind::ConfabWs, &ws_live, shape.rate, seconds, &ws_recorder);
    senders.extend(start_senders(
        Kind::ConfabSio,
        &sio_live,
        shape.rate,
        seconds,
        &sio_recorder,
    ));

    let activity = Arc::new(Activity::default());
    let until = Instant::now() + Duration::from_secs(seconds);
    let churn = tokio::spawn(churn_clients(
        port,
        churn_room.clone(),
        shape.churn,
        until,
        Arc::clone(&activity),
    ));
    let floods = tokio::spawn(flood_now_and_then(
        port,
        churn_room,
        shape.flood_every,
        until,
        Arc::clone(&activity),
    ));

    let mut rows = Vec::new();
    rows.push(sample(&server, 0, 60.0, &ws_recorder, &sio_recorder, &activity).await?);
    for minute in 1..=shape.minutes {
        ws_recorder.reset();
        sio_recorder.reset();
        tokio::time::sleep(Duration::from_secs(60)).await;
        let row = sample(
            &server,
            minute,
            60.0,
            &ws_recorder,
            &sio_recorder,
            &activity,
        )
        .await?;
        eprintln!(
            "{}",
            crate::report::table("soak", std::slice::from_ref(&row))
        );
        rows.push(row);
    }
    churn.await?;
    floods.await?;
    for sender in senders {
        let _ = sender.await;
    }
    stop(ws_live);
    stop(sio_live);
    drop(host);
    server.stop().await;
    Ok(rows)
}

/// One minute's row: the server's state now, and what the minute delivered.
async fn sample(
    server: &Server,
    minute: u64,
    seconds: f64,
    ws: &crate::scenario::Recorder,
    sio: &crate::scenario::Recorder,
    activity: &Activity,
) -> anyhow::Result<Row> {
    let metrics = scrape(server.port).await?;
    let delivered = ws.received.load(Ordering::Relaxed) + sio.received.load(Ordering::Relaxed);
    let label = format!("minute {minute}");
    Ok(row(
        Kind::ConfabWs,
        &label,
        vec![
            ("rss MiB", server.rss_bytes() as f64 / 1_048_576.0),
            ("tasks", metric(&metrics, "confab_runtime_tasks")),
            (
                "open connections",
                metric(&metrics, "confab_connections_open"),
            ),
            ("deliveries/s", delivered as f64 / seconds),
            ("/ws p99 ms", ws.quantile_ms(0.99)),
            ("sio p99 ms", sio.quantile_ms(0.99)),
            (
                "churned",
                activity.churned.swap(0, Ordering::Relaxed) as f64,
            ),
            (
                "churn failed",
                activity.churn_failed.swap(0, Ordering::Relaxed) as f64,
            ),
            ("floods", activity.floods.swap(0, Ordering::Relaxed) as f64),
        ],
    ))
}

/// `GET /metrics`, by hand: the harness has no HTTP client.
async fn scrape(port: u16) -> anyhow::Result<String> {
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    tcp.write_all(b"GET /metrics HTTP/1.0\r\nHost: confab\r\n\r\n")
        .await?;
    let mut text = String::new();
    tcp.read_to_string(&mut text)
        .await
        .context("reading /metrics")?;
    Ok(text)
}

/// The sum of every series of metric `name` in a Prometheus text page.
fn metric(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `per_second` clients a second, alternating `/ws` and Socket.IO: each connects, signs in,
/// joins a room, leaves it and disconnects.
async fn churn_clients(
    port: u16,
    ws_room: String,
    per_second: f64,
    until: Instant,
    activity: Arc<Activity>,
) {
    let period = Duration::from_secs_f64(1.0 / per_second);
    let mut n: u64 = 0;
    let mut ticker = tokio::time::interval(period);
    while Instant::now() < until {
        ticker.tick().await;
        let (kind, room) = if n.is_multiple_of(2) {
            (Kind::ConfabWs, ws_room.clone())
        } else {
            (Kind::ConfabSio, "churn".to_owned())
        };
        let user = format!("c{}", n % CHURN_USERS);
        let activity = Arc::clone(&activity);
        tokio::spawn(async move {
            let outcome = async {
                let mut member = client::join(kind, port, &user, Some(&room), 1000).await?;
                let leave = match kind {
                    Kind::ConfabWs => json!({"type": "room:leave", "code": room}).to_string(),
                    _ => format!(r#"42["leave_room",{}]"#, json!(room)),
                };
                member.writer.send(Message::text(leave)).await?;
                member.writer.close().await?;
                anyhow::Ok(())
            };
            let counter = match outcome.await {
                Ok(()) => &activity.churned,
                Err(_) => &activity.churn_failed,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        });
        n += 1;
    }
}

/// Every `every` seconds: a `/ws` client posts [`FLOOD_FRAMES`] chat messages as fast as it
/// can (the rate limit refuses most), and a Socket.IO client sends as many `join_room`s
/// (the server disconnects it).
async fn flood_now_and_then(
    port: u16,
    ws_room: String,
    every: u64,
    until: Instant,
    activity: Arc<Activity>,
) {
    let mut ticker = tokio::time::interval(Duration::from_secs(every));
    ticker.tick().await;
    while Instant::now() < until {
        ticker.tick().await;
        let floods = [
            (Kind::ConfabWs, Some(ws_room.as_str())),
            (Kind::ConfabSio, Some("flood")),
        ];
        for (kind, room) in floods {
            let Ok(member) = client::join(kind, port, "flooder", room, 1000).await else {
                continue;
            };
            let client::Member {
                room,
                mut writer,
                mut reader,
            } = member;
            let drain = tokio::spawn(async move { while let Some(Ok(_)) = reader.next().await {} });
            for i in 0..FLOOD_FRAMES {
                let frame = match kind {
                    Kind::ConfabWs => client::chat_frame(kind, &room, "flood"),
                    _ => Message::text(format!(r#"42["join_room","flood-{i}"]"#)),
                };
                if writer.feed(frame).await.is_err() {
                    break;
                }
            }
            let _ = writer.flush().await;
            if kind == Kind::ConfabWs {
                let leave = json!({"type": "room:leave", "code": room}).to_string();
                let _ = writer.send(Message::text(leave)).await;
            }
            let _ = writer.close().await;
            let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
            activity.floods.fetch_add(1, Ordering::Relaxed);
        }
    }
}
