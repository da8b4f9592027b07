//! Confab's server. `ARCHITECTURE.md` at the repository root is the map; in short:
//!
//! - [`dialects`] turn each wire format into calls on the core and render its events back;
//! - [`http`] holds the plain HTTP routes and the static site, [`rest`] what every REST
//!   route shares (the error type and extractors);
//! - [`Server`] ties them to a listener and shuts them down gracefully.

pub mod auth;
pub mod config;
pub mod core;
pub mod dialects;
pub mod fanout;
pub mod http;
pub mod listener;
pub mod metrics;
pub mod ratelimit;
pub mod rest;
pub mod retention;
pub mod store;
pub mod telemetry;
pub mod timefmt;

use std::{
    net::{IpAddr, SocketAddr},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
    },
    time::Duration,
};

use anyhow::Context;
use axum::Router;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::{
    auth::{guest, ws_token::WsTokens, JwksSource, Verifier},
    config::Config,
    core::{Core, CoreSettings},
    ratelimit::SharedLimiter,
};

/// Pings one user may send at once, and per minute on average.
pub const PINGS_BURST: u32 = 5;
pub const PINGS_PER_MINUTE: u32 = 10;

/// How long shutdown waits for open connections to close before giving up on them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How long shutdown waits for the other nodes to be told this one is leaving.
pub const LEAVE_GRACE: Duration = Duration::from_secs(2);

/// Locks `mutex`, recovering it from poisoning: a panic while one caller held it must not
/// make every later caller panic too.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// [`lock`] for a `RwLock`'s readers.
pub(crate) fn read<T>(rwlock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    rwlock.read().unwrap_or_else(PoisonError::into_inner)
}

/// [`lock`] for a `RwLock`'s writer.
pub(crate) fn write<T>(rwlock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    rwlock.write().unwrap_or_else(PoisonError::into_inner)
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<AppStateInner>,
}

struct AppStateInner {
    config: Config,
    core: Core,
    verifier: Verifier,
    ws_tokens: WsTokens,
    /// Connection state recovery's `pid`s; `None` when it is off.
    socketio_pids: Option<dialects::socketio::recovery::Pids>,
    guest_limiter: SharedLimiter<IpAddr>,
    /// Pings per sending user.
    ping_limiter: SharedLimiter<String>,
    /// Party sessions created per user.
    party_limiter: SharedLimiter<String>,
    /// Set when shutdown begins, before anything closes: `/readyz` answers 503 from then on.
    draining: AtomicBool,
    /// Cancelled when the server shuts down; every long-lived connection watches it.
    shutdown: CancellationToken,
    /// Tracks connection tasks so shutdown can wait for their close frames to go out.
    connections: TaskTracker,
}

impl AppState {
    async fn new(config: Config) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                config.data_dir.display()
            )
        })?;
        let database_url = config.database_url();
        if config.redis_url.is_some() && !store::is_postgres(&database_url) {
            anyhow::bail!(
                "--redis-url joins a cluster, and the nodes of a cluster share one PostgreSQL \
                 database: set --database-url postgres://… as well (SQLite is one node's own)"
            );
        }
        // Installed before anything records.
        crate::metrics::handle();
        let options = store::StoreOptions {
            sqlite_synchronous: config.sqlite_synchronous,
            sqlite_readers: config.sqlite_readers,
            ..store::StoreOptions::default()
        };
        let store = store::open_with(&database_url, options).await?;
        let redis = match &config.redis_url {
            Some(url) => {
                let keys = fanout::redis::Keys::new(&config.redis_prefix);
                Some(fanout::redis::connect(url, keys).await?)
            }
            None => None,
        };
        let buckets = redis.as_ref().map(fanout::redis::Connected::buckets);
        let limiter = |name, burst, per_minute| {
            SharedLimiter::per_minute(name, burst, per_minute, buckets.clone())
        };
        let guest_limiter = SharedLimiter::per_minute(
            "guest",
            guest::GUEST_TOKENS_BURST,
            guest::GUEST_TOKENS_PER_MINUTE,
            buckets.clone(),
        );
        let ping_limiter = limiter("ping", PINGS_BURST, PINGS_PER_MINUTE);
        let party_limiter = limiter(
            "party",
            dialects::channels::party::CREATED_BURST,
            dialects::channels::party::CREATED_PER_MINUTE,
        );
        let settings = CoreSettings {
            mailbox_capacity: config.outbound_queue,
            announcement_delay: Duration::from_millis(config.announcement_delay_ms),
            room_creations: Arc::new(limiter(
                "room",
                config.rooms_per_minute,
                config.rooms_per_minute,
            )),
            ..CoreSettings::default()
        };
        let core = match redis {
            None => Core::new(store, settings),
            Some(connected) => Core::with_fanout(store, settings, |parts| {
                fanout::redis::RedisFanout::start(connected, parts)
            }),
        };
        let secret = auth::load_or_create_secret(config.jwt_secret.as_deref(), &config.data_dir)?;
        let verifier = Verifier::new(
            &secret,
            config.jwt_issuer.clone(),
            config.jwt_audience.clone(),
            config.jwks.as_deref().map(JwksSource::parse),
            Duration::from_secs(config.jwks_refresh_secs),
        );
        let state = Self {
            inner: Arc::new(AppStateInner {
                core,
                verifier,
                ws_tokens: WsTokens::new(&secret, config.ws_token_ttl_secs),
                socketio_pids: config
                    .socketio_recovery
                    .then(|| dialects::socketio::recovery::Pids::new(&secret)),
                guest_limiter,
                ping_limiter,
                party_limiter,
                config,
                draining: AtomicBool::new(false),
                shutdown: CancellationToken::new(),
                connections: TaskTracker::new(),
            }),
        };
        let config = &state.inner.config;
        let policy = retention::Policy {
            message_days: config.message_retention_days,
            notification_days: config.notification_retention_days,
        };
        if !policy.keeps_everything() {
            let store = Arc::clone(state.core().store());
            let stop = state.inner.shutdown.clone();
            tokio::spawn(retention::run(store, policy, stop));
        }
        Ok(state)
    }

    pub fn core(&self) -> &Core {
        &self.inner.core
    }

    pub fn verifier(&self) -> &Verifier {
        &self.inner.verifier
    }

    pub fn ws_tokens(&self) -> &WsTokens {
        &self.inner.ws_tokens
    }

    pub fn socketio_pids(&self) -> Option<&dialects::socketio::recovery::Pids> {
        self.inner.socketio_pids.as_ref()
    }

    pub fn ping_limiter(&self) -> &SharedLimiter<String> {
        &self.inner.ping_limiter
    }

    pub fn party_limiter(&self) -> &SharedLimiter<String> {
        &self.inner.party_limiter
    }

    pub fn guest_limiter(&self) -> &SharedLimiter<IpAddr> {
        &self.inner.guest_limiter
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Whether shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Relaxed)
    }

    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// Runs a connection's task so that shutdown waits for it.
    pub fn spawn_connection<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.inner.connections.spawn(task);
    }
}

