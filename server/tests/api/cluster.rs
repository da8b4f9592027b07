//! Several nodes, one system: three servers sharing one PostgreSQL database and one Redis
//! (each test with Redis keys of its own), in this process.

use std::time::Duration;

use confab_server::config::{Anonymous, Config, TEST_API_KEY};
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::channels::user_ids;
use crate::common::{db, spawn_app_at, Backend, ServerProcess, TestApp, WsClient};

/// The Redis the cluster tests share (they never restart it).
pub fn redis_url() -> String {
    std::env::var("CONFAB_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub struct Cluster {
    pub nodes: Vec<TestApp>,
    pub prefix: String,
    pub database_url: String,
}

/// `n` nodes on a fresh PostgreSQL database, joined through Redis under a fresh prefix.
pub async fn spawn_cluster(n: usize, configure: impl Fn(&mut Config)) -> Cluster {
    let scratch = tempfile::tempdir().unwrap();
    let database_url = db::fresh_database_url(Backend::Postgres, scratch.path()).await;
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let mut nodes = Vec::with_capacity(n);
    for _ in 0..n {
        let data_dir = tempfile::tempdir().unwrap();
        let node = spawn_app_at(Backend::Postgres, &database_url, data_dir, |config| {
            config.redis_url = Some(redis_url());
            config.redis_prefix = prefix.clone();
            configure(config);
        })
        .await;
        nodes.push(node);
    }
    Cluster {
        nodes,
        prefix,
        database_url,
    }
}

impl Cluster {
    pub async fn shutdown(self) {
        for node in self.nodes {
            node.shutdown().await;
        }
        db::drop_database(Backend::Postgres, &self.database_url).await;
    }
}

async fn create_room(ws: &mut WsClient) -> String {
    ws.send_json(json!({"type": "room:create", "roomType": "trivia"}))
        .await;
    let created = ws.recv_type("room:created").await;
    created["room"]["code"].as_str().unwrap().to_owned()
}

async fn join(ws: &mut WsClient, code: &str) {
    ws.send_json(json!({"type": "room:join", "code": code}))
        .await;
    ws.recv_type("room:history").await;
}

#[tokio::test]
async fn redis_with_sqlite_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path());
    config.redis_url = Some(redis_url());
    let refused = confab_server::Server::start(config).await.err().unwrap();
    assert!(
        refused.to_string().contains("PostgreSQL"),
        "the message says what to do: {refused}"
    );
}

#[tokio::test]
async fn every_dialect_on_every_node_shares_a_room() {
    let cluster = spawn_cluster(3, |config| config.anonymous = Anonymous::Allow).await;
    let urls: Vec<String> = cluster.nodes.iter().map(|node| node.http_url("")).collect();
    crate::socketio::run_node_tests_with(
        &cluster.nodes[0],
        "cluster.test.mjs",
        &[("CONFAB_URLS", urls.join(","))],
    )
    .await;
    cluster.shutdown().await;
}

/// socket.io clients recover what they missed on whichever node they reconnect to, the
/// node they left included when it was killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_clients_recover_on_another_node_and_after_a_kill() {
    let recovering = |config: &mut Config| {
        config.socketio_recovery = true;
        config.message_rate = 1000.0;
        config.message_burst = 1000;
    };
    let cluster = spawn_cluster(2, recovering).await;
    let victim = ProcessNode::start(
        &cluster,
        &redis_url(),
        &[
            ("CONFAB_SOCKETIO_RECOVERY", "true"),
            ("CONFAB_MESSAGE_RATE", "1000"),
            ("CONFAB_MESSAGE_BURST", "1000"),
        ],
    )
    .await;
    let mut urls = vec![format!("http://{}", victim.addr)];
    urls.extend(cluster.nodes.iter().map(|node| node.http_url("")));
    let victim_pid = victim.child.id().expect("the node runs").to_string();
    crate::socketio::run_node_tests_with(
        &cluster.nodes[0],
        "recovery.test.mjs",
        &[
            ("CONFAB_URLS", urls.join(",")),
            ("CONFAB_VICTIM_PID", victim_pid),
        ],
    )
    .await;
    drop(victim);
    cluster.shutdown().await;
}

