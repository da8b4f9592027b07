//! Several nodes, one system: deliveries and presence shared through Redis.
//!
//! - **Deliveries.** Each is delivered on the node that made it at once, and published on
//!   one Redis channel, serialised once, for the other nodes to deliver to theirs. A node
//!   ignores its own. Chat messages go through the [`Sequencer`] on every node, so each
//!   connection receives its rooms' messages in `seq` order whichever nodes stored them.
//! - **Presence.** Each node keeps its users in a hash of its own (`…node:{id}:users`) and
//!   announces arrivals and departures on the channel, so the others' online lists change
//!   at once. A key that lives [`NODE_TTL`] unless the node renews it says the node is
//!   alive; every [`HEARTBEAT`] each node renews its own and reads the others' users
//!   afresh, so an announcement lost in an outage is mended. A user is dropped when two
//!   snapshots in a row lack them, so a node that died without a word takes its users
//!   offline everywhere within `NODE_TTL + 2 × HEARTBEAT` (12 s), and nobody flaps.
//! - **Membership.** A leave reaches every node as its `MemberLeft` delivery, which
//!   unsubscribes the user's connections there before it is delivered, as the leave did on
//!   its own node. The store refuses a message from a non-member whatever a node's
//!   subscriptions say, so the moments in between cannot let one post.
//! - **Outages.** Publishing never waits: commands queue (at most [`OUTBOX_CAPACITY`]) for
//!   one task that sends them in pipelines. While Redis is down, the node serves its own
//!   connections, logs once, and retries with backoff; once back, it reads from the store
//!   whatever its rooms may have missed and writes its users again. A node that could not
//!   publish for a while tells the others to do the same when it can again.
//! - **Limits** that protect the system are token buckets in Redis ([`Connected::buckets`]).

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicI64, Ordering},
        Arc,
    },
    time::Duration,
};

use anyhow::Context;
use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{order::Sequencer, Fanout};
use crate::{
    core::{
        events::{Delivery, Event, Topic},
        hub::Hub,
        model::Profile,
        now_ms,
        presence::Presence,
        FanoutParts,
    },
    ratelimit::SharedBuckets,
    store::Store,
};

/// How often a node says it is alive and reads the other nodes' users.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// How long a node counts as alive after its last heartbeat.
pub const NODE_TTL: Duration = Duration::from_secs(8);
/// Commands waiting for Redis at most; past it, deliveries are dropped for the other nodes
/// (and counted in the log), and chat messages are read from the store there instead.
pub const OUTBOX_CAPACITY: usize = 65_536;
/// Commands sent in one pipeline at most.
const PIPELINE_LEN: usize = 512;
/// How long a Redis command or connection attempt may take.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// Waits between attempts to subscribe again, doubling from the first to the last.
const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);

/// Where Confab keeps its state in Redis: every key and the channel start with `prefix`.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    fn channel(&self) -> String {
        format!("{}confab:bus", self.prefix)
    }

    fn nodes(&self) -> String {
        format!("{}confab:nodes", self.prefix)
    }

    fn alive(&self, node: &str) -> String {
        format!("{}confab:node:{node}:alive", self.prefix)
    }

    fn users(&self, node: &str) -> String {
        format!("{}confab:node:{node}:users", self.prefix)
    }

    fn bucket(&self, name: &str, key: &str) -> String {
        format!("{}confab:limit:{name}:{key}", self.prefix)
    }

    /// Contract 000's username cache.
    pub fn usernames(&self) -> String {
        format!("{}usernames", self.prefix)
    }

    /// Contract 000's avatar cache.
    pub fn image_urls(&self) -> String {
        format!("{}user_image_urls", self.prefix)
    }
}

/// A connection to Redis, made before the node starts serving.
pub struct Connected {
    client: redis::Client,
    commands: ConnectionManager,
    keys: Keys,
}

