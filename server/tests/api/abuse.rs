//! Attacks replayed against the server binary, each with its bound: how much the server's
//! memory (RSS) may grow, that a bystander on `/ws` is still answered throughout, and how the
//! attacking connections end. The attackers connect from 127.0.0.2, the bystander from
//! 127.0.0.1, so the per-address connection cap does not mix them up.
//!
//! Each test prints its figures (`cargo test --test api abuse:: -- --nocapture`); run
//! against a release build (`CONFAB_TEST_SERVER_BIN`) they are the ones BENCHMARKS.md gives.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
    sync::Mutex,
};
use tokio_tungstenite::{
    tungstenite::{protocol::WebSocketConfig, Message, Utf8Bytes},
    MaybeTlsStream,
};

use confab_server::listener::DEFAULT_NEW_CONNECTIONS_PER_SECOND;

use crate::common::{signed_in_at, spawn_app_with, tokens, ServerProcess, Stream, WsClient};

/// How much an attack may grow the server's resident memory, at its peak.
const MAX_RSS_GROWTH_MIB: f64 = 64.0;

/// The longest a bystander's ping may wait for its answer during an attack. A liveness
/// bound (a stalled server never answers), not a speed figure: those are printed.
const MAX_BYSTANDER_WAIT: Duration = Duration::from_secs(2);

/// How often the bystander pings: under the default message rate (20 a second), so that
/// every ping is answered rather than refused.
const PING_EVERY: Duration = Duration::from_millis(60);
/// Bystander connections, pinging in turn.
const BYSTANDERS: usize = 4;

/// The attacks run one at a time: each measures its own server's memory and a bystander's
/// latency, which another attack running beside it would disturb.
async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::OnceLock<Mutex<()>> = std::sync::OnceLock::new();
    LOCK.get_or_init(|| Mutex::new(())).lock().await
}

/// Where the attacks come from.
const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// A TCP connection to `addr` from the attacker's address.
async fn attacker_tcp(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(ATTACKER, 0))?;
    socket.connect(addr).await
}

/// A WebSocket from the attacker's address. Sends of any size: an attacker's client has no
/// limit.
async fn attacker_ws(url: &str, addr: SocketAddr) -> Stream {
    try_attacker_ws(url, addr)
        .await
        .expect("the attacker's WebSocket is accepted")
}

/// Like [`attacker_ws`]; `None` when the server refuses the connection.
async fn try_attacker_ws(url: &str, addr: SocketAddr) -> Option<Stream> {
    let tcp = attacker_tcp(addr).await.ok()?;
    let config = WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    let upgrade =
        tokio_tungstenite::client_async_with_config(url, MaybeTlsStream::Plain(tcp), Some(config));
    let (stream, _) = tokio::time::timeout(Duration::from_secs(5), upgrade)
        .await
        .ok()?
        .ok()?;
    Some(stream)
}

/// The server's resident memory, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the server runs");
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kib / 1024.0
}

/// The CPU time a process has used, in seconds (user and system).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the server runs");
    // The fields after the parenthesised name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields[i].parse::<f64>().expect("a tick count");
    (ticks(11) + ticks(12)) / 100.0
}

/// A server under attack: its process, a bystander who keeps pinging it, and the highest
/// memory seen.
struct Siege {
    server: ServerProcess,
    pid: u32,
    rss_before: f64,
    cpu_before: f64,
    started: Instant,
    peak_rss_kib: Arc<AtomicU64>,
    quiet: Vec<Duration>,
    stop: Arc<AtomicBool>,
    /// When the control ran, if it did (see [`Siege::control`]).
    control: Option<(Instant, Instant)>,
    /// Each bystander ping's start and wait.
    bystander: std::thread::JoinHandle<Vec<(Instant, Duration)>>,
    sampler: tokio::task::JoinHandle<()>,
}