#[tokio::test]
async fn chat_joins_and_typing_cross_nodes() {
    let cluster = spawn_cluster(3, |_| {}).await;
    let [one, two, three] = &cluster.nodes[..] else {
        unreachable!()
    };
    let mut ana = one.user("ana").await;
    let code = create_room(&mut ana).await;
    let mut ben = two.user("ben").await;
    join(&mut ben, &code).await;
    let joined = ana.recv_type("room:user_joined").await;
    assert_eq!(joined["user"]["userId"], "ben", "{joined}");
    let mut carl = three.user("carl").await;
    join(&mut carl, &code).await;
    ana.recv_type("room:user_joined").await;
    ben.recv_type("room:user_joined").await;

    ana.send_json(json!({"type": "room:chat", "code": code, "message": "hello, nodes"}))
        .await;
    for ws in [&mut ben, &mut carl, &mut ana] {
        let chat = ws.recv_type("room:chat").await;
        assert_eq!(
            (chat["message"].as_str(), chat["seq"].as_u64()),
            (Some("hello, nodes"), Some(1))
        );
    }

    // Typing reaches the others on other nodes, and stops there too.
    ben.send_json(json!({"type": "room:typing", "code": code, "typing": true}))
        .await;
    let typing = carl.recv_type("room:typing").await;
    assert_eq!(
        (typing["userId"].as_str(), typing["typing"].as_bool()),
        (Some("ben"), Some(true))
    );
    let stopped = carl.recv_json_within(Duration::from_secs(8)).await;
    assert_eq!(
        (stopped["type"].as_str(), stopped["typing"].as_bool()),
        (Some("room:typing"), Some(false))
    );

    // A leave on one node ends the member's subscriptions on every node.
    let mut ben_elsewhere = three.user("ben").await;
    ben_elsewhere
        .send_json(json!({"type": "room:state", "code": code}))
        .await;
    ben_elsewhere.recv_type("room:state").await;
    ben.send_json(json!({"type": "room:leave", "code": code}))
        .await;
    ana.recv_type("room:user_left").await;
    ana.send_json(json!({"type": "room:chat", "code": code, "message": "after ben left"}))
        .await;
    carl.recv_type("room:chat").await;
    ben_elsewhere
        .assert_silent_for(Duration::from_millis(300))
        .await;
    cluster.shutdown().await;
}

/// A moderator's action on one node reaches the clients of every node: a deletion, a
/// removal (which also ends the removed user's subscriptions there) and a ban (which
/// closes their connections there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderation_reaches_every_node() {
    let cluster = spawn_cluster(2, |_| {}).await;
    let [one, two] = &cluster.nodes[..] else {
        unreachable!()
    };
    let admin = |method: reqwest::Method, path: &str| {
        one.http
            .request(method, one.http_url(path))
            .header("x-api-key", TEST_API_KEY)
            .send()
    };
    let mut ana = one.user("ana").await;
    let code = create_room(&mut ana).await;
    let mut ben = two.user("ben").await;
    join(&mut ben, &code).await;
    ana.send_json(json!({"type": "room:chat", "code": code, "message": "to delete"}))
        .await;
    let sent = ben.recv_type("room:chat").await;
    let id = sent["id"].as_str().unwrap();

    let deleted = admin(
        reqwest::Method::DELETE,
        &format!("/api/admin/messages/{id}"),
    )
    .await
    .unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(ben.recv_type("room:deleted").await["id"], id);

    let removed = admin(
        reqwest::Method::DELETE,
        &format!("/api/admin/rooms/{code}/members/ben"),
    )
    .await
    .unwrap();
    assert_eq!(removed.status(), 204);
    assert_eq!(ben.recv_type("room:user_left").await["removed"], true);
    ana.send_json(json!({"type": "room:chat", "code": code, "message": "after"}))
        .await;
    ana.recv_type("room:chat").await;
    ben.assert_silent_for(Duration::from_millis(300)).await;

    let banned = admin(reqwest::Method::PUT, "/api/admin/bans/ben")
        .await
        .unwrap();
    assert_eq!(banned.status(), 200);
    assert_eq!(ben.recv_close_code().await, 1008);
    let mut again = two.ws().await;
    again
        .send_json(json!({"type": "auth", "token": crate::common::tokens::token_for("ben", "ben")}))
        .await;
    assert_eq!(
        again.recv_type("auth:error").await["error"],
        "this account is banned"
    );
    cluster.shutdown().await;
}