/// Connects to Redis at `url`; fails when it cannot be reached now.
pub async fn connect(url: &str, keys: Keys) -> anyhow::Result<Connected> {
    let client = redis::Client::open(url).context("invalid Redis URL")?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(REDIS_TIMEOUT))
        .set_response_timeout(Some(REDIS_TIMEOUT))
        .set_max_delay(LAST_RETRY);
    let commands = client
        .get_connection_manager_with_config(config)
        .await
        .with_context(|| format!("cannot connect to Redis at {}", redact(url)))?;
    Ok(Connected {
        client,
        commands,
        keys,
    })
}

impl Connected {
    /// Rate-limit buckets every node shares.
    pub fn buckets(&self) -> Arc<dyn SharedBuckets> {
        Arc::new(RedisBuckets {
            redis: self.commands.clone(),
            keys: self.keys.clone(),
            take: redis::Script::new(TAKE_TOKEN),
        })
    }
}

/// Takes a token from the bucket at `KEYS[1]` (`ARGV`: burst, refill per minute), with
/// Redis's clock, so that every node counts alike: 1 when there was one, 0 otherwise.
const TAKE_TOKEN: &str = r"
local burst = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2]) / 60000
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * per_ms)
local taken = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / per_ms) + 1000)
return taken
";

struct RedisBuckets {
    redis: ConnectionManager,
    keys: Keys,
    take: redis::Script,
}

#[async_trait]
impl SharedBuckets for RedisBuckets {
    async fn try_take(
        &self,
        name: &str,
        key: &str,
        burst: u32,
        per_minute: u32,
    ) -> anyhow::Result<bool> {
        let taken: i64 = self
            .take
            .key(self.keys.bucket(name, key))
            .arg(burst)
            .arg(per_minute)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(taken == 1)
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match url.split_once('@') {
        Some((credentials, host)) => {
            let scheme = credentials.split("://").next().unwrap_or("redis");
            format!("{scheme}://…@{host}")
        }
        None => url.to_owned(),
    }
}

/// What crosses between nodes.
#[derive(Serialize, Deserialize)]
struct Envelope {
    node: String,
    /// When the sender published it (Unix milliseconds), for the lag metric; 0 from nodes
    /// that did not say.
    #[serde(default)]
    sent_ms: i64,
    body: Body,
}

#[derive(Serialize, Deserialize)]
enum Body {
    Delivery(Box<Delivery>),
    Online(Profile),
    Offline(String),
    /// The sender could not publish for a while: what it stored meanwhile is in the store.
    CatchUp,
    /// Every [`HEARTBEAT`]: a node that hears nothing, not even its own, for
    /// [`SILENCE_LIMIT`] has lost its subscription without being told.
    Heartbeat,
    /// The sender is shutting down: its users are gone.
    Left,
}

impl Body {
    /// Its name in metrics.
    fn kind(&self) -> &'static str {
        match self {
            Self::Delivery(_) => "delivery",
            Self::Online(_) => "online",
            Self::Offline(_) => "offline",
            Self::CatchUp => "catch_up",
            Self::Heartbeat => "heartbeat",
            Self::Left => "left",
        }
    }
}

/// What the sending task does.
enum Command {
    Publish(Vec<u8>),
    /// The user's presence here changed. Written and announced as it is when the command is
    /// sent, not as it was when queued, so that a sign-in and a sign-out racing on two
    /// connections cannot leave the other nodes with the older of the two.
    Presence(String),
    /// Contract 000's caches only (a sign-in on a user already here).
    Cache(Profile),
    /// This node's users, written again in full (at start, after a loss).
    RewriteUsers,
    /// The node is leaving: its keys go, the others are told; then `done` is.
    Leave(tokio::sync::oneshot::Sender<()>),
}

/// How long a node may hear nothing on the channel (its own heartbeats included) before it
/// subscribes again.
const SILENCE_LIMIT: Duration = Duration::from_secs(3 * HEARTBEAT.as_secs());

/// The [`Fanout`] of a node in a cluster. Dropping it stops its tasks.
pub struct RedisFanout {
    shared: Arc<Shared>,
    stop: CancellationToken,
}