impl Siege {
    /// Starts the server with `env`, measures the bystander's latency while all is quiet,
    /// then keeps the bystander pinging and memory sampled until [`Siege::end`].
    async fn start(env: &[(&str, &str)]) -> Self {
        // The server as it runs in production, where the test harness lifts a limit.
        let rate = DEFAULT_NEW_CONNECTIONS_PER_SECOND.to_string();
        let mut production = vec![("CONFAB_NEW_CONNECTIONS_PER_ADDRESS", rate.as_str())];
        production.extend_from_slice(env);
        let server = ServerProcess::start(&production).await;
        let pid = server.child.id().expect("the server runs");
        let stop = Arc::new(AtomicBool::new(false));
        let (quiet_done, quiet) = tokio::sync::oneshot::channel();
        let bystander = {
            let (stop, url) = (Arc::clone(&stop), server.ws_url());
            // On a thread and runtime of its own: its waits are the server's, not those of
            // the attack's tasks in the test's runtime.
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                runtime.block_on(async move {
                    // Several connections pinging in turn: more samples than one
                    // connection's rate limit allows.
                    let mut bystanders = Vec::new();
                    for n in 0..BYSTANDERS {
                        bystanders.push(signed_in_at(&url, &format!("bystander-{n}")).await);
                    }
                    let pause = PING_EVERY / BYSTANDERS as u32;
                    let mut quiet = Vec::new();
                    for n in 0..30 * BYSTANDERS {
                        quiet.push(ping(&mut bystanders[n % BYSTANDERS]).await);
                        tokio::time::sleep(pause).await;
                    }
                    let _ = quiet_done.send(quiet);
                    let mut waits = Vec::new();
                    for n in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let sent = Instant::now();
                        waits.push((sent, ping(&mut bystanders[n % BYSTANDERS]).await));
                        tokio::time::sleep(pause).await;
                    }
                    waits
                })
            })
        };
        let quiet = quiet.await.expect("the bystander measured a quiet server");
        let rss_before = rss_mib(pid);
        let (cpu_before, started) = (cpu_seconds(pid), Instant::now());
        let peak_rss_kib = Arc::new(AtomicU64::new(0));
        let sampler = {
            let (stop, peak) = (Arc::clone(&stop), Arc::clone(&peak_rss_kib));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max((rss_mib(pid) * 1024.0) as u64, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        Self {
            server,
            pid,
            rss_before,
            cpu_before,
            started,
            peak_rss_kib,
            quiet,
            stop,
            control: None,
            bystander,
            sampler,
        }
    }

    /// Runs `flood` for `how_long` against a WebSocket that only reads what it is sent
    /// and throws it away, not the server: the bystanders' waits meanwhile are what the
    /// attack costs this machine outside the server (the attacking client, loopback), which
    /// the attack's figures include.
    async fn control<F, Fut>(&mut self, how_long: Duration, flood: F)
    where
        F: FnOnce(Stream, Duration) -> Fut,
        Fut: std::future::Future<Output = (u64, bool)>,
    {
        yield_to_others();
        let sink = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = sink.local_addr().unwrap();
        let reader = std::thread::spawn(move || {
            let (tcp, _) = sink.accept().unwrap();
            let mut ws = tokio_tungstenite::tungstenite::accept(tcp).unwrap();
            let mut read = 0_u64;
            while ws.read().is_ok() {
                read += 1;
            }
            read
        });
        let started = Instant::now();
        let ws = attacker_ws(&format!("ws://{addr}/"), addr).await;
        let (sent, _) = flood(ws, how_long).await;
        self.control = Some((started, Instant::now()));
        let read = reader.join().unwrap();
        println!("abuse figure: control: {sent} events sent, {read} read and thrown away");
        (self.cpu_before, self.started) = (cpu_seconds(self.pid), Instant::now());
    }

    fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// Ends the siege: prints its figures and checks the bounds every attack shares.
    async fn end(self, attack: &str) {
        self.stop.store(true, Ordering::Relaxed);
        let waits = self
            .bystander
            .join()
            .expect("the bystander was answered every time");
        self.sampler.await.unwrap();
        let peak = (self.peak_rss_kib.load(Ordering::Relaxed) as f64 / 1024.0).max(self.rss_before);
        let after = rss_mib(self.pid);
        let cpu = (cpu_seconds(self.pid) - self.cpu_before) / self.started.elapsed().as_secs_f64();
        let (control, waits): (Vec<_>, Vec<_>) = waits
            .into_iter()
            .partition(|(sent, _)| self.control.is_some_and(|(_, end)| *sent < end));
        if self.control.is_some() {
            let control = percentiles(control.into_iter().map(|(_, wait)| wait).collect());
            println!(
                "abuse figure: {attack}: control (the same flood, into a socket that throws \
                 it away): bystander ping p50/p99/max {} ({} pings)",
                control.text, control.count
            );
        }
        let waits = waits.into_iter().map(|(_, wait)| wait).collect();
        let (quiet, under_attack) = (percentiles(self.quiet), percentiles(waits));
        println!(
            "abuse figure: {attack}: RSS {:.1} MiB before, {peak:.1} at peak (+{:.1}), {after:.1} after; \
             server CPU {:.0} %; bystander ping p50/p99/max {} quiet, {} under attack ({} pings)",
            self.rss_before,
            peak - self.rss_before,
            cpu * 100.0,
            quiet.text,
            under_attack.text,
            under_attack.count,
        );
        assert!(
            peak - self.rss_before < MAX_RSS_GROWTH_MIB,
            "{attack}: RSS grew by {:.1} MiB",
            peak - self.rss_before
        );
        assert!(
            under_attack.max < MAX_BYSTANDER_WAIT,
            "{attack}: a bystander's ping waited {:?}",
            under_attack.max
        );
        self.server.kill().await;
    }
}