/// Three senders on three nodes post into one room as fast as they may; every member on
/// every node, the senders included, sees each message once, numbered 1 to 900 in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_delivers_a_room_in_seq_order() {
    const PER_SENDER: u64 = 300;
    let cluster = spawn_cluster(3, |config| {
        config.message_rate = 100_000.0;
        config.message_burst = 100_000;
    })
    .await;
    let mut host = cluster.nodes[0].user("host").await;
    let code = create_room(&mut host).await;
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for (i, node) in cluster.nodes.iter().enumerate() {
        let mut sender = node.user(&format!("sender{i}")).await;
        join(&mut sender, &code).await;
        senders.push(sender);
        let mut receiver = node.user(&format!("receiver{i}")).await;
        join(&mut receiver, &code).await;
        receivers.push(receiver);
    }
    let total = PER_SENDER * senders.len() as u64;
    let reading: Vec<_> = receivers
        .into_iter()
        .enumerate()
        .map(|(i, receiver)| {
            tokio::spawn(read_in_order(
                receiver,
                format!("receiver on node {i}"),
                total,
            ))
        })
        .collect();
    let sending: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(i, mut sender)| {
            let code = code.clone();
            tokio::spawn(async move {
                for n in 0..PER_SENDER {
                    let chat =
                        json!({"type": "room:chat", "code": code, "message": format!("m{n}")});
                    sender.send_json(chat).await;
                }
                read_in_order(sender, format!("sender on node {i}"), total).await
            })
        })
        .collect();
    for task in reading.into_iter().chain(sending) {
        let mut member = task.await.unwrap();
        // Nothing after the last: no duplicates.
        let quiet = Duration::from_millis(300);
        while let Ok(event) = tokio::time::timeout(quiet, member.recv_json()).await {
            assert_ne!(event["type"], "room:chat", "a duplicate: {event}");
        }
    }
    cluster.shutdown().await;
}

/// Reads `total` chat messages, which must be numbered 1, 2, … `total`.
async fn read_in_order(mut member: WsClient, who: String, total: u64) -> WsClient {
    let mut expected = 1;
    while expected <= total {
        let wait = Duration::from_secs(10);
        let Ok(Some(Ok(frame))) = tokio::time::timeout(wait, member.stream.next()).await else {
            panic!("{who} waits for {expected} of {total}");
        };
        let Ok(text) = frame.to_text() else { continue };
        let event: Value = serde_json::from_str(text).unwrap();
        if event["type"] == "room:chat" {
            assert_eq!(event["seq"].as_u64(), Some(expected), "{who}: {event}");
            expected += 1;
        }
    }
    member
}

/// `user_id`'s socket on the online-users channel of `node`, past its first snapshot.
async fn online_socket(node: &TestApp, user_id: &str) -> WsClient {
    let mut ws = node.qf_socket(user_id, "/qf/users/online/ws").await;
    assert_eq!(ws.recv_json().await["type"], "online_users_update");
    ws
}

/// Reads updates until one lists exactly `expected`; returns every list seen on the way.
async fn until_online(ws: &mut WsClient, expected: &[&str]) -> Vec<Vec<String>> {
    let mut seen = Vec::new();
    loop {
        let update = ws.recv_json().await;
        assert_eq!(update["type"], "online_users_update");
        let ids = user_ids(&update);
        assert_eq!(update["total_count"].as_u64().unwrap() as usize, ids.len());
        seen.push(ids.clone());
        if ids == expected {
            return seen;
        }
    }
}

async fn listed_online(node: &TestApp) -> Vec<String> {
    let listed: Value = node
        .get_as("observer", "/qf/users/online")
        .await
        .json()
        .await
        .unwrap();
    user_ids(&listed)
}

