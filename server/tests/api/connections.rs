//! What a node accepts: requests whose headers take too long are cut off, and one client
//! address holds at most its cap of connections, WebSockets included.

use std::time::{Duration, Instant};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::common::{spawn_app_with, WAIT};

#[tokio::test]
async fn requests_whose_headers_never_finish_are_cut_off_and_others_are_served() {
    let app = spawn_app_with(|config| config.header_read_timeout_secs = 1).await;
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut tcp = TcpStream::connect(app.addr).await.unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: confab\r\n")
            .await
            .unwrap();
        slow.push(tcp);
    }
    let served = reqwest::get(app.http_url("/healthz")).await.unwrap();
    assert_eq!(served.status(), 200, "others are served meanwhile");
    // A header line now and then does not help: the timeout is on the whole block.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for tcp in &mut slow {
        let _ = tcp.write_all(b"X-Slow: 1\r\n").await;
    }
    let started = Instant::now();
    for tcp in &mut slow {
        let mut rest = Vec::new();
        let ended = tokio::time::timeout(Duration::from_secs(3), tcp.read_to_end(&mut rest)).await;
        assert!(
            ended.is_ok(),
            "a slow connection still open after {:?}",
            started.elapsed()
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn one_address_holds_at_most_its_cap_of_connections() {
    let app = spawn_app_with(|config| config.max_connections_per_address = 3).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(app.ws().await);
    }
    let refused = tokio_tungstenite::connect_async(app.ws_url("/ws")).await;
    assert!(refused.is_err(), "a fourth WebSocket is refused");
    let plain = reqwest::Client::new()
        .get(app.http_url("/healthz"))
        .send()
        .await;
    assert!(plain.is_err(), "so is a plain request");

    // A closed connection frees its place.
    drop(open.pop());
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok((_again, _)) = tokio_tungstenite::connect_async(app.ws_url("/ws")).await {
            break;
        }
        assert!(Instant::now() < deadline, "the place was never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(open);
    app.shutdown().await;
}
