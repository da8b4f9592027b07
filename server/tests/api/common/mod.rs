//! Test helpers: a real server on a free port with its own data directory, and a real
//! WebSocket client.

pub mod db;
pub mod tokens;

use std::{net::SocketAddr, time::Duration};

use confab_server::{config::Config, Server};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::{
    tungstenite::{
        protocol::{
            frame::{
                coding::{Data, OpCode},
                Frame,
            },
            CloseFrame,
        },
        Message,
    },
    MaybeTlsStream, WebSocketStream,
};

/// How long a test waits for anything before failing.
pub const WAIT: Duration = Duration::from_secs(5);

pub use db::Backend;

pub struct TestApp {
    pub addr: SocketAddr,
    pub config: Config,
    pub backend: Backend,
    /// One HTTP client for every call a test makes.
    pub http: reqwest::Client,
    /// Whether shutting down drops the database (not when other servers share it).
    owns_database: bool,
    server: Option<Server>,
    _data_dir: tempfile::TempDir,
}

/// Starts a server on 127.0.0.1:0 with a fresh data directory and SQLite database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], after `configure` has adjusted the configuration.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_on_with(Backend::Sqlite, configure).await
}

/// A server on a fresh database of `backend`.
pub async fn spawn_app_on(backend: Backend) -> TestApp {
    spawn_app_on_with(backend, |_| {}).await
}

pub async fn spawn_app_on_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let url = db::fresh_database_url(backend, data_dir.path()).await;
    let mut app = spawn_app_at(backend, &url, data_dir, configure).await;
    app.owns_database = true;
    app
}

/// A server on the existing database at `url` (which it does not drop), with `data_dir`
/// as its data directory: one node of several sharing a database.
pub async fn spawn_app_at(
    backend: Backend,
    url: &str,
    data_dir: tempfile::TempDir,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    let mut config = Config::for_tests(data_dir.path());
    config.database_url = Some(url.to_owned());
    configure(&mut config);
    let server = Server::start(config.clone()).await.expect("server starts");
    TestApp {
        addr: server.addr(),
        config,
        backend,
        http: reqwest::Client::new(),
        owns_database: false,
        server: Some(server),
        _data_dir: data_dir,
    }
}

impl TestApp {
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// `POST path` as `user` (a JWT for them), with `body` as JSON when there is one.
    pub async fn post_as(&self, user: &str, path: &str, body: Option<Value>) -> reqwest::Response {
        let mut request = self
            .http
            .post(self.http_url(path))
            .bearer_auth(tokens::token_for(user, user));
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("the server answers")
    }

    /// `GET path` as `user`.
    pub async fn get_as(&self, user: &str, path: &str) -> reqwest::Response {
        self.http
            .get(self.http_url(path))
            .bearer_auth(tokens::token_for(user, user))
            .send()
            .await
            .expect("the server answers")
    }

    /// A `/qf` token for the holder of `jwt`, from the token endpoint.
    pub async fn qf_token_for_jwt(&self, jwt: &str) -> String {
        let response = self
            .http
            .get(self.http_url("/qf/auth/ws-token"))
            .bearer_auth(jwt)
            .send()
            .await
            .expect("the server answers");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("a JSON answer");
        body["token"].as_str().expect("a token").to_owned()
    }

    /// A `/qf` token for `user`.
    pub async fn qf_token(&self, user: &str) -> String {
        self.qf_token_for_jwt(&tokens::token_for(user, user)).await
    }

    /// `user`'s `/qf` socket at `path` (which may carry a query already).
    pub async fn qf_socket(&self, user: &str, path: &str) -> WsClient {
        let token = self.qf_token(user).await;
        let separator = if path.contains('?') { '&' } else { '?' };
        WsClient::connect(&self.ws_url(&format!("{path}{separator}token={token}"))).await
    }

    pub async fn ws(&self) -> WsClient {
        WsClient::connect(&self.ws_url("/ws")).await
    }

    /// A connected client signed in as `user_id` (named after it), past `auth:ok` and the
    /// `room:state` that follows it.
    pub async fn user(&self, user_id: &str) -> WsClient {
        signed_in_at(&self.ws_url("/ws"), user_id).await
    }

    /// Stops the server and starts a new one on the same data directory and database.
    pub async fn restart(mut self) -> Self {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
        let server = Server::start(self.config.clone())
            .await
            .expect("server restarts");
        self.addr = server.addr();
        self.server = Some(server);
        self
    }