/// Handlers that only need the core take it alone (`State<Core>`).
impl axum::extract::FromRef<AppState> for Core {
    fn from_ref(state: &AppState) -> Self {
        state.core().clone()
    }
}

/// CORS for pages on the origins `CONFAB_ALLOWED_ORIGINS` lists (the server's own pages
/// need none). No credentials: no cookie authenticates a REST call, so a page on another
/// origin can only call with a token it holds.
fn cors(allowed: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::{header, HeaderName, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origins = if allowed.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        let listed = allowed
            .iter()
            .filter_map(|origin| HeaderValue::from_str(origin.trim_end_matches('/')).ok());
        AllowOrigin::list(listed)
    };
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("x-api-key"),
        ])
        .max_age(Duration::from_secs(60 * 60))
}

/// Every route: the dialects, the HTTP API and the static site.
pub fn router(state: AppState) -> Router {
    let socket_io = dialects::socketio::layer(&state);
    let cors = cors(&state.inner.config.allowed_origins);
    let mut routes = http::routes(&state.inner.config.site_dir).merge(dialects::routes());
    if state.inner.config.metrics_addr.is_none() {
        routes = routes.merge(http::metrics_routes());
    }
    routes
        .with_state(state)
        .layer(socket_io)
        .layer(axum::middleware::map_request(
            dialects::socketio::head::detach_request_head,
        ))
        .layer(cors)
        // The request id goes back to the client in the answer's `x-request-id`.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            // One line per request at `info` when it is answered: method, path, request id,
            // status and latency. The path only: a query string can hold a `/qf` token.
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(|request: &axum::http::Request<_>| {
                    let id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|id| id.to_str().ok())
                        .unwrap_or_default();
                    tracing::info_span!("request", method = %request.method(), path = request.uri().path(), id)
                })
                .on_response(
                    tower_http::trace::DefaultOnResponse::new()
                        .level(tracing::Level::INFO)
                        .latency_unit(tower_http::LatencyUnit::Millis),
                ),
        )
        // Outermost: every request has an id before anything logs it (a client's own
        // `x-request-id` is kept, so a request can be followed across services).
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// Serves `/metrics` alone on `addr`, until `shutdown`.
async fn serve_metrics(addr: SocketAddr, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for metrics"))?;
    let app = http::metrics_routes().with_state(());
    tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned());
        if let Err(err) = serve.await {
            tracing::error!(%err, "the metrics listener failed");
        }
    });
    Ok(())
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    state: AppState,
    serve: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Binds `config.addr` and starts serving in the background.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        let listener = listener::bind(config.addr)
            .with_context(|| format!("cannot listen on {}", config.addr))?;
        let addr = listener.local_addr()?;
        http::site::warn_if_missing(&config.site_dir);
        let state = AppState::new(config).await?;
        let app = router(state.clone());
        let token = state.inner.shutdown.clone();
        let config = &state.inner.config;
        let limits = listener::Limits {
            header_read_timeout: Duration::from_secs(config.header_read_timeout_secs),
            per_address: usize::try_from(config.max_connections_per_address).unwrap_or(usize::MAX),
            new_per_address_per_second: config.new_connections_per_address,
            trusted_proxies: config.trusted_proxies.clone(),
        };
        let serve = tokio::spawn(listener::serve(listener, app, limits, token));
        if let Some(metrics_addr) = config.metrics_addr {
            serve_metrics(metrics_addr, state.inner.shutdown.clone()).await?;
        }
        Ok(Self { addr, state, serve })
    }

    /// The address it listens on (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes every open WebSocket with 1001 and waits (up to
    /// [`SHUTDOWN_GRACE`]) for them to go.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let inner = &self.state.inner;
        // Unready first, so load balancers stop sending new connections, then close.
        inner.draining.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(inner.config.shutdown_delay_secs)).await;
        inner.shutdown.cancel();
        inner.core.close_connections();
        inner.connections.close();
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            let served = self.serve.await;
            inner.connections.wait().await;
            served
        })
        .await;
        // Every socket has signed out: the other nodes hear it, then that this one left.
        if tokio::time::timeout(LEAVE_GRACE, inner.core.leave_cluster())
            .await
            .is_err()
        {
            tracing::warn!("could not tell the other nodes in {LEAVE_GRACE:?} that this one left");
        }
        match drained {
            Ok(served) => served?.context("server failed")?,
            Err(_) => {
                tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; dropping them")
            }
        }
        Ok(())
    }
}
