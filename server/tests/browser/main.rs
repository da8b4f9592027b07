//! End-to-end tests in headless Chromium against the real server and the built app.

mod cluster;
mod flows;
mod harness;
mod inbox;
mod phone;
mod timeline;

use std::time::{Duration, Instant};

use axum::{extract::ws::WebSocketUpgrade, routing::get, Router};
use confab_server::{config::Config, http::site, Server};
use futures_util::StreamExt;
use harness::{site_dir, Browser, Chromedriver, WaitError, SCREEN_WAIT};

async fn spawn_app_serving_site() -> (Server, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(data.path());
    config.site_dir = site_dir();
    (Server::start(config).await.expect("server starts"), data)
}

#[tokio::test]
async fn the_app_shows_the_servers_answer_to_its_ping() {
    let (server, _data) = spawn_app_serving_site().await;
    let driver = Chromedriver::start().await;
    let browser = Browser::open(&driver).await;
    browser.goto(&format!("http://{}/", server.addr())).await;

    let state = browser
        .wait_until("[data-testid=link-state]", SCREEN_WAIT, |text| {
            text.starts_with("Connected")
        })
        .await;
    browser.screenshot("first-ping").await;
    state.unwrap_or_else(|err| panic!("{err}"));
    // The app came from files named by their content, as scripts/build-app.sh makes them.
    let loaded = browser
        .evaluate(
            "return performance.getEntriesByType('resource').map(r => new URL(r.name).pathname)",
        )
        .await;
    let loaded: Vec<String> = serde_json::from_value(loaded).unwrap();
    for ext in ["js", "wasm", "css"] {
        assert!(
            loaded
                .iter()
                .any(|path| path.starts_with("/assets/confab-") && path.ends_with(ext)),
            "{ext} from /assets: {loaded:?}"
        );
    }
    browser.close().await;
    server.shutdown().await.unwrap();
}

/// A server whose `/ws` accepts connections and never answers: the test's wait must end in a
/// timeout error, not hang, and the page must still say it is connecting.
#[tokio::test]
async fn a_server_that_never_answers_makes_the_wait_fail_not_hang() {
    let silent_ws = Router::new().route(
        "/ws",
        get(|ws: WebSocketUpgrade| async {
            ws.on_upgrade(|mut socket| async move { while socket.next().await.is_some() {} })
        }),
    );
    let app = site::serve(silent_ws, &site_dir());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let driver = Chromedriver::start().await;
    let browser = Browser::open(&driver).await;
    browser.goto(&format!("http://{addr}/")).await;
    let allowed = Duration::from_secs(2);
    let started = Instant::now();
    let outcome = browser
        .wait_until("[data-testid=link-state]", allowed, |text| {
            text.starts_with("Connected")
        })
        .await;
    match outcome {
        Err(WaitError::TimedOut { waited, .. }) => assert!(waited >= allowed),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(
        started.elapsed() < allowed + Duration::from_secs(3),
        "the wait overran"
    );
    assert!(browser.body_text().await.contains("Connecting"));
    browser.close().await;
}

#[tokio::test]
async fn a_person_signs_in_as_a_guest_is_remembered_and_signs_out() {
    let (server, _data) = spawn_app_serving_site().await;
    let driver = Chromedriver::start().await;
    let browser = Browser::open(&driver).await;
    browser.goto(&format!("http://{}/", server.addr())).await;

    // The server's own validation message is shown where the person typed.
    browser.fill("#display-name", "   ").await;
    browser.click("form.sign-in button[type=submit]").await;
    let refused = browser
        .wait_for_text("[data-testid=sign-in-error]", SCREEN_WAIT)
        .await;
    assert_eq!(
        refused.unwrap_or_else(|err| panic!("{err}")),
        "username is empty"
    );

    browser.fill("#display-name", "Ana").await;
    browser
        .fill("#avatar-url", "https://img.example/ana.png")
        .await;
    browser.click("form.sign-in button[type=submit]").await;
    let name = browser
        .wait_for_text("[data-testid=signed-in-as]", SCREEN_WAIT)
        .await;
    assert_eq!(name.unwrap_or_else(|err| panic!("{err}")), "Ana");
    browser.screenshot("signed-in").await;
    assert!(
        !browser.exists("form.sign-in").await,
        "the form goes once signed in"
    );

    // Remembered across a reload: the stored token signs the new socket in.
    browser.refresh().await;
    let name = browser
        .wait_for_text("[data-testid=signed-in-as]", SCREEN_WAIT)
        .await;
    assert_eq!(name.unwrap_or_else(|err| panic!("{err}")), "Ana");

    browser.click("[data-testid=sign-out]").await;
    browser
        .wait_for_text("form.sign-in h2", SCREEN_WAIT)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert!(!browser.exists("[data-testid=signed-in-as]").await);
    browser.close().await;
    server.shutdown().await.unwrap();
}