    /// Shuts the server down gracefully, waits for it, and drops its database.
    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
        if let Some(url) = self
            .config
            .database_url
            .as_ref()
            .filter(|_| self.owns_database)
        {
            db::drop_database(self.backend, url).await;
        }
    }
}

/// The server binary as a process of its own: its metrics hold only what its test did to it
/// (in-process servers share one recorder), and a test can kill it without a word.
pub struct ServerProcess {
    pub child: tokio::process::Child,
    pub addr: SocketAddr,
    _data_dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts it on a free port with the test secret and its own data directory, `env` on
    /// top; returns once it answers `/healthz`. The binary is the one this test build
    /// made, or `CONFAB_TEST_SERVER_BIN` (a release build, for figures).
    pub async fn start(env: &[(&str, &str)]) -> Self {
        let addr = free_addr();
        let data_dir = tempfile::tempdir().unwrap();
        let binary = std::env::var("CONFAB_TEST_SERVER_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_confab-server").to_owned());
        let child = tokio::process::Command::new(binary)
            .env("CONFAB_ADDR", addr.to_string())
            .env("CONFAB_DATA_DIR", data_dir.path())
            .env("CONFAB_JWT_SECRET", confab_server::config::TEST_JWT_SECRET)
            .env("CONFAB_LOG", "warn")
            .env("CONFAB_SITE_DIR", "/nonexistent-site")
            // Tests connect many clients from one address at once; the attacks put it back.
            .env("CONFAB_NEW_CONNECTIONS_PER_ADDRESS", "1000000")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the server binary starts");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while reqwest::get(format!("http://{addr}/healthz"))
            .await
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the server never answered"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            child,
            addr,
            _data_dir: data_dir,
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// SIGKILL: no close frames, no goodbye on the bus.
    pub async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// A free local address (the port may be taken again before it is used, rarely).
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A `/ws` client at `url` signed in as `user_id` (named after it), past `auth:ok` and the
/// `room:state` that follows it.
pub async fn signed_in_at(url: &str, user_id: &str) -> WsClient {
    let mut ws = WsClient::connect(url).await;
    ws.send_json(serde_json::json!({"type": "auth", "token": tokens::token_for(user_id, user_id)}))
        .await;
    let ok = ws.recv_json().await;
    assert_eq!(ok["type"], "auth:ok", "{ok}");
    assert_eq!(ws.recv_json().await["type"], "room:state");
    ws
}

pub type Stream = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client whose reads time out instead of hanging a test.
pub struct WsClient {
    pub stream: Stream,
}

/// What a read saw.
#[derive(Debug)]
pub enum Received {
    Json(Value),
    Closed(Option<CloseFrame>),
}

impl WsClient {
    pub async fn connect(url: &str) -> Self {
        let (stream, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect timed out")
            .expect("websocket connects");
        Self { stream }
    }

    /// A client whose socket's receive buffer is about `bytes` (the kernel rounds it), so
    /// that a server writing to it while it does not read stalls soon. `url` is `ws://` with
    /// an IP address.
    pub async fn connect_with_receive_buffer(url: &str, bytes: u32) -> Self {
        let addr: SocketAddr = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .and_then(|host| host.parse().ok())
            .expect("a ws:// URL with an IP address");
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket
            .set_recv_buffer_size(bytes)
            .expect("a receive buffer size");
        let tcp = socket.connect(addr).await.expect("connects");
        let (stream, _) = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp)),
        )
        .await
        .expect("connect timed out")
        .expect("websocket connects");
        Self { stream }
    }

    /// Every text frame's JSON until the socket ends or is quiet for `quiet`.
    pub async fn drain(&mut self, quiet: Duration) -> Vec<Value> {
        self.drain_up_to(usize::MAX, quiet).await
    }

    /// Like [`WsClient::drain`], stopping after `most` frames.
    pub async fn drain_up_to(&mut self, most: usize, quiet: Duration) -> Vec<Value> {
        let mut frames = Vec::new();
        while frames.len() < most {
            let Ok(Some(Ok(frame))) = tokio::time::timeout(quiet, self.stream.next()).await else {
                break;
            };
            if let Message::Text(text) = frame {
                frames.push(serde_json::from_str(&text).expect("JSON"));
            }
        }
        frames
    }

    pub async fn send_json(&mut self, value: Value) {
        self.send_text(&value.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream.send(Message::text(text)).await.expect("send");
    }

    /// The next text message as JSON, or the close frame. Panics after [`WAIT`].
    pub async fn receive(&mut self) -> Received {
        self.receive_within(WAIT).await
    }

    /// The next text message, waiting up to `wait`.
    pub async fn recv_json_within(&mut self, wait: Duration) -> Value {
        match self.receive_within(wait).await {
            Received::Json(value) => value,
            Received::Closed(frame) => panic!("socket closed: {frame:?}"),
        }
    }

    /// The next message or the close, waiting up to `wait`.
    pub async fn receive_within(&mut self, wait: Duration) -> Received {
        loop {
            let frame = tokio::time::timeout(wait, self.stream.next())
                .await
                .expect("timed out waiting for a message");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Received::Json(serde_json::from_str(&text).expect("server sent JSON"))
                }
                Some(Ok(Message::Close(frame))) => return Received::Closed(frame),
                Some(Ok(_)) => continue,
                Some(Err(err)) => panic!("websocket error: {err}"),
                None => return Received::Closed(None),
            }
        }
    }

    /// The next text message; panics if the socket closed instead.
    pub async fn recv_json(&mut self) -> Value {
        match self.receive().await {
            Received::Json(value) => value,
            Received::Closed(frame) => panic!("socket closed: {frame:?}"),
        }
    }

    /// Reads until a message of `type` arrives, skipping others; returns it.
    pub async fn recv_type(&mut self, kind: &str) -> Value {
        loop {
            let value = self.recv_json().await;
            if value["type"] == kind {
                return value;
            }
        }
    }

    /// The close code the server sends next (skipping any messages before it).
    pub async fn recv_close_code(&mut self) -> u16 {
        loop {
            match self.receive().await {
                Received::Json(_) => continue,
                Received::Closed(Some(frame)) => return frame.code.into(),
                Received::Closed(None) => panic!("closed without a close frame"),
            }
        }
    }

    /// Sends `message` and returns the close code the server sent, or `None` when the
    /// client could not read one: the connection ended without it, or was reset while the
    /// client was still writing (browsers and other clients then report 1006 and read no
    /// further).
    pub async fn close_code_after_sending(&mut self, message: Message) -> Option<u16> {
        match tokio::time::timeout(WAIT, self.stream.send(message)).await {
            Ok(Ok(())) => {}
            _ => return None,
        }
        loop {
            let frame = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("timed out waiting for the close");
            match frame {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code.into()),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Asserts nothing arrives for `quiet`.
    pub async fn assert_silent_for(&mut self, quiet: Duration) {
        if let Ok(frame) = tokio::time::timeout(quiet, self.stream.next()).await {
            panic!("expected silence, got {frame:?}");
        }
    }
}

/// Frames a server must refuse, each with the close code the client must read: frames over
/// the size limit, up to many MiB (the client is still writing when the server closes), a
/// text frame that is not UTF-8, and one with reserved bits set.
pub fn refused_frames() -> Vec<(&'static str, Message, u16)> {
    use confab_shared::limits::MAX_FRAME_BYTES;
    let text = |len: usize| Message::text("x".repeat(len));
    let invalid_utf8 = Frame::message(vec![b'"', 0xff, 0xfe, b'"'], OpCode::Data(Data::Text), true);
    let mut reserved = Frame::message(&b"{}"[..], OpCode::Data(Data::Text), true);
    reserved.header_mut().rsv2 = true;
    vec![
        ("a frame of 64 KiB + 1", text(MAX_FRAME_BYTES + 1), 1009),
        ("a frame of 1 MiB", text(1 << 20), 1009),
        ("a frame of 4 MiB", text(4 << 20), 1009),
        ("a frame of 16 MiB", text(16 << 20), 1009),
        (
            "a text frame that is not UTF-8",
            Message::Frame(invalid_utf8),
            1007,
        ),
        (
            "a frame with reserved bits set",
            Message::Frame(reserved),
            1002,
        ),
    ]
}

/// Opens a socket with `open` for each of [`refused_frames`], sends the frame, and asserts
/// the close code the client reads.
pub async fn assert_refused_frames_close<F, Fut>(socket: &str, open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = WsClient>,
{
    for (what, frame, code) in refused_frames() {
        let mut ws = open().await;
        assert_eq!(
            ws.close_code_after_sending(frame).await,
            Some(code),
            "{socket}: {what}"
        );
    }
}