struct Shared {
    node: String,
    keys: Keys,
    /// The cluster channel and this node's users hash, named once: every command uses them.
    channel: String,
    users_key: String,
    hub: Arc<Hub>,
    presence: Arc<Presence>,
    store: Arc<dyn Store>,
    sequencer: Arc<Sequencer>,
    outbox: mpsc::Sender<Command>,
    /// This node's users must be written again in full (at start, after a loss).
    rewrite_users: AtomicBool,
    /// Something this node meant to publish was lost: the others must catch up.
    lost_publishes: AtomicBool,
    /// The outbox is full: logged once until it drains.
    overflowing: AtomicBool,
    /// Subscribed to the channel now.
    subscribed: AtomicBool,
    /// When the last heartbeat went through, in milliseconds since the Unix epoch.
    last_beat_ms: AtomicI64,
}

impl RedisFanout {
    /// Starts the node's Redis tasks over `connected`, for the core's `parts`.
    pub fn start(connected: Connected, parts: FanoutParts) -> Arc<Self> {
        let FanoutParts {
            hub,
            presence,
            store,
        } = parts;
        let (outbox, commands) = mpsc::channel(OUTBOX_CAPACITY);
        let node = uuid::Uuid::new_v4().simple().to_string();
        let shared = Arc::new(Shared {
            channel: connected.keys.channel(),
            users_key: connected.keys.users(&node),
            node,
            keys: connected.keys.clone(),
            sequencer: Sequencer::new(Arc::clone(&hub), Arc::clone(&store)),
            hub,
            presence,
            store,
            outbox,
            rewrite_users: AtomicBool::new(true),
            lost_publishes: AtomicBool::new(false),
            overflowing: AtomicBool::new(false),
            subscribed: AtomicBool::new(false),
            last_beat_ms: AtomicI64::new(0),
        });
        let stop = CancellationToken::new();
        tokio::spawn(stop.clone().run_until_cancelled_owned(send_commands(
            Arc::clone(&shared),
            connected.commands.clone(),
            commands,
        )));
        tokio::spawn(
            stop.clone()
                .run_until_cancelled_owned(listen(Arc::clone(&shared), connected.client)),
        );
        tokio::spawn(
            stop.clone()
                .run_until_cancelled_owned(heartbeat(Arc::clone(&shared), connected.commands)),
        );
        tracing::info!(node = %shared.node, "joined the cluster");
        Arc::new(Self { shared, stop })
    }
}

impl Drop for RedisFanout {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Fanout for RedisFanout {
    fn publish(&self, delivery: Delivery) {
        let Some((bytes, Body::Delivery(delivery))) =
            self.shared.envelope(Body::Delivery(Box::new(delivery)))
        else {
            return;
        };
        self.shared.sequencer.deliver(Arc::from(delivery));
        self.shared.send(Command::Publish(bytes));
    }

    fn signed_in(&self, profile: &Profile, first_here: bool) {
        let command = if first_here {
            Command::Presence(profile.user_id.clone())
        } else {
            Command::Cache(profile.clone())
        };
        self.shared.send(command);
    }

    fn gone_from_here(&self, user_id: &str) {
        self.shared.send(Command::Presence(user_id.to_owned()));
    }

    fn follow_room(&self, key: &str, last_seq: u64) {
        self.shared.sequencer.follow(key, last_seq);
    }

    fn leave(&self) -> futures_util::future::BoxFuture<'_, ()> {
        Box::pin(async move {
            let (done, left) = tokio::sync::oneshot::channel();
            self.shared.send(Command::Leave(done));
            let _ = left.await;
        })
    }

    fn ready(&self) -> Result<(), &'static str> {
        let since_beat = now_ms() - self.shared.last_beat_ms.load(Ordering::Relaxed);
        if !self.shared.subscribed.load(Ordering::Relaxed) {
            Err("redis: not subscribed")
        } else if since_beat > SILENCE_LIMIT.as_millis() as i64 {
            Err("redis: heartbeats failing")
        } else {
            Ok(())
        }
    }
}

