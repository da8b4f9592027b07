//! Notifications in the app: the bell counts the unread, the inbox lists what is stored and
//! marks it read when opened (for every device), the tab's title carries the count, and
//! repeated pings from one person collapse into one toast.

use confab_server::config::TEST_API_KEY;
use serde_json::{json, Value};

use crate::flows::{expect_text, signed_in};
use crate::harness::{Browser, Chromedriver, SCREEN_WAIT};
use crate::timeline::serve;

/// The signed-in account the page keeps (`confab.session`).
async fn session(browser: &Browser) -> Value {
    let text = browser
        .evaluate("return localStorage.getItem('confab.session')")
        .await;
    serde_json::from_str(text.as_str().unwrap()).unwrap()
}

async fn title(browser: &Browser) -> String {
    browser
        .evaluate("return document.title")
        .await
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_bell_counts_the_inbox_marks_read_and_pings_collapse() {
    let (server, _data) = serve().await;
    let url = format!("http://{}/", server.addr());
    let http = reqwest::Client::new();
    let driver = Chromedriver::start().await;
    let ana = signed_in(&driver, &url, "Ana").await;
    let ana_id = session(&ana).await["user_id"].as_str().unwrap().to_owned();
    // The notification socket is open once Ana is listed online.
    expect_text(&ana, "[data-testid=online-count]", "1").await;
    assert!(!ana.exists("[data-testid=bell-count]").await);

    for (title, message) in [
        ("Round over", "You won round 3"),
        ("New follower", "Ben follows you"),
    ] {
        let published = http
            .post(format!("http://{}/api/notifications", server.addr()))
            .header("x-api-key", TEST_API_KEY)
            .json(
                &json!({"userId": ana_id, "title": title, "message": message,
                          "notificationType": "game"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(published.status(), 201);
    }
    assert_eq!(
        expect_text(&ana, "[data-testid=bell-count]", "2").await,
        "2"
    );
    let deadline = tokio::time::Instant::now() + SCREEN_WAIT;
    while title(&ana).await != "(2) Confab" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the title counts: {}",
            title(&ana).await
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    ana.click("[data-testid=bell]").await;
    let inbox = expect_text(&ana, "[data-testid=inbox]", "Round over").await;
    assert!(
        inbox.contains("New follower") && inbox.contains("Ben follows you"),
        "{inbox}"
    );
    assert!(
        inbox.find("New follower") < inbox.find("Round over"),
        "newest first: {inbox}"
    );
    ana.screenshot("inbox").await;
    assert!(
        !ana.exists("[data-testid=bell-count]").await,
        "opened is read"
    );
    assert_eq!(title(&ana).await, "Confab");
    // Read on the server too: a reload shows nothing unread.
    let deadline = tokio::time::Instant::now() + SCREEN_WAIT;
    loop {
        ana.refresh().await;
        expect_text(&ana, "[data-testid=signed-in-as]", "Ana").await;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        if !ana.exists("[data-testid=bell-count]").await {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "marked read on the server"
        );
    }

    // Three pings from Ben make one toast, counted.
    let ben = signed_in(&driver, &url, "Ben").await;
    let ben_token = session(&ben).await["token"].as_str().unwrap().to_owned();
    expect_text(&ana, "[data-testid=online-count]", "2").await;
    for _ in 0..3 {
        let pinged = http
            .post(format!("http://{}/qf/users/online/Ana/ping", server.addr()))
            .bearer_auth(&ben_token)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(pinged.status(), 200);
    }
    let toasts = expect_text(&ana, "[data-testid=toasts]", "(×3)").await;
    assert_eq!(toasts.matches("Ben pinged you").count(), 1, "{toasts}");
    for browser in [ana, ben] {
        browser.close().await;
    }
    server.shutdown().await.unwrap();
}