/// Lowers the calling thread's priority to the least (nice 19). The attacker shares this
/// machine's two cores with the server and the bystander; at equal priority, whenever all
/// three want a core, the scheduler makes the bystander or the server's worker wait out the
/// attacker's timeslice (milliseconds), which an attacker on another machine could not do.
/// At nice 19 the attacker still takes any core left idle; here it then sends about a
/// quarter fewer events in a flood than at equal priority.
fn yield_to_others() {
    let this_thread = std::fs::read_link("/proc/thread-self").expect("Linux's /proc");
    let tid = this_thread.file_name().expect("pid/task/tid");
    let lowered = std::process::Command::new("renice")
        .args(["-n", "19", "-p"])
        .arg(tid)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("renice runs");
    assert!(lowered.success());
}

/// A ping's round trip on `/ws` (its answer is `room:state`).
async fn ping(ws: &mut WsClient) -> Duration {
    let sent = Instant::now();
    ws.send_json(json!({"type": "ping"})).await;
    match tokio::time::timeout(MAX_BYSTANDER_WAIT * 5, ws.recv_type("room:state")).await {
        Ok(_) => sent.elapsed(),
        Err(_) => panic!("the bystander's ping was never answered"),
    }
}

struct Percentiles {
    count: usize,
    max: Duration,
    text: String,
}

fn percentiles(mut waits: Vec<Duration>) -> Percentiles {
    waits.sort();
    let at = |q: f64| waits[((waits.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Percentiles {
        count: waits.len(),
        max: *waits.last().unwrap(),
        text: format!(
            "{:.1}/{:.1}/{:.1} ms",
            ms(at(0.5)),
            ms(at(0.99)),
            ms(*waits.last().unwrap())
        ),
    }
}

/// Engine.IO 4 over a WebSocket by hand, signed in to the default namespace with `token`:
/// an attacker needs no socket.io-client.
async fn socket_io(addr: SocketAddr, token: &str) -> Stream {
    try_socket_io(addr, token)
        .await
        .expect("a Socket.IO connection")
}

/// Like [`socket_io`]; `None` when the server refuses the connection.
async fn try_socket_io(addr: SocketAddr, token: &str) -> Option<Stream> {
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let mut ws = try_attacker_ws(&url, addr).await?;
    let open = next_text(&mut ws).await?;
    assert!(open.starts_with('0'), "{open}");
    ws.send(Message::text(format!("40{}", json!({"token": token}))))
        .await
        .ok()?;
    let connect = next_text(&mut ws).await?;
    assert!(connect.starts_with("40"), "{connect}");
    Some(ws)
}

/// The next text frame, answering Engine.IO pings (`2`) on the way.
async fn next_text(ws: &mut Stream) -> Option<String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) if text.as_str() == "2" => {
                ws.send(Message::text("3")).await.ok()?;
            }
            Ok(Some(Ok(Message::Text(text)))) => return Some(text.to_string()),
            Ok(Some(Ok(_))) => {}
            _ => return None,
        }
    }
}

