//! The four scenarios. Each starts its server, connects its members, drives the load, and
//! returns rows of figures.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, OnceLock,
    },
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::{
    client::{self, Member, Writer},
    target::{generator_cpu_seconds, Database, Kind, Redis, Server},
};

/// Connections set up at once.
const CONNECT_CONCURRENCY: usize = 100;
/// How long deliveries may still arrive after the last send.
const DRAIN: Duration = Duration::from_secs(2);
/// The fan-out scenario's latency bound.
const FANOUT_P99_LIMIT_MS: f64 = 50.0;

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn now_us() -> u64 {
    u64::try_from(base().elapsed().as_micros()).unwrap_or(u64::MAX)
}

pub(crate) fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>28} [{bar:30}] {pos}/{len} {elapsed}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// Latencies and counts shared by every receiving task.
pub(crate) struct Recorder {
    latencies: Mutex<Histogram<u64>>,
    pub(crate) received: AtomicU64,
    pub(crate) sent: AtomicU64,
}

impl Recorder {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            latencies: Mutex::new(
                Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
            ),
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
        })
    }

    pub(crate) fn reset(&self) {
        self.lock().reset();
        self.received.store(0, Ordering::Relaxed);
        self.sent.store(0, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Histogram<u64>> {
        self.latencies.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn quantile_ms(&self, q: f64) -> f64 {
        self.lock().value_at_quantile(q) as f64 / 1000.0
    }
}

/// A member whose deliveries are being recorded; its writer is kept for sending.
pub(crate) struct Live {
    pub(crate) room: String,
    writer: Arc<tokio::sync::Mutex<Writer>>,
    reader: JoinHandle<()>,
}

fn record(kind: Kind, member: Member, recorder: &Arc<Recorder>) -> Live {
    let Member {
        room,
        writer,
        mut reader,
        ..
    } = member;
    let writer = Arc::new(tokio::sync::Mutex::new(writer));
    let (recorder, pong) = (Arc::clone(recorder), Arc::clone(&writer));
    let reader = tokio::spawn(async move {
        while let Some(Ok(frame)) = reader.next().await {
            let Message::Text(text) = frame else { continue };
            if client::answer_ping(kind, text.as_str(), &pong)
                .await
                .unwrap_or(false)
            {
                continue;
            }
            let Some(chat) = client::chat_text(kind, text.as_str()) else {
                continue;
            };
            let Some(sent) = chat.split(' ').nth(1).and_then(|t| t.parse::<u64>().ok()) else {
                continue;
            };
            let latency = now_us().saturating_sub(sent).max(1);
            recorder.lock().saturating_record(latency);
            recorder.received.fetch_add(1, Ordering::Relaxed);
        }
    });
    Live {
        room,
        writer,
        reader,
    }
}

/// Connects `rooms` × `members` members; `/ws` rooms are created by their first member.
async fn populate(
    kind: Kind,
    server: &Server,
    rooms: usize,
    members: usize,
    label: &str,
) -> anyhow::Result<Vec<Vec<Member>>> {
    populate_on(kind, &[server.port], "u", rooms, members, 0, label).await
}

/// Like [`populate`], over the servers at `ports`: member `m` of room `r` connects to
/// `ports[(r + m) % ports.len()]`, so every room has members on every server. Member `m` of
/// room `r` is user `{prefix}{r}-{m}`. On Confab, each room's first member posts `history`
/// messages before the others join (the peers keep no history to send).
pub(crate) async fn populate_on(
    kind: Kind,
    ports: &[u16],
    prefix: &str,
    rooms: usize,
    members: usize,
    history: usize,
    label: &str,
) -> anyhow::Result<Vec<Vec<Member>>> {
    let port = |r: usize, m: usize| ports[(r + m) % ports.len()];
    let bar = progress((rooms * members) as u64, label);
    let mut all = Vec::with_capacity(rooms);
    let capacity = u32::try_from(members).unwrap_or(u32::MAX);
    // First members (the room creators on /ws), then the rest, a bounded number at a time.
    let mut firsts = Vec::new();
    for r in 0..rooms {
        let name = format!("room-{r}");
        let room = (kind != Kind::ConfabWs).then_some(name.as_str());
        let user = format!("{prefix}{r}-0");
        let mut first = client::join(kind, port(r, 0), &user, room, capacity).await?;
        if matches!(kind, Kind::ConfabWs | Kind::ConfabSio) {
            client::post_history(kind, &mut first, history).await?;
        }
        firsts.push(first);
        bar.inc(1);
    }
    let names: Vec<String> = firsts.iter().map(|m| m.room.clone()).collect();
    for first in firsts {
        all.push(vec![first]);
    }
    let jobs: Vec<(usize, usize)> = (0..rooms)
        .flat_map(|r| (1..members).map(move |m| (r, m)))
        .collect();
    for chunk in jobs.chunks(CONNECT_CONCURRENCY) {
        let joins = chunk.iter().map(|&(r, m)| {
            let room = names[r].clone();
            async move {
                (
                    r,
                    client::join(
                        kind,
                        port(r, m),
                        &format!("{prefix}{r}-{m}"),
                        Some(&room),
                        capacity,
                    )
                    .await,
                )
            }
        });
        for (r, member) in futures_util::future::join_all(joins).await {
            all[r].push(member?);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok(all)
}

/// Records every member's deliveries; the counts start from zero a second later, once
/// the joins have settled.
pub(crate) async fn record_all(
    kind: Kind,
    all: Vec<Vec<Member>>,
) -> (Arc<Recorder>, Vec<Vec<Live>>) {
    let recorder = Recorder::new();
    let live = all
        .into_iter()
        .map(|room| {
            room.into_iter()
                .map(|m| record(kind, m, &recorder))
                .collect()
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    recorder.reset();
    (recorder, live)
}

/// Every room's first member sends `rate` messages a second for `seconds`, the rooms'
/// phases spread over one period (see [`sender`]).
pub(crate) fn start_senders(
    kind: Kind,
    live: &[Vec<Live>],
    rate: f64,
    seconds: u64,
    recorder: &Arc<Recorder>,
) -> Vec<JoinHandle<()>> {
    let until = Instant::now() + Duration::from_secs(seconds);
    let period = Duration::from_secs_f64(1.0 / rate);
    live.iter()
        .enumerate()
        .map(|(i, room)| {
            let phase = period.mul_f64(i as f64 / live.len() as f64);
            sender(kind, &room[0], rate, phase, until, recorder)
        })
        .collect()
}

/// Sends `rate` messages a second into `live`'s room until `until`, the first `phase` after
/// now and then one every `1 / rate`. Rooms of one run get phases spread over one period, so
/// that their messages arrive as a steady stream: started together, every room's sender
/// fired at the same instant, and a run of 100 rooms at 10 msgs/s was ten bursts a second
/// of 100 messages (10,000 deliveries at once), whose latency was the time to drain a burst.
/// A sender that falls behind sends what is due at once, with one flush.
fn sender(
    kind: Kind,
    live: &Live,
    rate: f64,
    phase: Duration,
    until: Instant,
    recorder: &Arc<Recorder>,
) -> JoinHandle<()> {
    let (writer, room, recorder) = (
        Arc::clone(&live.writer),
        live.room.clone(),
        Arc::clone(recorder),
    );
    tokio::spawn(async move {
        let first = Instant::now() + phase;
        let due = |n: u64| first + Duration::from_secs_f64(n as f64 / rate);
        let mut sent = 0u64;
        while due(sent) < until {
            tokio::time::sleep_until(due(sent).into()).await;
            let now = Instant::now();
            let mut writer = writer.lock().await;
            while due(sent) <= now && due(sent) < until {
                let text = format!("{sent} {}", now_us());
                if writer
                    .feed(client::chat_frame(kind, &room, &text))
                    .await
                    .is_err()
                {
                    return;
                }
                sent += 1;
                recorder.sent.fetch_add(1, Ordering::Relaxed);
            }
            if writer.flush().await.is_err() {
                return;
            }
        }
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub target: String,
    /// Named figures, in the order printed.
    pub figures: Vec<(String, f64)>,
}

pub(crate) fn row(kind: Kind, label: &str, figures: Vec<(&str, f64)>) -> Row {
    Row {
        target: if label.is_empty() {
            kind.name().to_owned()
        } else {
            format!("{} ({label})", kind.name())
        },
        figures: figures
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    }
}

/// Scenario 1, idle: `connections` authenticated members in rooms of 100, each room with
/// `history` messages posted before most of its members joined (so that their join answers
/// carried it); server RSS per connection.
pub async fn idle(kind: Kind, connections: usize, history: usize) -> anyhow::Result<Row> {
    let server = Server::start(kind, &Database::Sqlite).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = server.rss_bytes();
    let per_room = 100.min(connections);
    let members = populate_on(
        kind,
        &[server.port],
        "u",
        connections / per_room,
        per_room,
        history,
        "idle: connecting",
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = server.rss_bytes();
    let n = members.iter().map(Vec::len).sum::<usize>() as f64;
    let per_conn = (after.saturating_sub(before)) as f64 / n / 1024.0;
    drop(members);
    server.stop().await;
    Ok(row(
        kind,
        "",
        vec![
            ("connections", n),
            ("rss before MiB", before as f64 / 1048576.0),
            ("rss after MiB", after as f64 / 1048576.0),
            ("KiB per connection", per_conn),
        ],
    ))
}

/// Scenario 2, room chat: `rooms` × `members`, each room receiving `rate` messages a second for
/// `seconds`.
pub async fn room_chat(
    kind: Kind,
    rooms: usize,
    members: usize,
    rate: f64,
    seconds: u64,
) -> anyhow::Result<Row> {
    let server = Server::start(kind, &Database::Sqlite).await?;
    let all = populate(kind, &server, rooms, members, "room chat: connecting").await?;
    let (recorder, live) = record_all(kind, all).await;
    let cpu_before = server.cpu_seconds();
    let generator_before = generator_cpu_seconds();
    let senders = start_senders(kind, &live, rate, seconds, &recorder);
    let bar = progress(seconds, "room chat: sending (s)");
    for _ in 0..seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        bar.inc(1);
    }
    bar.finish_and_clear();
    for s in senders {
        let _ = s.await;
    }
    let cpu = (server.cpu_seconds() - cpu_before) / seconds as f64 * 100.0;
    let generator_cpu = (generator_cpu_seconds() - generator_before) / seconds as f64 * 100.0;
    tokio::time::sleep(DRAIN).await;
    let sent = recorder.sent.load(Ordering::Relaxed) as f64;
    let received = recorder.received.load(Ordering::Relaxed) as f64;
    let expected = sent * members as f64;
    let figures = vec![
        ("sent/s", sent / seconds as f64),
        ("deliveries/s", received / seconds as f64),
        ("p50 ms", recorder.quantile_ms(0.5)),
        ("p99 ms", recorder.quantile_ms(0.99)),
        ("p99.9 ms", recorder.quantile_ms(0.999)),
        ("server cpu %", cpu),
        ("generator cpu %", generator_cpu),
        ("lost", (expected - received).max(0.0)),
    ];
    stop(live);
    server.stop().await;
    Ok(row(kind, "", figures))
}

pub(crate) fn stop(live: Vec<Vec<Live>>) {
    for member in live.into_iter().flatten() {
        member.reader.abort();
    }
}

/// Scenario 3, max fan-out: one room of `members`; the send rate rises step by step until p99 passes
/// 50 ms or messages are lost; the highest passing step's deliveries a second.
pub async fn fanout(
    kind: Kind,
    members: usize,
    step_seconds: u64,
    start_rate: f64,
) -> anyhow::Result<Row> {
    // About 1.4x apart, from a rate every server here passes: coarser steps left the ratio
    // between two servers uncertain by a factor of two or more.
    const RATES: [f64; 22] = [
        10.0, 15.0, 25.0, 35.0, 50.0, 70.0, 100.0, 125.0, 150.0, 200.0, 250.0, 300.0, 400.0, 500.0,
        700.0, 1000.0, 1400.0, 2000.0, 2800.0, 4000.0, 5600.0, 8000.0,
    ];
    let server = Server::start(kind, &Database::Sqlite).await?;
    let all = populate(kind, &server, 1, members, "fan-out: connecting").await?;
    let (recorder, live) = record_all(kind, all).await;
    let mut best = (0.0, 0.0, 0.0, 0.0);
    let bar = progress(RATES.len() as u64, "fan-out: rate steps");
    for rate in RATES.into_iter().filter(|&rate| rate >= start_rate) {
        recorder.reset();
        let (server_before, generator_before) = (server.cpu_seconds(), generator_cpu_seconds());
        let until = Instant::now() + Duration::from_secs(step_seconds);
        let _ = sender(kind, &live[0][0], rate, Duration::ZERO, until, &recorder).await;
        let cpu_percent = |used: f64| used / step_seconds as f64 * 100.0;
        let server_cpu = cpu_percent(server.cpu_seconds() - server_before);
        let generator_cpu = cpu_percent(generator_cpu_seconds() - generator_before);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let sent = recorder.sent.load(Ordering::Relaxed) as f64;
        let received = recorder.received.load(Ordering::Relaxed) as f64;
        let p99 = recorder.quantile_ms(0.99);
        let lost = sent * members as f64 - received;
        bar.inc(1);
        bar.set_message(format!("fan-out: {rate}/s p99 {p99:.1} ms"));
        bar.suspend(|| {
            eprintln!(
                "  {}: {rate} msgs/s in, {:.0} deliveries/s, p99 {p99:.1} ms, lost {lost:.0}, \
                 cpu: server {server_cpu:.0} %, generator {generator_cpu:.0} %",
                kind.name(),
                received / step_seconds as f64
            )
        });
        if p99 > FANOUT_P99_LIMIT_MS || lost > 0.0 {
            break;
        }
        best = (rate, received / step_seconds as f64, p99, generator_cpu);
    }
    bar.finish_and_clear();
    stop(live);
    server.stop().await;
    Ok(row(
        kind,
        "",
        vec![
            ("members", members as f64),
            ("max msgs/s", best.0),
            ("max deliveries/s", best.1),
            ("p99 ms at max", best.2),
            ("generator cpu % at max", best.3),
        ],
    ))
}

/// Scenario 5, cluster: the room-chat load on `nodes` Confab nodes sharing PostgreSQL and a
/// Redis of the harness's own (one node: no Redis, as a single node runs), every room with
/// members on every node; the nodes and Redis share core 0.
pub async fn cluster_chat(
    nodes: usize,
    database: &Database,
    shape: (usize, usize),
    rate: f64,
    seconds: u64,
) -> anyhow::Result<Row> {
    let kind = Kind::ConfabWs;
    let (rooms, members) = shape;
    let redis = if nodes > 1 {
        Some(Redis::start().await?)
    } else {
        None
    };
    let bus = redis
        .as_ref()
        .map(|redis| redis.bus(&format!("bench{}:", now_us())));
    let mut servers = Vec::with_capacity(nodes);
    for _ in 0..nodes {
        servers.push(Server::start_node(kind, database, bus.as_ref()).await?);
    }
    let ports: Vec<u16> = servers.iter().map(|server| server.port).collect();
    let all = populate_on(kind, &ports, "u", rooms, members, 0, "cluster: connecting").await?;
    let (recorder, live) = record_all(kind, all).await;
    let servers_cpu = |servers: &[Server]| servers.iter().map(Server::cpu_seconds).sum::<f64>();
    let redis_cpu = |redis: &Option<Redis>| redis.as_ref().map_or(0.0, Redis::cpu_seconds);
    let (cpu_before, redis_before) = (servers_cpu(&servers), redis_cpu(&redis));
    let senders = start_senders(kind, &live, rate, seconds, &recorder);
    for s in senders {
        let _ = s.await;
    }
    let cpu_used = servers_cpu(&servers) - cpu_before;
    let redis_used = redis_cpu(&redis) - redis_before;
    tokio::time::sleep(DRAIN).await;
    let sent = recorder.sent.load(Ordering::Relaxed) as f64;
    let received = recorder.received.load(Ordering::Relaxed) as f64;
    let figures = vec![
        ("deliveries/s", received / seconds as f64),
        ("p50 ms", recorder.quantile_ms(0.5)),
        ("p99 ms", recorder.quantile_ms(0.99)),
        ("nodes cpu %", cpu_used / seconds as f64 * 100.0),
        ("redis cpu %", redis_used / seconds as f64 * 100.0),
        (
            "cpu us/delivery",
            (cpu_used + redis_used) / received.max(1.0) * 1e6,
        ),
        ("lost", (sent * members as f64 - received).max(0.0)),
    ];
    stop(live);
    for server in servers {
        server.stop().await;
    }
    let label = format!(
        "{nodes} node{}, {rate}/s a room",
        if nodes == 1 { "" } else { "s" }
    );
    Ok(row(kind, &label, figures))
}

/// Scenario 4, ingest: `senders` members, each alone in a room, each sending its next message when
/// its last one comes back stored and broadcast; messages stored per second.
pub async fn ingest(
    kind: Kind,
    database: Database,
    senders: usize,
    seconds: u64,
) -> anyhow::Result<Row> {
    let label = match database {
        Database::Sqlite => "sqlite",
        Database::Postgres(_) => "postgresql",
    };
    let server = Server::start(kind, &database).await?;
    let all = populate(kind, &server, senders, 1, "ingest: connecting").await?;
    let stored = Arc::new(AtomicU64::new(0));
    let recorder = Recorder::new();
    let until = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<JoinHandle<()>> = all
        .into_iter()
        .flatten()
        .map(|member| {
            let (stored, recorder) = (Arc::clone(&stored), Arc::clone(&recorder));
            tokio::spawn(async move {
                let Member {
                    room,
                    mut writer,
                    mut reader,
                    ..
                } = member;
                let mut n = 0u64;
                while Instant::now() < until {
                    let sent = now_us();
                    if writer
                        .send(client::chat_frame(kind, &room, &format!("{n} {sent}")))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    loop {
                        let Some(Ok(Message::Text(text))) = reader.next().await else {
                            return;
                        };
                        if client::chat_text(kind, text.as_str()).is_some() {
                            break;
                        }
                    }
                    recorder
                        .lock()
                        .saturating_record(now_us().saturating_sub(sent).max(1));
                    stored.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    let cpu_before = server.cpu_seconds();
    for task in tasks {
        let _ = task.await;
    }
    let cpu = (server.cpu_seconds() - cpu_before) / seconds as f64 * 100.0;
    server.stop().await;
    let total = stored.load(Ordering::Relaxed) as f64;
    Ok(row(
        kind,
        label,
        vec![
            ("senders", senders as f64),
            ("stored msgs/s", total / seconds as f64),
            ("p50 ms", recorder.quantile_ms(0.5)),
            ("p99 ms", recorder.quantile_ms(0.99)),
            ("server cpu %", cpu),
        ],
    ))
}
