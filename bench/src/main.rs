//! Confab's benchmark harness. It starts each server pinned to core 0, runs its load
//! generator on core 1, and prints a table, with JSON and an SVG chart under
//! `target/bench/`. `scripts/bench.sh <scenario>` builds everything in release mode first;
//! `BENCHMARKS.md` has the latest figures.

mod client;
mod joins;
mod recovery;
mod report;
mod scenario;
mod soak;
mod target;

use clap::{Parser, Subcommand};
use target::{Database, Kind};

/// The core the load generator runs on.
const GENERATOR_CORE: usize = 1;

#[derive(Parser)]
#[command(about = "Benchmarks Confab beside a raw axum WebSocket server and Socket.IO on Node")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Server memory per idle, authenticated connection joined to a room.
    Idle {
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// Messages in each room before most of its members join (their join answers carry
        /// up to 50 of them).
        #[arg(long, default_value_t = 0)]
        history: usize,
        #[arg(long, value_delimiter = ',', default_values = ["confab-ws", "raw-ws", "confab-sio", "node-sio"])]
        targets: Vec<Kind>,
    },
    /// Rooms × members, each room receiving a steady message rate: latency, CPU, losses.
    RoomChat {
        #[arg(long, default_value_t = 100)]
        rooms: usize,
        #[arg(long, default_value_t = 100)]
        members: usize,
        /// Messages a second into each room.
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        #[arg(long, value_delimiter = ',', default_values = ["confab-ws", "raw-ws", "confab-sio", "node-sio"])]
        targets: Vec<Kind>,
    },
    /// One big room; the rate rises until p99 passes 50 ms: the most deliveries a second.
    Fanout {
        #[arg(long, default_value_t = 1000)]
        members: usize,
        #[arg(long, default_value_t = 5)]
        step_seconds: u64,
        /// The first rate step to try (msgs/s); lower steps are skipped. For profiling a
        /// server near its limit.
        #[arg(long, default_value_t = 0.0)]
        start_rate: f64,
        #[arg(long, value_delimiter = ',', default_values = ["confab-ws", "raw-ws", "confab-sio", "node-sio"])]
        targets: Vec<Kind>,
    },
    /// The room-chat load on one node and on several (PostgreSQL and Redis): deliveries,
    /// latency and CPU per delivery, across nodes.
    Cluster {
        /// Node counts to run, one after the other (1: a single node, without Redis).
        #[arg(long, value_delimiter = ',', default_values = ["1", "3"])]
        nodes: Vec<usize>,
        #[arg(long, default_value_t = 100)]
        rooms: usize,
        #[arg(long, default_value_t = 100)]
        members: usize,
        /// Messages a second into each room; several run one after the other.
        #[arg(long, value_delimiter = ',', default_values = ["1", "10"])]
        rate: Vec<f64>,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        #[arg(
            long,
            default_value = "postgres://postgres@127.0.0.1:5432/confab_bench"
        )]
        postgres: String,
    },
    /// Socket.IO connection state recovery: clients drop, miss messages and reconnect at
    /// once; connect latency with and without a replay, and messages replayed a second.
    Recovery {
        #[arg(long, default_value_t = 100)]
        clients: usize,
        /// Messages each client misses per round.
        #[arg(long, default_value_t = 100)]
        missed: usize,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        #[arg(long, value_delimiter = ',', default_values = ["confab-sio", "node-sio"])]
        targets: Vec<Kind>,
    },
    /// A long mixed run with the production rate limits: `/ws` and Socket.IO rooms chatting,
    /// clients of both arriving, joining, leaving and going, floods now and then; memory,
    /// tasks and connections sampled each minute.
    Soak(soak::Shape),
    /// Join storms: clients arriving within a second to connect, authenticate and join one
    /// of many rooms; then one room filled by clients arriving at once.
    Joins {
        #[arg(long, default_value_t = 10_000)]
        clients: usize,
        #[arg(long, default_value_t = 100)]
        rooms: usize,
        /// The storm's clients arrive evenly spread over this many seconds.
        #[arg(long, default_value_t = 1.0)]
        arrival_seconds: f64,
        /// Members of the one room of the second wave: its host and the clients who join it.
        #[arg(long, default_value_t = 1000)]
        fill: usize,
        #[arg(long, value_delimiter = ',', default_values = ["confab-ws", "raw-ws", "confab-sio", "node-sio"])]
        targets: Vec<Kind>,
    },
    /// Chat messages stored and acknowledged a second, on SQLite and on PostgreSQL.
    Ingest {
        #[arg(long, default_value_t = 50)]
        senders: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// PostgreSQL for the second run; empty skips it.
        #[arg(
            long,
            default_value = "postgres://postgres@127.0.0.1:5432/confab_bench"
        )]
        postgres: String,
    },
}