impl Shared {
    fn envelope(&self, body: Body) -> Option<(Vec<u8>, Body)> {
        let envelope = Envelope {
            node: self.node.clone(),
            sent_ms: crate::core::now_ms(),
            body,
        };
        let kind = envelope.body.kind();
        metrics::counter!(crate::metrics::REDIS_PUBLISHED, "kind" => kind).increment(1);
        match serde_json::to_vec(&envelope) {
            Ok(bytes) => Some((bytes, envelope.body)),
            Err(err) => {
                tracing::error!(%err, "cannot serialise for the other nodes");
                None
            }
        }
    }

    /// Adds to `pipe` the publishing of `body` to the other nodes; `false` when it could not
    /// be serialised.
    fn announce(&self, pipe: &mut redis::Pipeline, body: Body) -> bool {
        let Some((bytes, _)) = self.envelope(body) else {
            return false;
        };
        pipe.publish(&self.channel, bytes).ignore();
        true
    }

    fn send(&self, command: Command) {
        match self.outbox.try_send(command) {
            Ok(()) => {
                self.overflowing.store(false, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                // Mended once Redis keeps up again: the users written in full, and the
                // other nodes told to read what they missed from the store.
                self.rewrite_users.store(true, Ordering::Relaxed);
                self.lost_publishes.store(true, Ordering::Relaxed);
                if !self.overflowing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        capacity = OUTBOX_CAPACITY,
                        "Redis is not keeping up: dropping deliveries for the other nodes"
                    );
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Handles what another node published.
    fn receive(self: &Arc<Self>, payload: &[u8]) {
        let envelope: Envelope = match serde_json::from_slice(payload) {
            Ok(envelope) => envelope,
            Err(err) => {
                tracing::warn!(%err, "unreadable message on the cluster channel");
                return;
            }
        };
        if envelope.node == self.node {
            return;
        }
        let kind = envelope.body.kind();
        metrics::counter!(crate::metrics::REDIS_RECEIVED, "kind" => kind).increment(1);
        if envelope.sent_ms > 0 {
            let lag_ms = (crate::core::now_ms() - envelope.sent_ms).max(0);
            metrics::histogram!(crate::metrics::REDIS_LAG_SECONDS).record(lag_ms as f64 / 1000.0);
        }
        match envelope.body {
            Body::Delivery(delivery) => {
                if let Event::MemberLeft { room_key, user } = &delivery.event {
                    self.hub
                        .unsubscribe_user(&user.user_id, &Topic::Room(room_key.clone()));
                }
                self.sequencer.deliver(Arc::from(delivery));
            }
            Body::Online(profile) => {
                if self.presence.arrive_elsewhere(&envelope.node, &profile) {
                    self.hub.presence_changed();
                }
            }
            Body::Offline(user_id) => {
                if self.presence.depart_elsewhere(&envelope.node, &user_id) {
                    self.hub.presence_changed();
                }
            }
            Body::CatchUp => self.recover(),
            Body::Heartbeat => {}
            Body::Left => {
                if self.presence.forget_node(&envelope.node) {
                    self.hub.presence_changed();
                }
            }
        }
    }

    /// After deliveries may have been lost (this node's subscription broke, or another node
    /// could not publish): reads what the rooms followed here missed from the store, and
    /// ends the subscriptions of users who left a room meanwhile, as the lost `MemberLeft`
    /// would have.
    fn recover(self: &Arc<Self>) {
        self.sequencer.catch_up();
        let this = Arc::clone(self);
        tokio::spawn(async move { this.reconcile_memberships().await });
    }

    async fn reconcile_memberships(&self) {
        for (user_id, key) in self.hub.room_followers() {
            match self.store.is_member(&key, &user_id).await {
                Ok(true) => {}
                Ok(false) => self.hub.unsubscribe_user(&user_id, &Topic::Room(key)),
                Err(err) => {
                    tracing::warn!(%err, "cannot check memberships after a loss");
                    return;
                }
            }
        }
    }

    fn profile_json(profile: &Profile) -> String {
        serde_json::to_string(profile).unwrap_or_default()
    }

    /// Adds `command` to `pipe`; a `Leave` hands back who to tell once the pipeline ran.
    fn add(
        &self,
        pipe: &mut redis::Pipeline,
        command: Command,
    ) -> Option<tokio::sync::oneshot::Sender<()>> {
        let (channel, users) = (&self.channel, &self.users_key);
        let ttl = NODE_TTL.as_secs() as i64;
        match command {
            Command::Publish(bytes) => {
                pipe.publish(channel, bytes).ignore();
            }
            Command::Presence(user_id) => match self.presence.here_profile(&user_id) {
                Some(profile) => {
                    pipe.hset(users, &user_id, Self::profile_json(&profile))
                        .ignore();
                    pipe.expire(users, ttl).ignore();
                    cache(pipe, &self.keys, &profile);
                    self.announce(pipe, Body::Online(profile));
                }
                None => {
                    pipe.hdel(users, &user_id).ignore();
                    self.announce(pipe, Body::Offline(user_id));
                }
            },
            Command::Cache(profile) => cache(pipe, &self.keys, &profile),
            Command::RewriteUsers => {
                pipe.del(users).ignore();
                let here: Vec<(String, String)> = self
                    .presence
                    .here()
                    .iter()
                    .map(|profile| (profile.user_id.clone(), Self::profile_json(profile)))
                    .collect();
                if !here.is_empty() {
                    pipe.hset_multiple(users, &here).ignore();
                    pipe.expire(users, ttl).ignore();
                }
            }
            Command::Leave(done) => {
                pipe.del(users).ignore();
                pipe.del(self.keys.alive(&self.node)).ignore();
                pipe.srem(self.keys.nodes(), &self.node).ignore();
                self.announce(pipe, Body::Left);
                return Some(done);
            }
        }
        None
    }
}

/// Sends queued commands in pipelines, in the order queued.
async fn send_commands(
    shared: Arc<Shared>,
    mut redis: ConnectionManager,
    mut commands: mpsc::Receiver<Command>,
) {
    let mut batch = Vec::with_capacity(PIPELINE_LEN);
    let mut failing = false;
    while commands.recv_many(&mut batch, PIPELINE_LEN).await > 0 {
        let mut pipe = redis::pipe();
        let leaving: Vec<_> = batch
            .drain(..)
            .filter_map(|command| shared.add(&mut pipe, command))
            .collect();
        let outcome = pipe.exec_async(&mut redis).await;
        for done in leaving {
            let _ = done.send(());
        }
        match outcome {
            Ok(()) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("publishing to Redis again");
                }
                if shared.lost_publishes.swap(false, Ordering::Relaxed) {
                    // The others missed what this node published meanwhile, and nothing
                    // later may reveal it: they read it from the store.
                    let mut pipe = redis::pipe();
                    if shared.announce(&mut pipe, Body::CatchUp)
                        && pipe.exec_async(&mut redis).await.is_err()
                    {
                        shared.lost_publishes.store(true, Ordering::Relaxed);
                    }
                }
            }
            Err(err) => {
                shared.rewrite_users.store(true, Ordering::Relaxed);
                shared.lost_publishes.store(true, Ordering::Relaxed);
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(%err, "cannot publish to Redis; serving this node's connections meanwhile");
                }
            }
        }
    }
}

