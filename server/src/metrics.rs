//! Prometheus metrics (`GET /metrics`, or only on `--metrics-addr` when set): what an
//! operator watches. Each is recorded with the `metrics` facade where it happens; the
//! exporter renders them all. PROTOCOL.md lists them with their labels.
//!
//! Hot paths (a connection's writes, a Socket.IO socket's emits) hold their counters,
//! made once per connection: a held counter is one atomic add, where recording by name
//! looks the metric up each time.

use std::{sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Tasks alive in the server's runtime, when scraped (gauge): one or two per connection,
/// plus a few of the server's own, so it should follow the connections and nothing else.
pub const RUNTIME_TASKS: &str = "confab_runtime_tasks";
/// Open connections, by `dialect` (gauge).
pub const CONNECTIONS_OPEN: &str = "confab_connections_open";
/// Connections ended, by `dialect` and `close` (the close code sent, `none` when the peer
/// went without one; for Socket.IO the disconnect reason).
pub const CONNECTIONS_CLOSED: &str = "confab_connections_closed_total";
/// Frames (plain WebSockets) or events (Socket.IO) sent to clients, by `dialect`.
pub const MESSAGES_SENT: &str = "confab_messages_sent_total";
/// Bytes of what `confab_messages_sent_total` counts, by `dialect`: the frames' text for
/// plain WebSockets, the rendered payloads of deliveries for Socket.IO.
pub const BYTES_SENT: &str = "confab_bytes_sent_total";
/// Connections found unable to keep up (their outbound queue full): closed with 1013 or
/// disconnected.
pub const OUTBOUND_OVERFLOWS: &str = "confab_outbound_overflows_total";
/// Chat messages stored.
pub const MESSAGES_STORED: &str = "confab_messages_stored_total";
/// Time to store one batch of chat messages (seconds, histogram).
pub const STORE_COMMIT_SECONDS: &str = "confab_store_commit_seconds";
/// Chat messages stored per batch (histogram).
pub const STORE_BATCH_SIZE: &str = "confab_store_batch_size";
/// On SQLite, profiles and room seats written per transaction of the join writer
/// (histogram).
pub const JOIN_BATCH_SIZE: &str = "confab_store_join_batch_size";
/// Actions refused by a rate limit, by `limit` (`messages`, `guest`, `ping`, `party`).
pub const RATE_LIMITED: &str = "confab_rate_limited_total";
/// Tokens refused, by `reason`.
pub const AUTH_FAILURES: &str = "confab_auth_failures_total";
/// JWKS fetches, by `outcome` (`ok`, `failed`).
pub const JWKS_REFRESHES: &str = "confab_jwks_refreshes_total";
/// Party sessions moving between phases, by `from` (`none` when created) and `to`
/// (`lobby`, `in_play`, `completed`, `ended`).
pub const PARTY_TRANSITIONS: &str = "confab_party_transitions_total";
/// Moderators' actions that took effect, by `action` (as the audit log names them).
pub const MODERATION_ACTIONS: &str = "confab_moderation_actions_total";
/// Messages this node published to the cluster's Redis channel, by `kind`.
pub const REDIS_PUBLISHED: &str = "confab_redis_published_total";
/// Messages this node received from other nodes, by `kind`.
pub const REDIS_RECEIVED: &str = "confab_redis_received_total";
/// From another node's publishing to this node's receiving (seconds, histogram; across
/// machines it includes their clocks' difference).
pub const REDIS_LAG_SECONDS: &str = "confab_redis_lag_seconds";

/// Sign-ins and joins waiting for their turn (gauge; `core::admission`): above zero only
/// in a storm of them.
pub const ADMISSIONS_WAITING: &str = "confab_admissions_waiting";

/// How often histograms are compacted.
const UPKEEP: Duration = Duration::from_secs(5);

const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// The process's recorder and its handle, installed on first use: every server in the
/// process (tests start several) records into it.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let seconds = [STORE_COMMIT_SECONDS, REDIS_LAG_SECONDS];
        let mut builder = PrometheusBuilder::new();
        for name in seconds {
            builder = builder
                .set_buckets_for_metric(Matcher::Full(name.into()), SECONDS_BUCKETS)
                .expect("buckets are not empty");
        }
        for name in [STORE_BATCH_SIZE, JOIN_BATCH_SIZE] {
            builder = builder
                .set_buckets_for_metric(Matcher::Full(name.into()), BATCH_BUCKETS)
                .expect("buckets are not empty");
        }
        let handle = builder
            .install_recorder()
            .expect("no other metrics recorder is installed");
        describe();
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("confab-metrics".into())
            .spawn(move || loop {
                std::thread::sleep(UPKEEP);
                upkeep.run_upkeep();
            })
            .expect("a thread starts");
        handle
    })
}

/// The text Prometheus scrapes.
pub fn render() -> String {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        metrics::gauge!(RUNTIME_TASKS).set(runtime.metrics().num_alive_tasks() as f64);
    }
    handle().render()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!(CONNECTIONS_OPEN, "Open connections, by dialect.");
    describe_gauge!(RUNTIME_TASKS, "Tasks alive in the server's runtime.");
    describe_gauge!(
        ADMISSIONS_WAITING,
        "Sign-ins and joins waiting for their turn."
    );
    describe_counter!(
        CONNECTIONS_CLOSED,
        "Connections ended, by dialect and close code (none: the peer went without one) or Socket.IO reason."
    );
    describe_counter!(
        MESSAGES_SENT,
        "Frames (plain WebSockets) or events (Socket.IO) sent to clients, by dialect."
    );
    describe_counter!(
        BYTES_SENT,
        Unit::Bytes,
        "Bytes sent to clients, by dialect."
    );
    describe_counter!(
        OUTBOUND_OVERFLOWS,
        "Connections whose outbound queue filled up (closed as too slow)."
    );
    describe_counter!(MESSAGES_STORED, "Chat messages stored.");
    describe_histogram!(
        STORE_COMMIT_SECONDS,
        Unit::Seconds,
        "Time to store one batch of chat messages."
    );
    describe_histogram!(STORE_BATCH_SIZE, "Chat messages stored per batch.");
    describe_histogram!(
        JOIN_BATCH_SIZE,
        "On SQLite, profiles and room seats written per transaction."
    );
    describe_counter!(RATE_LIMITED, "Actions refused by a rate limit, by limit.");
    describe_counter!(AUTH_FAILURES, "Tokens refused, by reason.");
    describe_counter!(JWKS_REFRESHES, "JWKS fetches, by outcome.");
    describe_counter!(
        PARTY_TRANSITIONS,
        "Party sessions moving between phases, by from (none: created) and to."
    );
    describe_counter!(
        MODERATION_ACTIONS,
        "Moderators' actions that took effect, by action."
    );
    describe_counter!(
        REDIS_PUBLISHED,
        "Messages published to the cluster's Redis channel, by kind."
    );
    describe_counter!(
        REDIS_RECEIVED,
        "Messages received from other nodes, by kind."
    );
    describe_histogram!(
        REDIS_LAG_SECONDS,
        Unit::Seconds,
        "From another node's publishing to this node's receiving."
    );
}

/// Counts an action refused by rate limit `limit`.
pub fn rate_limited(limit: &'static str) {
    metrics::counter!(RATE_LIMITED, "limit" => limit).increment(1);
}