#[tokio::test]
async fn online_users_are_the_clusters_with_each_user_once() {
    let cluster = spawn_cluster(3, |_| {}).await;
    let [one, two, three] = &cluster.nodes[..] else {
        unreachable!()
    };
    let mut watcher = online_socket(three, "watcher").await;
    let tab_one = one.user("ana").await;
    let tab_two = two.user("ana").await;
    until_online(&mut watcher, &["ana", "watcher"]).await;
    for node in [one, two, three] {
        assert_eq!(
            listed_online(node).await,
            ["ana", "watcher"],
            "one list everywhere"
        );
    }

    // Closing one tab leaves ana online: no update without her, on any node.
    drop(tab_one);
    tokio::time::sleep(Duration::from_millis(500)).await;
    for node in [one, two, three] {
        assert_eq!(listed_online(node).await, ["ana", "watcher"]);
    }
    drop(tab_two);
    let seen = until_online(&mut watcher, &["watcher"]).await;
    assert!(
        seen.iter()
            .all(|ids| ids == &["watcher"] || ids.contains(&"ana".to_owned())),
        "ana never flapped: {seen:?}"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn notifications_and_pings_reach_a_user_on_another_node() {
    let cluster = spawn_cluster(3, |_| {}).await;
    let [one, two, three] = &cluster.nodes[..] else {
        unreachable!()
    };
    let mut ben = two.qf_socket("ben", "/qf/notifications/ws").await;
    // Ben is online on node two; node three knows it before it pings.
    wait_until_listed(three, "ben").await;

    let published = one
        .http
        .post(one.http_url("/api/notifications"))
        .bearer_auth(TEST_API_KEY)
        .json(&json!({"userId": "ben", "notificationType": "round_result",
                      "phraseText": "You won, on node one"}))
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), 201);
    let notification = ben.recv_type("notification").await;
    assert_eq!(notification["phrase_text"], "You won, on node one");

    let pinged = three
        .post_as("ana", "/qf/users/online/ben/ping", None)
        .await;
    assert_eq!(pinged.status(), 200);
    assert_eq!(pinged.json::<Value>().await.unwrap()["delivered_to"], 1);
    let ping = ben.recv_type("ping").await;
    assert_eq!(ping["from_username"], "ana");
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_party_with_players_on_three_nodes() {
    let cluster = spawn_cluster(3, |_| {}).await;
    let [one, two, three] = &cluster.nodes[..] else {
        unreachable!()
    };
    let created: Value = one
        .post_as("ana", "/qf/party", Some(json!({"max_players": 4})))
        .await
        .json()
        .await
        .unwrap();
    let id = created["session_id"].as_str().unwrap().to_owned();
    let code = created["code"].as_str().unwrap().to_owned();
    let mut ana = one
        .qf_socket("ana", &format!("/qf/party/{id}/ws?context=lobby"))
        .await;
    ana.recv_type("session_update").await;

    let joined = two
        .post_as("ben", "/qf/party/join", Some(json!({"code": code})))
        .await;
    assert_eq!(joined.status(), 200);
    let mut ben = two
        .qf_socket("ben", &format!("/qf/party/{id}/ws?context=lobby"))
        .await;
    ben.recv_type("session_update").await;
    assert_eq!(
        ana.recv_type("player_joined").await["player"]["user_id"],
        "ben"
    );

    let joined = three
        .post_as("carl", "/qf/party/join", Some(json!({"code": code})))
        .await;
    assert_eq!(joined.status(), 200);
    for ws in [&mut ana, &mut ben] {
        assert_eq!(
            ws.recv_type("player_joined").await["player"]["user_id"],
            "carl"
        );
    }
    let ready = three
        .post_as(
            "carl",
            &format!("/qf/party/{id}/ready"),
            Some(json!({"ready": true})),
        )
        .await;
    assert_eq!(ready.status(), 200);
    for ws in [&mut ana, &mut ben] {
        let event = ws.recv_type("player_ready").await;
        assert_eq!(
            (event["user_id"].as_str(), event["ready"].as_bool()),
            (Some("carl"), Some(true))
        );
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn signing_in_fills_contract_000s_redis_caches() {
    let cluster = spawn_cluster(1, |_| {}).await;
    let _ana = cluster.nodes[0].user("ana").await;
    let client = redis::Client::open(redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let deadline = std::time::Instant::now() + crate::common::WAIT;
    loop {
        let name: Option<String> = redis::cmd("HGET")
            .arg(format!("{}usernames", cluster.prefix))
            .arg("ana")
            .query_async(&mut redis)
            .await
            .unwrap();
        let image: Option<String> = redis::cmd("HGET")
            .arg(format!("{}user_image_urls", cluster.prefix))
            .arg("ana")
            .query_async(&mut redis)
            .await
            .unwrap();
        if name.is_some() {
            assert_eq!(
                (name.as_deref(), image.as_deref()),
                (Some("ana"), Some("https://img.example/ana.png"))
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the caches were never written"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.shutdown().await;
}

/// Polls `node`'s online list until `user_id` is on it.
async fn wait_until_listed(node: &TestApp, user_id: &str) {
    let deadline = std::time::Instant::now() + crate::common::WAIT;
    while !listed_online(node).await.iter().any(|id| id == user_id) {
        assert!(
            std::time::Instant::now() < deadline,
            "{user_id} never came online"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn rate_limits_hold_across_nodes() {
    let cluster = spawn_cluster(2, |_| {}).await;
    let [one, two] = &cluster.nodes[..] else {
        unreachable!()
    };
    let _ben = two.qf_socket("ben", "/qf/notifications/ws").await;
    wait_until_listed(one, "ben").await;
    // Pings per sender: the burst, spread over both nodes, then none on either.
    for n in 0..confab_server::PINGS_BURST {
        let node = [one, two][n as usize % 2];
        let pinged = node.post_as("ana", "/qf/users/online/ben/ping", None).await;
        assert_eq!(pinged.status(), 200, "ping {n}");
    }
    for node in [one, two] {
        let refused = node.post_as("ana", "/qf/users/online/ben/ping", None).await;
        assert_eq!(refused.status(), 429);
    }
    // Guest tokens per address, likewise.
    let guest = |node: &TestApp| {
        node.http
            .post(node.http_url("/api/auth/guest"))
            .json(&json!({"username": "Guest"}))
            .send()
    };
    for n in 0..confab_server::auth::guest::GUEST_TOKENS_BURST {
        let node = [one, two][n as usize % 2];
        assert_eq!(guest(node).await.unwrap().status(), 200, "guest token {n}");
    }
    for node in [one, two] {
        assert_eq!(guest(node).await.unwrap().status(), 429);
    }
    cluster.shutdown().await;
}

/// A node running as a process of its own, so that a test can kill it without a word.
struct ProcessNode;

impl ProcessNode {
    /// Starts the server binary as one more node of `cluster` (with Redis at `redis`).
    async fn start(cluster: &Cluster, redis: &str, env: &[(&str, &str)]) -> ServerProcess {
        let mut joined = vec![
            ("CONFAB_DATABASE_URL", cluster.database_url.as_str()),
            ("CONFAB_REDIS_URL", redis),
            ("CONFAB_REDIS_PREFIX", cluster.prefix.as_str()),
        ];
        joined.extend_from_slice(env);
        ServerProcess::start(&joined).await
    }
}

/// Sends `count` chat messages from `member`, one every `every`, while reading: returns the
/// `seq` of every message of its own it saw accepted (broadcast) and the last `seq` it saw,
/// once it has sent them all or its connection broke.
async fn chat_and_watch(
    member: WsClient,
    code: String,
    me: &'static str,
    count: usize,
    every: Duration,
) -> (Vec<u64>, u64) {
    use tokio_tungstenite::tungstenite::Message;
    let (mut sink, mut stream) = member.stream.split();
    let writer = tokio::spawn(async move {
        for n in 0..count {
            let chat = json!({"type": "room:chat", "code": code, "message": format!("{me} {n}")});
            if futures_util::SinkExt::send(&mut sink, Message::text(chat.to_string()))
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(every).await;
        }
        // Stay connected until every answer is read.
        tokio::time::sleep(Duration::from_secs(2)).await;
    });
    let mut mine = Vec::new();
    let mut last = 0;
    loop {
        let frame = tokio::select! {
            frame = stream.next() => frame,
            _ = tokio::time::sleep(Duration::from_secs(5)) => None,
        };
        let Some(Ok(Message::Text(text))) = frame else {
            if writer.is_finished() || !matches!(frame, Some(Ok(_))) {
                break;
            }
            continue;
        };
        let event: Value = serde_json::from_str(&text).unwrap();
        if event["type"] == "room:chat" {
            last = event["seq"].as_u64().unwrap();
            if event["from"] == me {
                mine.push(last);
            }
        }
    }
    writer.abort();
    (mine, last)
}

/// Every stored message of room `code` after `after`, paging through `room:history`.
async fn history_after(ws: &mut WsClient, code: &str, mut after: u64) -> Vec<u64> {
    let mut seqs = Vec::new();
    loop {
        ws.send_json(json!({"type": "room:history", "code": code, "afterSeq": after}))
            .await;
        let page = ws.recv_type("room:history").await;
        let page: Vec<u64> = page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_u64().unwrap())
            .collect();
        let Some(&last) = page.last() else {
            return seqs;
        };
        seqs.extend(page);
        after = last;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_loses_no_accepted_message_and_its_users_go_offline() {
    let fast = |config: &mut Config| {
        config.message_rate = 1000.0;
        config.message_burst = 1000;
    };
    let cluster = spawn_cluster(2, fast).await;
    let victim = ProcessNode::start(
        &cluster,
        &redis_url(),
        &[
            ("CONFAB_MESSAGE_RATE", "1000"),
            ("CONFAB_MESSAGE_BURST", "1000"),
        ],
    )
    .await;
    let [one, two] = &cluster.nodes[..] else {
        unreachable!()
    };
    let mut host = one.user("host").await;
    let code = create_room(&mut host).await;
    // Carl is only on the node that dies; Ana chats there; Ben chats on a node that lives.
    let _carl = crate::common::signed_in_at(&victim.ws_url(), "carl").await;
    let mut ana = crate::common::signed_in_at(&victim.ws_url(), "ana").await;
    join(&mut ana, &code).await;
    let mut ben = one.user("ben").await;
    join(&mut ben, &code).await;
    let mut dora = two.user("dora").await;
    join(&mut dora, &code).await;
    wait_until_listed(two, "carl").await;

    let every = Duration::from_millis(4);
    let ana_chat = tokio::spawn(chat_and_watch(ana, code.clone(), "ana", 10_000, every));
    let ben_chat = tokio::spawn(chat_and_watch(ben, code.clone(), "ben", 300, every));
    tokio::time::sleep(Duration::from_millis(500)).await;
    victim.kill().await;
    let killed_at = std::time::Instant::now();

    let (ana_accepted, ana_last) = ana_chat.await.unwrap();
    let (ben_accepted, _) = ben_chat.await.unwrap();
    assert!(
        ana_accepted.len() > 10,
        "ana chatted before the kill: {}",
        ana_accepted.len()
    );
    assert_eq!(
        ben_accepted.len(),
        300,
        "every message on a live node is accepted"
    );

    // Ana comes back on another node and asks for what she missed.
    let mut ana = two.user("ana").await;
    let missed = history_after(&mut ana, &code, ana_last).await;
    let all = history_after(&mut ana, &code, 0).await;
    let total = *all.last().unwrap();
    assert_eq!(
        all,
        (1..=total).collect::<Vec<_>>(),
        "the store has no gaps"
    );
    assert!(missed.iter().all(|seq| *seq > ana_last), "nothing twice");
    for seq in ana_accepted.iter().chain(&ben_accepted) {
        assert!(*seq <= total, "accepted message {seq} is stored");
    }

    // Dora, on a live node, saw every stored message once, in order.
    let mut seen = Vec::new();
    while let Ok(event) = tokio::time::timeout(Duration::from_secs(1), dora.recv_json()).await {
        if event["type"] == "room:chat" {
            seen.push(event["seq"].as_u64().unwrap());
        }
    }
    assert_eq!(seen, (1..=total).collect::<Vec<_>>());

    // The dead node's users go offline everywhere within the documented bound (12 s).
    while listed_online(two).await.iter().any(|id| id == "carl") {
        assert!(
            killed_at.elapsed() < Duration::from_secs(15),
            "carl is still online {:?} after the kill",
            killed_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(listed_online(one).await.iter().all(|id| id != "carl"));
    cluster.shutdown().await;
}

/// A Redis of the test's own on a free port, which it may stop and start again.
struct OwnRedis {
    port: u16,
    child: Option<tokio::process::Child>,
}

impl OwnRedis {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self { port, child: None };
        redis.restart().await;
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn restart(&mut self) {
        let child = tokio::process::Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server never listened"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_recover_from_a_redis_restart_without_silent_gaps() {
    let mut redis = OwnRedis::start().await;
    let url = redis.url();
    let cluster = spawn_cluster(2, move |config| {
        config.redis_url = Some(url.clone());
        config.message_rate = 1000.0;
        config.message_burst = 1000;
    })
    .await;
    let [one, two] = &cluster.nodes[..] else {
        unreachable!()
    };
    let mut host = one.user("host").await;
    let code = create_room(&mut host).await;
    let mut ana = one.user("ana").await;
    join(&mut ana, &code).await;
    let mut ben = two.user("ben").await;
    join(&mut ben, &code).await;
    // Carl is in the room on both nodes, and leaves on one while Redis is down.
    let mut carl = one.user("carl").await;
    join(&mut carl, &code).await;
    let mut carl_elsewhere = two.user("carl").await;
    // Ana's last messages are sent while Redis is down, and nothing after them would
    // reveal to Ben's node that it missed them.
    let every = Duration::from_millis(5);
    let ana_chat = tokio::spawn(chat_and_watch(ana, code.clone(), "ana", 200, every));
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.kill().await;
    carl.send_json(json!({"type": "room:leave", "code": code}))
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    redis.restart().await;

    let (accepted, _) = ana_chat.await.unwrap();
    assert_eq!(
        accepted.len(),
        200,
        "the node kept serving its own connections"
    );
    // Ben, on the other node, ends up with every message, in order, none twice: what the
    // outage kept from him is read from the store once Redis is back.
    let mut seen = Vec::new();
    while seen.len() < 200 {
        let event = ben.recv_json_within(Duration::from_secs(15)).await;
        if event["type"] == "room:chat" {
            seen.push(event["seq"].as_u64().unwrap());
        }
    }
    assert_eq!(seen, (1..=200).collect::<Vec<_>>());

    // The leave never crossed the bus; Carl's other node checked the memberships when
    // Redis came back, so his connection there no longer receives the room.
    tokio::time::sleep(Duration::from_millis(500)).await;
    ben.send_json(json!({"type": "room:chat", "code": code, "message": "after the outage"}))
        .await;
    ben.recv_type("room:chat").await;
    let quiet = Duration::from_millis(500);
    while let Ok(event) = tokio::time::timeout(quiet, carl_elsewhere.recv_json()).await {
        assert_ne!(event["message"], "after the outage", "carl left the room");
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn readyz_follows_the_nodes_redis() {
    let mut redis = OwnRedis::start().await;
    let url = redis.url();
    let cluster = spawn_cluster(1, move |config| config.redis_url = Some(url.clone())).await;
    let readyz = cluster.nodes[0].http_url("/readyz");
    let wait = Duration::from_secs(15);
    crate::operations::until_status(&readyz, 200, wait).await;
    redis.kill().await;
    let body = crate::operations::until_status(&readyz, 503, wait).await;
    assert!(
        body["reason"].as_str().unwrap().starts_with("redis"),
        "{body}"
    );
    redis.restart().await;
    crate::operations::until_status(&readyz, 200, wait).await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_node_that_shuts_down_takes_its_users_offline_at_once() {
    let mut cluster = spawn_cluster(2, |_| {}).await;
    let leaving = cluster.nodes.pop().unwrap();
    let _ana = leaving.user("ana").await;
    let staying = &cluster.nodes[0];
    wait_until_listed(staying, "ana").await;
    let client = redis::Client::open(redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let nodes_key = format!("{}confab:nodes", cluster.prefix);
    let members = |redis: &mut redis::aio::MultiplexedConnection| {
        let mut redis = redis.clone();
        let key = nodes_key.clone();
        async move {
            let nodes: Vec<String> = redis::cmd("SMEMBERS")
                .arg(key)
                .query_async(&mut redis)
                .await
                .unwrap();
            nodes.len()
        }
    };
    assert_eq!(members(&mut redis).await, 2);
    let stopped = std::time::Instant::now();
    leaving.shutdown().await;
    assert_eq!(
        members(&mut redis).await,
        1,
        "the node removed itself on the way out"
    );
    while listed_online(staying).await.iter().any(|id| id == "ana") {
        assert!(
            stopped.elapsed() < Duration::from_secs(3),
            "ana still online {:?} after her node stopped (the heartbeat would take 12 s)",
            stopped.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.shutdown().await;
}
