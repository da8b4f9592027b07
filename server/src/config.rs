//! Configuration: every option is a command-line flag and a `CONFAB_*` environment variable.
//! The README's configuration table lists them all; keep the two in step.

use std::{net::SocketAddr, path::PathBuf};

use clap::{CommandFactory, FromArgMatches, Parser};

pub use crate::store::SqliteSynchronous;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "confab-server",
    version,
    about = "Confab real-time rooms server"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "CONFAB_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// Directory for the embedded database and generated secrets.
    #[arg(long, env = "CONFAB_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Database: `sqlite://PATH` or `postgres://...`. Default: `confab.db` in the data
    /// directory.
    #[arg(long, env = "CONFAB_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Secret for HS256 tokens (the guest tokens Confab issues and any HS256 JWT it accepts).
    /// Default: a random secret generated once and kept in the data directory.
    #[arg(long, env = "CONFAB_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// When set, tokens must carry this `iss` (Confab's own guest tokens excepted).
    #[arg(long, env = "CONFAB_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// When set, tokens must name this audience in `aud` (Confab's own guest tokens
    /// excepted), so tokens an identity provider mints for other apps are refused.
    #[arg(long, env = "CONFAB_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// JWKS with the public keys of RS256/ES256 tokens: a file path or an http(s) URL.
    #[arg(long, env = "CONFAB_JWKS")]
    pub jwks: Option<String>,

    /// Least seconds between two fetches of the JWKS (a token with an unknown `kid` triggers
    /// one).
    #[arg(long, env = "CONFAB_JWKS_REFRESH", default_value_t = 30)]
    pub jwks_refresh_secs: u64,

    /// Seconds a `/qf/auth/ws-token` token can be used to open a `/qf` socket.
    #[arg(long, env = "CONFAB_WS_TOKEN_TTL", default_value_t = crate::auth::ws_token::DEFAULT_TTL_SECS)]
    pub ws_token_ttl_secs: u64,

    /// Lifetime of guest tokens from `POST /api/auth/guest`, in seconds.
    #[arg(long, env = "CONFAB_GUEST_TOKEN_TTL", default_value_t = 24 * 60 * 60)]
    pub guest_token_ttl_secs: u64,

    /// Messages a connection may send per second, on average.
    #[arg(long, env = "CONFAB_MESSAGE_RATE", default_value_t = 20.0, value_parser = positive_rate)]
    pub message_rate: f64,

    /// Messages a connection may send in a burst above the average rate.
    #[arg(long, env = "CONFAB_MESSAGE_BURST", default_value_t = 40,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub message_burst: u32,

    /// Rooms one user may create per minute (and at once), through any dialect; rooms are
    /// never deleted, so this bounds what one account can add to the database.
    #[arg(long, env = "CONFAB_ROOMS_PER_MINUTE", default_value_t = crate::core::ROOMS_CREATED_PER_MINUTE,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rooms_per_minute: u32,

    /// Events queued for one connection before it counts as too slow and is closed (1013).
    #[arg(long, env = "CONFAB_OUTBOUND_QUEUE", default_value_t = 1024,
          value_parser = queue_len)]
    pub outbound_queue: usize,

    /// Milliseconds an announcement (a member joined or left, typing, who is online) may
    /// wait before it is written, so that those close together share one write; 0 writes
    /// each at once. Chat messages and answers never wait.
    #[arg(long, env = "CONFAB_ANNOUNCEMENT_DELAY_MS",
          default_value_t = crate::core::ANNOUNCEMENT_DELAY.as_millis() as u64,
          value_parser = clap::value_parser!(u64).range(0..=crate::core::MAX_ANNOUNCEMENT_DELAY.as_millis() as u64))]
    pub announcement_delay_ms: u64,

    /// Service key other backends present to publish (`POST /api/notifications`). Unset:
    /// publishing is off.
    #[arg(long, env = "CONFAB_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Log filter, in `tracing-subscriber`'s `EnvFilter` syntax.
    #[arg(long, env = "CONFAB_LOG", default_value = "info")]
    pub log: String,

    /// Whether Socket.IO clients without a token may connect to the default namespace
    /// (contract 001 has no auth; contract 002 clients may authenticate later). `deny`
    /// answers them `connect_error` "Authentication required".
    #[arg(long, env = "CONFAB_ANONYMOUS", value_enum, default_value_t = Anonymous::Deny)]
    pub anonymous: Anonymous,

    /// SQLite's durability: `full` syncs every commit to disk (nothing acknowledged is lost
    /// on power loss); `normal` syncs at checkpoints (nothing is lost on a process crash,
    /// the last commits may be on power loss). Ignored with PostgreSQL.
    #[arg(long, env = "CONFAB_SQLITE_SYNCHRONOUS", value_enum, default_value_t = SqliteSynchronous::Normal)]
    pub sqlite_synchronous: SqliteSynchronous,

    /// SQLite connections that only read, beside the one that writes. `0`: reads take
    /// turns on the writer's connection, whose page cache survives its own commits (the
    /// fastest here, with two cores). Ignored with PostgreSQL.
    #[arg(long, env = "CONFAB_SQLITE_READERS", default_value_t = crate::store::DEFAULT_SQLITE_READERS,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(crate::store::MAX_SQLITE_READERS)))]
    pub sqlite_readers: u32,

    /// Redis (`redis://host:6379`), to run several nodes as one system: they share
    /// deliveries and presence through it. Unset: this node stands alone. Needs a
    /// PostgreSQL database, which the nodes share.
    #[arg(long, env = "CONFAB_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key and channel Confab uses, contract 000's `usernames` and
    /// `user_image_urls` included. Default: none, so those two are named as the contract
    /// names them.
    #[arg(long, env = "CONFAB_REDIS_PREFIX", default_value = "")]
    pub redis_prefix: String,

    /// Origins (`https://app.example`, comma-separated; `*` for any) besides the server's
    /// own whose pages may open `/qf` sockets with the token cookie and call the REST API
    /// from a browser (CORS).
    #[arg(long, env = "CONFAB_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Seconds a request's headers may take to arrive before the connection is closed.
    #[arg(long, env = "CONFAB_HEADER_READ_TIMEOUT", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_secs: u64,

    /// Connections one client address (an IPv6 /64) may hold at once, WebSockets included;
    /// past it, new ones are closed at once.
    #[arg(long, env = "CONFAB_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections_per_address: u64,

    /// New connections one client address may open per second, on average, with bursts of
    /// twice as many; past it, new ones are closed at once. A client that reconnects as
    /// fast as it can (a flood that comes back each time it is cut off) is held to this.
    #[arg(long, env = "CONFAB_NEW_CONNECTIONS_PER_ADDRESS",
          default_value_t = crate::listener::DEFAULT_NEW_CONNECTIONS_PER_SECOND,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub new_connections_per_address: u32,

    /// Addresses (comma-separated) of load balancers and proxies in front, which the
    /// per-address cap does not apply to.
    #[arg(long, env = "CONFAB_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,

    /// Seconds a `/ws` connection has to authenticate before it is closed (1008).
    #[arg(long, env = "CONFAB_AUTH_DEADLINE", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub auth_deadline_secs: u64,

    /// Socket.IO connection state recovery (socket.io clients 4.6+), on the default
    /// namespace: a client that reconnects gets the chat messages it missed. Every event
    /// then carries one more argument, the client's offset, which `onAny` listeners see.
    #[arg(long, env = "CONFAB_SOCKETIO_RECOVERY")]
    pub socketio_recovery: bool,

    /// Days chat messages are kept; older ones are deleted. Unset: kept forever.
    #[arg(long, env = "CONFAB_MESSAGE_RETENTION_DAYS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub message_retention_days: Option<u64>,

    /// Days notifications are kept; older ones are deleted. Unset: kept forever.
    #[arg(long, env = "CONFAB_NOTIFICATION_RETENTION_DAYS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub notification_retention_days: Option<u64>,

    /// Seconds between `/readyz` turning 503 and the node closing its connections when it
    /// shuts down: time for a load balancer to stop sending it new ones.
    #[arg(long, env = "CONFAB_SHUTDOWN_DELAY", default_value_t = 0)]
    pub shutdown_delay_secs: u64,

    /// Address for `GET /metrics` (Prometheus) alone, e.g. `127.0.0.1:9090`. Unset:
    /// `/metrics` is served on the main address.
    #[arg(long, env = "CONFAB_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// Log lines as `json` or `text`; `auto` is text (coloured) on a terminal, JSON
    /// otherwise.
    #[arg(long, env = "CONFAB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,

    /// The built app (`cargo leptos build --release` writes it to `target/site`).
    #[arg(long, env = "CONFAB_SITE_DIR", default_value = "target/site")]
    pub site_dir: PathBuf,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Auto,
    Json,
    Text,
}

