//! Scenario 7, join storms: what a node lost from a cluster costs the one its clients come
//! back to. Three rows per target:
//! - storm: `clients` clients arrive spread over `arrival`, each connecting, authenticating
//!   and joining one of `rooms` rooms that already have a member;
//! - rejoin: the storm's connections drop, and the same clients come back the same way,
//!   joining rooms they are members of already, as a lost node's clients do;
//! - fill: `fill` clients arrive at once and join one new room, each join announced to the
//!   members before it.
//!
//! Every joined client keeps reading (and answering Engine.IO pings), as a browser would, so
//! the announcements of later joins cost the server what they cost in production.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::task::JoinHandle;

use crate::{
    client::{self, Member},
    scenario::{progress, row, Row},
    target::{generator_cpu_seconds, Database, Kind, Server},
};

/// What one wave of joins measured.
struct Wave {
    joins: usize,
    /// Clients whose join failed or took longer than the generator waits for one.
    failed: usize,
    /// From the first arrival to the last client joined.
    elapsed: Duration,
    /// Each client's time from its arrival to its join being answered, in µs.
    latencies: Histogram<u64>,
    server_cpu: f64,
    generator_cpu: f64,
}

impl Wave {
    fn row(&self, kind: Kind, label: &str) -> Row {
        let seconds = self.elapsed.as_secs_f64();
        let ms = |q: f64| self.latencies.value_at_quantile(q) as f64 / 1000.0;
        row(
            kind,
            label,
            vec![
                ("joins", self.joins as f64),
                ("failed", self.failed as f64),
                ("seconds", seconds),
                ("joins/s", self.joins as f64 / seconds),
                ("p50 ms", ms(0.5)),
                ("p99 ms", ms(0.99)),
                ("server cpu %", 100.0 * self.server_cpu / seconds),
                ("generator cpu %", 100.0 * self.generator_cpu / seconds),
            ],
        )
    }
}

/// Reads a joined client's frames until its connection closes, answering pings.
fn keep_reading(kind: Kind, member: Member) -> JoinHandle<()> {
    let Member {
        mut writer,
        mut reader,
        ..
    } = member;
    tokio::spawn(async move {
        while client::next_text(&mut reader, &mut writer, kind)
            .await
            .is_ok()
        {}
    })
}

/// Client `i` of `users` arrives at `start + i × arrival / users` and joins `room_of(i)`.
async fn wave(
    kind: Kind,
    server: &Server,
    users: &[String],
    arrival: Duration,
    room_of: impl Fn(usize) -> String,
    label: &str,
) -> anyhow::Result<(Wave, Vec<JoinHandle<()>>)> {
    let bar = progress(users.len() as u64, label);
    let (cpu0, generator0) = (server.cpu_seconds(), generator_cpu_seconds());
    let start = Instant::now();
    let spacing = arrival.div_f64(users.len().max(1) as f64);
    let joins: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, user)| {
            let (user, room, port) = (user.clone(), room_of(i), server.port);
            let arrives = start + spacing.mul_f64(i as f64);
            tokio::spawn(async move {
                tokio::time::sleep_until(arrives.into()).await;
                // The room exists, so the capacity (for creating one) is not used.
                let member = client::join(kind, port, &user, Some(&room), 0).await?;
                let took = arrives.elapsed();
                anyhow::Ok((took, keep_reading(kind, member)))
            })
        })
        .collect();
    let mut latencies = Histogram::new_with_bounds(1, 120_000_000, 3)?;
    let mut readers = Vec::with_capacity(joins.len());
    let mut failed = 0;
    for join in joins {
        match join.await? {
            Ok((took, reader)) => {
                let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
                latencies.saturating_record(micros.max(1));
                readers.push(reader);
            }
            Err(err) => {
                if failed == 0 {
                    eprintln!("{label}: a join failed: {err:#}");
                }
                failed += 1;
            }
        }
        bar.inc(1);
    }
    let elapsed = start.elapsed();
    bar.finish_and_clear();
    let wave = Wave {
        joins: users.len() - failed,
        failed,
        elapsed,
        latencies,
        server_cpu: server.cpu_seconds() - cpu0,
        generator_cpu: generator_cpu_seconds() - generator0,
    };
    Ok((wave, readers))
}

/// How long the server may stay busy after a wave before the next starts anyway.
const SETTLE_WAIT: Duration = Duration::from_secs(60);
/// Below this share of its core, the server counts as idle.
const IDLE_CPU: f64 = 0.05;

/// Waits until the server is idle: after a storm whose late clients the generator gave up
/// on, the server is still working through their connections, and a wave started then
/// would measure that backlog, not its own joins.
async fn settle(server: &Server) {
    let step = Duration::from_millis(500);
    let until = Instant::now() + SETTLE_WAIT;
    while Instant::now() < until {
        let before = server.cpu_seconds();
        tokio::time::sleep(step).await;
        if server.cpu_seconds() - before < IDLE_CPU * step.as_secs_f64() {
            return;
        }
    }
}

/// The first member of a room for `capacity` members, named `name` where the dialect lets
/// the client name it (`/ws` rooms are named by a code the server gives).
async fn host(kind: Kind, server: &Server, name: &str, capacity: u32) -> anyhow::Result<Member> {
    let room = (kind != Kind::ConfabWs).then_some(name);
    client::join(kind, server.port, &format!("host-{name}"), room, capacity).await
}

/// The storm row, the rejoin row, then the fill row.
pub async fn joins(
    kind: Kind,
    clients: usize,
    rooms: usize,
    arrival: Duration,
    fill: usize,
) -> anyhow::Result<Vec<Row>> {
    let server = Server::start(kind, &Database::Sqlite).await?;
    // Each room's first member, who sees the storm's joins announced. Every room has room
    // for the storm's share of it.
    let per_room = u32::try_from(clients.div_ceil(rooms.max(1)) + 1)?;
    let mut names = Vec::with_capacity(rooms);
    let mut readers = Vec::new();
    for r in 0..rooms {
        let host = host(kind, &server, &format!("room-{r}"), per_room).await?;
        names.push(host.room.clone());
        readers.push(keep_reading(kind, host));
    }

    let users: Vec<String> = (0..clients).map(|i| format!("storm-{i}")).collect();
    let room_of = |i: usize| names[i % names.len()].clone();
    let (storm, dropped) = wave(kind, &server, &users, arrival, &room_of, "joins: storm").await?;

    // Their node is lost: their connections drop, and they all come back at once.
    for reader in dropped {
        reader.abort();
    }
    settle(&server).await;
    let (rejoin, more) = wave(kind, &server, &users, arrival, room_of, "joins: rejoin").await?;
    readers.extend(more);

    settle(&server).await;
    // The room holds `fill` members: its host and the wave's `fill - 1`.
    let host = host(kind, &server, "fill", u32::try_from(fill)?).await?;
    let room = host.room.clone();
    readers.push(keep_reading(kind, host));
    let users: Vec<String> = (1..fill).map(|i| format!("fill-{i}")).collect();
    let (filled, more) = wave(
        kind,
        &server,
        &users,
        Duration::ZERO,
        |_| room.clone(),
        "joins: fill",
    )
    .await?;
    readers.extend(more);

    for reader in readers {
        reader.abort();
    }
    server.stop().await;
    Ok(vec![
        storm.row(kind, "storm"),
        rejoin.row(kind, "rejoin"),
        filled.row(kind, "fill"),
    ])
}