fn main() -> anyhow::Result<()> {
    if !core_affinity::set_for_current(core_affinity::CoreId { id: GENERATOR_CORE }) {
        eprintln!("warning: could not pin the load generator to core {GENERATOR_CORE}");
    }
    // Every connection is a file descriptor, here and in the server (which inherits it).
    let limit = rlimit::increase_nofile_limit(u64::MAX)?;
    eprintln!("file descriptor limit: {limit}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(Cli::parse()))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let command = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let (name, rows, headline) = match cli.scenario {
        Scenario::Idle {
            connections,
            history,
            targets,
        } => {
            let mut rows = Vec::new();
            for kind in targets {
                rows.push(scenario::idle(kind, connections, history).await?);
            }
            ("idle", rows, "KiB per connection")
        }
        Scenario::RoomChat {
            rooms,
            members,
            rate,
            seconds,
            targets,
        } => {
            let mut rows = Vec::new();
            for kind in targets {
                rows.push(scenario::room_chat(kind, rooms, members, rate, seconds).await?);
            }
            ("room-chat", rows, "deliveries/s")
        }
        Scenario::Fanout {
            members,
            step_seconds,
            start_rate,
            targets,
        } => {
            let mut rows = Vec::new();
            for kind in targets {
                rows.push(scenario::fanout(kind, members, step_seconds, start_rate).await?);
            }
            ("fanout", rows, "max deliveries/s")
        }
        Scenario::Cluster {
            nodes,
            rooms,
            members,
            rate,
            seconds,
            postgres,
        } => {
            let mut rows = Vec::new();
            for rate in rate {
                for &n in &nodes {
                    recreate_database(&postgres).await?;
                    let database = Database::Postgres(postgres.clone());
                    let shape = (rooms, members);
                    rows.push(scenario::cluster_chat(n, &database, shape, rate, seconds).await?);
                }
            }
            ("cluster", rows, "deliveries/s")
        }
        Scenario::Recovery {
            clients,
            missed,
            rounds,
            targets,
        } => {
            let mut rows = Vec::new();
            for kind in targets {
                rows.push(recovery::recovery(kind, clients, missed, rounds).await?);
            }
            ("recovery", rows, "replayed msgs/s (median round)")
        }
        Scenario::Joins {
            clients,
            rooms,
            arrival_seconds,
            fill,
            targets,
        } => {
            let arrival = std::time::Duration::from_secs_f64(arrival_seconds);
            let mut rows = Vec::new();
            for kind in targets {
                rows.extend(joins::joins(kind, clients, rooms, arrival, fill).await?);
            }
            ("joins", rows, "joins/s")
        }
        Scenario::Soak(shape) => ("soak", soak::soak(shape).await?, "rss MiB"),
        Scenario::Ingest {
            senders,
            seconds,
            postgres,
        } => {
            let mut rows =
                vec![scenario::ingest(Kind::ConfabWs, Database::Sqlite, senders, seconds).await?];
            if !postgres.is_empty() {
                recreate_database(&postgres).await?;
                rows.push(
                    scenario::ingest(
                        Kind::ConfabWs,
                        Database::Postgres(postgres),
                        senders,
                        seconds,
                    )
                    .await?,
                );
            }
            ("ingest", rows, "stored msgs/s")
        }
    };
    println!("{}", report::table(name, &rows));
    for path in report::save(name, &command, &rows, headline)? {
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// A fresh, empty database at `url` (the name is its last path segment).
async fn recreate_database(url: &str) -> anyhow::Result<()> {
    let (server, name) = url
        .rsplit_once('/')
        .ok_or_else(|| anyhow::anyhow!("no database name in {url}"))?;
    let admin = format!("{server}/postgres");
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        let status = tokio::process::Command::new("psql")
            .args([admin.as_str(), "-q", "-c", &sql])
            .status()
            .await?;
        anyhow::ensure!(status.success(), "psql failed: {sql}");
    }
    Ok(())
}