/// Whether tokenless Socket.IO clients are let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Anonymous {
    Allow,
    Deny,
}

/// The service key of [`Config::for_tests`].
pub const TEST_API_KEY: &str = "test-service-key-0123456789";

/// The HS256 secret of [`Config::for_tests`].
pub const TEST_JWT_SECRET: &str = "test-secret-test-secret-test-secret!";

impl Config {
    /// The database URL in force.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| crate::store::default_url(&self.data_dir))
    }

    /// The configuration a test server uses: port 0 on loopback, everything in `data_dir`.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Self {
        // The defaults, whatever the environment of the test holds.
        let defaults = Self::command()
            .mut_args(|arg| arg.env(None::<&str>))
            .try_get_matches_from(["confab-server"])
            .and_then(|matches| Self::from_arg_matches(&matches))
            .expect("the defaults are valid");
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            jwt_secret: Some(TEST_JWT_SECRET.into()),
            guest_token_ttl_secs: 3600,
            api_key: Some(TEST_API_KEY.into()),
            // Tests create many rooms as one user; the limit has its own test.
            rooms_per_minute: 10_000,
            // Tests connect thousands of clients from one address.
            max_connections_per_address: 100_000,
            new_connections_per_address: 1_000_000,
            log_format: LogFormat::Text,
            log: "warn".into(),
            site_dir: PathBuf::from("/nonexistent-site"),
            ..defaults
        }
    }
}

fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err("expected a positive number of messages per second".into()),
    }
}

/// The longest outbound queue accepted.
pub const MAX_OUTBOUND_QUEUE: usize = 1_000_000;

fn queue_len(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(len) if (1..=MAX_OUTBOUND_QUEUE).contains(&len) => Ok(len),
        _ => Err(format!(
            "expected a queue length from 1 to {MAX_OUTBOUND_QUEUE}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(flag: &str, value: &str) -> Result<Config, clap::Error> {
        let matches = Config::command()
            .mut_args(|arg| arg.env(None::<&str>))
            .try_get_matches_from(["confab-server", flag, value])?;
        Config::from_arg_matches(&matches)
    }

    fn announcement_delay(value: &str) -> Result<u64, clap::Error> {
        Ok(parse("--announcement-delay-ms", value)?.announcement_delay_ms)
    }

    #[test]
    fn the_announcement_delay_is_bounded() {
        assert_eq!(announcement_delay("0").unwrap(), 0, "written at once");
        let max = crate::core::MAX_ANNOUNCEMENT_DELAY.as_millis().to_string();
        assert_eq!(announcement_delay(&max).unwrap(), 2_000);
        assert!(announcement_delay("2001").is_err());
        assert!(announcement_delay("-1").is_err());
    }

    #[test]
    fn sqlite_readers_are_bounded() {
        let readers = |value| parse("--sqlite-readers", value).map(|c| c.sqlite_readers);
        assert_eq!(readers("0").unwrap(), 0, "reads on the writer's connection");
        assert_eq!(readers("64").unwrap(), crate::store::MAX_SQLITE_READERS);
        assert!(readers("65").is_err());
        assert!(readers("-1").is_err());
        assert_eq!(Config::for_tests("data").sqlite_readers, 0, "the default");
    }
}