/// Sends `join_room` as fast as the socket takes it until the server cuts it off (or
/// `limit` passes); how many it sent and whether it was cut off.
async fn flood_join_room(ws: Stream, limit: Duration) -> (u64, bool) {
    let (mut sink, mut source) = ws.split();
    let cut_off = Arc::new(AtomicBool::new(false));
    let reader = {
        let cut_off = Arc::clone(&cut_off);
        tokio::spawn(async move {
            while let Some(Ok(frame)) = source.next().await {
                if frame.is_close() {
                    break;
                }
            }
            cut_off.store(true, Ordering::Relaxed);
        })
    };
    let started = Instant::now();
    let mut sent = 0;
    'flood: while started.elapsed() < limit && !cut_off.load(Ordering::Relaxed) {
        for _ in 0..64 {
            let frame = Message::text(format!(r#"42["join_room","flood-{sent}"]"#));
            if sink.feed(frame).await.is_err() {
                break 'flood;
            }
            sent += 1;
        }
        if sink.flush().await.is_err() {
            break;
        }
    }
    if !cut_off.load(Ordering::Relaxed) {
        // Out of time: the attacker closes.
        let _ = sink.close().await;
    }
    let ended = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .is_ok();
    (sent, ended && cut_off.load(Ordering::Relaxed))
}

#[tokio::test]
async fn a_socket_io_join_room_flood_is_cut_off_and_others_carry_on() {
    let _one = one_at_a_time().await;
    let mut siege = Siege::start(&[]).await;
    siege.control(Duration::from_secs(5), flood_join_room).await;
    let addr = siege.addr();
    let token = tokens::token_for("flooder", "flooder");

    // One socket floods; then the attacker reconnects and floods again, for 5 s in all.
    let started = Instant::now();
    let (mut floods, mut sent, mut refused) = (0, 0, 0);
    while started.elapsed() < Duration::from_secs(5) {
        // Past its address's rate of new connections, the attacker is refused at once.
        let Some(ws) = try_socket_io(addr, &token).await else {
            refused += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let (count, cut_off) = flood_join_room(ws, Duration::from_secs(5)).await;
        assert!(cut_off, "a socket flooding join_room is disconnected");
        floods += 1;
        sent += count;
    }
    assert!(floods > 0);
    println!(
        "abuse figure: join_room flood: {floods} sockets cut off after {sent} events in all, \
         {refused} connections refused"
    );
    siege.end("Socket.IO join_room flood, reconnecting").await;
}

#[tokio::test]
async fn socket_io_messages_over_64_kib_before_any_token_cost_nothing() {
    let _one = one_at_a_time().await;
    let siege = Siege::start(&[]).await;
    let addr = siege.addr();
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    // Six connections, each sending a 60 MiB message (before the fix, the server read
    // and kept all of it: +440 MB). The message has to be cut off at 64 KiB.
    let payload = Utf8Bytes::from(format!("42{}", "x".repeat(60 << 20)));
    let mut attacks = Vec::new();
    for _ in 0..6 {
        let mut ws = attacker_ws(&url, addr).await;
        let payload = payload.clone();
        attacks.push(tokio::spawn(async move {
            let _ = ws.send(Message::Text(payload)).await;
            // The server ends the connection.
            matches!(
                tokio::time::timeout(Duration::from_secs(10), async {
                    while let Some(Ok(_)) = ws.next().await {}
                })
                .await,
                Ok(())
            )
        }));
    }
    for attack in attacks {
        assert!(
            attack.await.unwrap(),
            "an oversized message ends its connection"
        );
    }
    siege
        .end("six 60 MiB Socket.IO messages before a token")
        .await;
}

#[tokio::test]
async fn slowloris_connections_are_capped_and_cut_off_while_others_are_served() {
    let _one = one_at_a_time().await;
    // Over the file-descriptor limit a test process starts with, on this side too.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let siege = Siege::start(&[
        ("CONFAB_HEADER_READ_TIMEOUT", "2"),
        ("CONFAB_MAX_CONNECTIONS_PER_ADDRESS", "500"),
    ])
    .await;
    let addr = siege.addr();
    // 2,000 connections that send headers a line at a time and never finish.
    const SLOW: usize = 2000;
    let started = Instant::now();
    let mut slow = Vec::with_capacity(SLOW);
    for _ in 0..SLOW {
        if let Ok(mut tcp) = attacker_tcp(addr).await {
            if tcp
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: confab\r\n")
                .await
                .is_ok()
            {
                slow.push(tcp);
            }
        }
    }
    // The bystander's address still gets in, for a request and a new socket.
    let served = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    let _late = signed_in_at(&siege.server.ws_url(), "late").await;
    // Every slow connection is closed: at once past the cap, else by the header timeout.
    let mut closed = 0;
    for tcp in &mut slow {
        let _ = tcp.write_all(b"X-Slow: 1\r\n").await;
        let mut rest = Vec::new();
        if tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut rest))
            .await
            .is_ok()
        {
            closed += 1;
        }
    }
    assert_eq!(closed, slow.len(), "every slow connection was cut off");
    println!(
        "abuse figure: slowloris: {SLOW} connections, all closed {:.1} s after the first",
        started.elapsed().as_secs_f64()
    );
    drop(slow);
    siege
        .end("2,000 slowloris connections (cap 500, header timeout 2 s)")
        .await;
}