/// Contract 000's caches: `HSET usernames {userId} {username}` and `HSET user_image_urls
/// {userId} {imageUrl}`.
fn cache(pipe: &mut redis::Pipeline, keys: &Keys, profile: &Profile) {
    pipe.hset(keys.usernames(), &profile.user_id, &profile.username)
        .ignore();
    if !profile.image_url.is_empty() {
        pipe.hset(keys.image_urls(), &profile.user_id, &profile.image_url)
            .ignore();
    }
}

/// Reads the cluster channel, subscribing again (with backoff) whenever the subscription is
/// lost or falls silent; after each loss, the node recovers what it may have missed.
async fn listen(shared: Arc<Shared>, client: redis::Client) {
    let channel = &shared.channel;
    let mut retry = FIRST_RETRY;
    let mut lost = false;
    loop {
        match subscribe(&client, channel).await {
            Ok(mut pubsub) => {
                if std::mem::take(&mut lost) {
                    tracing::info!("subscribed to Redis again; catching up from the store");
                    shared.recover();
                    shared.rewrite_users.store(true, Ordering::Relaxed);
                }
                retry = FIRST_RETRY;
                shared.subscribed.store(true, Ordering::Relaxed);
                let mut messages = pubsub.on_message();
                loop {
                    match tokio::time::timeout(SILENCE_LIMIT, messages.next()).await {
                        Ok(Some(message)) => shared.receive(message.get_payload_bytes()),
                        Ok(None) => {
                            tracing::warn!("lost the Redis subscription; serving this node's connections meanwhile");
                            break;
                        }
                        Err(_) => {
                            tracing::warn!(silent = ?SILENCE_LIMIT, "the Redis subscription fell silent; subscribing again");
                            break;
                        }
                    }
                }
                lost = true;
                shared.subscribed.store(false, Ordering::Relaxed);
            }
            Err(err) => {
                if !std::mem::replace(&mut lost, true) {
                    tracing::warn!(%err, "cannot subscribe to Redis; serving this node's connections meanwhile");
                }
            }
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(LAST_RETRY);
    }
}

async fn subscribe(
    client: &redis::Client,
    channel: &str,
) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = tokio::time::timeout(REDIS_TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| timed_out())??;
    tokio::time::timeout(REDIS_TIMEOUT, pubsub.subscribe(channel))
        .await
        .map_err(|_| timed_out())??;
    Ok(pubsub)
}

