//! The servers under test: started by the harness, pinned to core 0, read from `/proc`.

use std::{
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

/// The HS256 secret the harness signs its tokens with, and Confab verifies them with.
pub const SECRET: &str = "bench-secret-bench-secret-bench-secret!";
/// The core the servers run on; the load generator takes the other one.
pub const SERVER_CORE: usize = 0;

/// A server the generator can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Confab's native dialect at `/ws`.
    ConfabWs,
    /// Confab's Socket.IO dialect (contract 004).
    ConfabSio,
    /// The raw axum broadcast server (`raw-ws`).
    RawWs,
    /// Socket.IO 4 on Node (`bench/peers/node-sio`).
    NodeSio,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Self::ConfabWs => "confab /ws",
            Self::ConfabSio => "confab socket.io",
            Self::RawWs => "raw axum ws",
            Self::NodeSio => "node socket.io",
        }
    }

    pub fn is_socket_io(self) -> bool {
        matches!(self, Self::ConfabSio | Self::NodeSio)
    }
}

/// Where Confab keeps its data in a run.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite,
    Postgres(String),
}

/// A running server.
pub struct Server {
    pub kind: Kind,
    pub port: u16,
    child: Child,
    _data: tempfile::TempDir,
}

fn binary(name: &str) -> PathBuf {
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    PathBuf::from(dir).join("release").join(name)
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The Redis a cluster's nodes share, and the prefix of one run's keys in it.
#[derive(Debug, Clone)]
pub struct Bus {
    pub url: String,
    pub prefix: String,
}

/// A redis-server of the harness's own, pinned with the servers, so its CPU is measured.
pub struct Redis {
    pub port: u16,
    child: Child,
}

impl Redis {
    pub async fn start() -> anyhow::Result<Self> {
        let port = free_port()?;
        let child = Command::new("taskset")
            .arg("-c")
            .arg(SERVER_CORE.to_string())
            .args([
                "redis-server",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start redis-server")?;
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if started.elapsed() > Duration::from_secs(10) {
                bail!("redis-server did not start listening");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self { port, child })
    }

    pub fn bus(&self, prefix: &str) -> Bus {
        Bus {
            url: format!("redis://127.0.0.1:{}", self.port),
            prefix: prefix.to_owned(),
        }
    }

    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of(&format!(
            "/proc/{}/stat",
            self.child.id().unwrap_or_default()
        ))
    }
}

/// How a server is started, beyond its kind and database.
#[derive(Default, Clone, Copy)]
struct Options {
    /// Connection state recovery on.
    recovery: bool,
    /// The default per-connection rate limits (the bench otherwise lifts them).
    rate_limited: bool,
}

impl Server {
    pub async fn start(kind: Kind, database: &Database) -> anyhow::Result<Self> {
        Self::start_node(kind, database, None).await
    }

    /// A server; for Confab, a node of the cluster on `bus` when there is one.
    pub async fn start_node(
        kind: Kind,
        database: &Database,
        bus: Option<&Bus>,
    ) -> anyhow::Result<Self> {
        Self::launch(kind, database, bus, Options::default()).await
    }

    /// A Socket.IO server with connection state recovery on (Confab's
    /// `--socketio-recovery`, Node's `connectionStateRecovery`).
    pub async fn start_recovering(kind: Kind) -> anyhow::Result<Self> {
        let options = Options {
            recovery: true,
            ..Options::default()
        };
        Self::launch(kind, &Database::Sqlite, None, options).await
    }

    /// Confab with its default per-connection rate limits, as it runs in production.
    pub async fn start_rate_limited(kind: Kind) -> anyhow::Result<Self> {
        let options = Options {
            rate_limited: true,
            ..Options::default()
        };
        Self::launch(kind, &Database::Sqlite, None, options).await
    }

    async fn launch(
        kind: Kind,
        database: &Database,
        bus: Option<&Bus>,
        options: Options,
    ) -> anyhow::Result<Self> {
        let port = free_port()?;
        let data = tempfile::tempdir()?;
        let addr = format!("127.0.0.1:{port}");
        let mut command = Command::new("taskset");
        command.arg("-c").arg(SERVER_CORE.to_string());
        match kind {
            Kind::ConfabWs | Kind::ConfabSio => {
                command
                    .arg(binary("confab-server"))
                    .env("CONFAB_ADDR", &addr)
                    .env("CONFAB_DATA_DIR", data.path())
                    .env("CONFAB_JWT_SECRET", SECRET);
                if !options.rate_limited {
                    // The bench measures the server, not its per-connection rate limit.
                    command
                        .env("CONFAB_MESSAGE_RATE", "1000000")
                        .env("CONFAB_MESSAGE_BURST", "1000000");
                }
                command
                    // Every member connects from this one address.
                    .env("CONFAB_MAX_CONNECTIONS_PER_ADDRESS", "10000000")
                    .env("CONFAB_NEW_CONNECTIONS_PER_ADDRESS", "10000000")
                    .env("CONFAB_LOG", "warn")
                    .env("CONFAB_SITE_DIR", data.path().join("no-site"));
                if let Database::Postgres(url) = database {
                    command.env("CONFAB_DATABASE_URL", url);
                }
                if let Some(bus) = bus {
                    command
                        .env("CONFAB_REDIS_URL", &bus.url)
                        .env("CONFAB_REDIS_PREFIX", &bus.prefix);
                }
                if options.recovery {
                    command.env("CONFAB_SOCKETIO_RECOVERY", "true");
                }
            }
            Kind::RawWs => {
                command.arg(binary("raw-ws")).arg(&addr);
            }
            Kind::NodeSio => {
                let dir = repo_root().join("bench/peers/node-sio");
                if !dir.join("node_modules/socket.io").is_dir() {
                    let status = Command::new("npm")
                        .args(["ci", "--silent", "--no-audit", "--no-fund"])
                        .current_dir(&dir)
                        .status()
                        .await?;
                    if !status.success() {
                        bail!("npm ci failed in {}", dir.display());
                    }
                }
                command
                    .arg("node")
                    .arg(dir.join("server.js"))
                    .arg(port.to_string());
                if options.recovery {
                    command.env("SIO_RECOVERY", "1");
                }
            }
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", kind.name()))?;
        let server = Self {
            kind,
            port,
            child,
            _data: data,
        };
        server.wait_until_listening().await?;
        Ok(server)
    }

    async fn wait_until_listening(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            if started.elapsed() > Duration::from_secs(30) {
                bail!("{} did not start listening", self.kind.name());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// The server's process (under `taskset`, which execs it).
    fn pid(&self) -> u32 {
        self.child.id().unwrap_or_default()
    }

    /// Resident memory, in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kib| kib * 1024)
    }

    /// CPU time used so far (user + system), in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of(&format!("/proc/{}/stat", self.pid()))
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// CPU time the load generator (this process) has used so far, in seconds: a generator near
/// 100 % of its core measures itself, not the server.
pub fn generator_cpu_seconds() -> f64 {
    cpu_seconds_of("/proc/self/stat")
}

/// User plus system CPU time from a `/proc/<pid>/stat` file, in seconds.
fn cpu_seconds_of(stat_path: &str) -> f64 {
    let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