#[tokio::test]
async fn websockets_that_never_authenticate_are_closed_at_the_deadline() {
    let _one = one_at_a_time().await;
    // All at once: more than the address's rate of new connections lets in.
    let siege = Siege::start(&[
        ("CONFAB_AUTH_DEADLINE", "1"),
        ("CONFAB_NEW_CONNECTIONS_PER_ADDRESS", "100000"),
    ])
    .await;
    let addr = siege.addr();
    let url = format!("ws://{addr}/ws");
    const IDLE: usize = 500;
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        idle.push(attacker_ws(&url, addr).await);
    }
    let mut codes = Vec::with_capacity(IDLE);
    for ws in &mut idle {
        let code = loop {
            match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| u16::from(f.code)),
                Ok(Some(Ok(_))) => {}
                _ => break None,
            }
        };
        codes.push(code);
    }
    assert!(
        codes.iter().all(|code| *code == Some(1008)),
        "each closes with 1008: {:?}",
        codes
            .iter()
            .filter(|code| **code != Some(1008))
            .take(5)
            .collect::<Vec<_>>()
    );
    drop(idle);
    siege
        .end("500 WebSockets that never authenticate (deadline 1 s)")
        .await;
}

#[tokio::test]
async fn room_creation_is_limited_per_user_at_every_door() {
    let app = spawn_app_with(|config| config.rooms_per_minute = 3).await;
    let mut ana = app.user("ana").await;
    for _ in 0..3 {
        ana.send_json(json!({"type": "room:create", "roomType": "trivia"}))
            .await;
        assert_eq!(ana.recv_type("room:created").await["type"], "room:created");
    }
    ana.send_json(json!({"type": "room:create", "roomType": "trivia"}))
        .await;
    let refused = ana.recv_json().await;
    assert_eq!(
        refused,
        json!({"type": "room:error", "error": "creating rooms too fast; try again in a minute"})
    );

    // The limit is the user's, not the connection's: on Socket.IO too, a join that would
    // create a room is refused, while joining a room that exists is not.
    let mut sio = socket_io(app.addr, &tokens::token_for("ana", "ana")).await;
    sio.send(Message::text(r#"42["join_room","a-new-room"]"#))
        .await
        .unwrap();
    let error = next_event(&mut sio, "error").await;
    assert_eq!(error["code"], "RATE_LIMITED", "{error}");
    let mut ben = app.user("ben").await;
    ben.send_json(json!({"type": "room:create", "roomType": "trivia"}))
        .await;
    let code = ben.recv_type("room:created").await["room"]["code"].clone();
    sio.send(Message::text(format!(r#"42["join_room",{code}]"#)))
        .await
        .unwrap();
    let history = next_event(&mut sio, "room_history").await;
    assert_eq!(history["roomId"], code, "{history}");
    app.shutdown().await;
}

/// The payload of the next Socket.IO event named `name`, skipping others.
async fn next_event(ws: &mut Stream, name: &str) -> serde_json::Value {
    loop {
        let text = next_text(ws)
            .await
            .unwrap_or_else(|| panic!("no {name} event"));
        if let Some(event) = text.strip_prefix("42") {
            let event: serde_json::Value = serde_json::from_str(event).unwrap();
            if event[0] == name {
                return event[1].clone();
            }
        }
    }
}