fn timed_out() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))
}

/// Says this node is alive, and reads which other nodes are and who is on them.
async fn heartbeat(shared: Arc<Shared>, mut redis: ConnectionManager) {
    let mut ticker = tokio::time::interval(HEARTBEAT);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(err) = beat(&shared, &mut redis).await {
            shared.rewrite_users.store(true, Ordering::Relaxed);
            tracing::debug!(%err, "heartbeat failed");
        }
    }
}

async fn beat(shared: &Shared, redis: &mut ConnectionManager) -> redis::RedisResult<()> {
    let keys = &shared.keys;
    let ttl = NODE_TTL.as_secs();
    if shared.rewrite_users.swap(false, Ordering::Relaxed) {
        // Through the outbox, in order with the presence commands queued before it.
        shared.send(Command::RewriteUsers);
    }
    let mut pipe = redis::pipe();
    pipe.set_ex(keys.alive(&shared.node), 1, ttl).ignore();
    pipe.sadd(keys.nodes(), &shared.node).ignore();
    pipe.expire(&shared.users_key, ttl as i64);
    shared.announce(&mut pipe, Body::Heartbeat);
    let (users_kept,): (bool,) = pipe.query_async(redis).await?;
    shared.last_beat_ms.store(now_ms(), Ordering::Relaxed);
    if !users_kept && shared.presence.has_here() {
        // The hash is gone (expired after a stall, evicted, a failover): write it again.
        shared.rewrite_users.store(true, Ordering::Relaxed);
    }

    let nodes: Vec<String> = redis::cmd("SMEMBERS")
        .arg(keys.nodes())
        .query_async(redis)
        .await?;
    let mut changed = false;
    for node in nodes.iter().filter(|node| **node != shared.node) {
        let alive: bool = redis::cmd("EXISTS")
            .arg(keys.alive(node))
            .query_async(redis)
            .await?;
        if !alive {
            redis::cmd("SREM")
                .arg(keys.nodes())
                .arg(node)
                .exec_async(redis)
                .await?;
            changed |= shared.presence.replace_node(node, HashMap::new());
            continue;
        }
        let users: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(keys.users(node))
            .query_async(redis)
            .await?;
        let users = users
            .into_iter()
            .filter_map(|(id, json)| Some((id, serde_json::from_str(&json).ok()?)))
            .collect();
        changed |= shared.presence.replace_node(node, users);
    }
    // Nodes no longer listed: gone, or not yet listed again in a Redis that restarted empty.
    // Like a dead node's, their users go after two snapshots without them.
    for gone in shared
        .presence
        .other_nodes()
        .into_iter()
        .filter(|node| !nodes.contains(node))
    {
        changed |= shared.presence.replace_node(&gone, HashMap::new());
    }
    if changed {
        shared.hub.presence_changed();
    }
    Ok(())
}
