//! The message list as people read it: older history on scrolling up, grouped messages,
//! day breaks, links, the "new messages" button, and dark mode.

use confab_server::{config::Config, Server};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::flows::{create_room, expect_text, say, signed_in};
use crate::harness::{site_dir, Browser, Chromedriver, PHONE, SCREEN_WAIT};

/// A server whose rate limit lets a test fill a room quickly.
pub async fn serve() -> (Server, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(data.path());
    config.site_dir = site_dir();
    config.message_rate = 1000.0;
    config.message_burst = 1000;
    (Server::start(config).await.expect("server starts"), data)
}

/// Posts `count` messages (`m1`, `m2`, …) into room `code` as a guest, over `/ws`.
pub async fn post_messages(server: &Server, code: &str, count: usize) {
    let guest: Value = reqwest::Client::new()
        .post(format!("http://{}/api/auth/guest", server.addr()))
        .json(&json!({"username": "Seeder"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr()))
        .await
        .unwrap();
    let mut send = async |value: Value| ws.send(Message::text(value.to_string())).await.unwrap();
    send(json!({"type": "auth", "token": guest["token"]})).await;
    send(json!({"type": "room:join", "code": code})).await;
    for i in 1..=count {
        send(json!({"type": "room:chat", "code": code, "message": format!("m{i}")})).await;
    }
    // Every message is stored once its broadcast comes back.
    let mut seen = 0;
    while seen < count {
        let Some(Ok(Message::Text(text))) = ws.next().await else {
            panic!("the seeder's socket closed");
        };
        let message: Value = serde_json::from_str(&text).unwrap();
        if message["type"] == "room:chat" {
            seen += 1;
        }
    }
}

async fn count(browser: &Browser, selector: &str) -> u64 {
    browser
        .evaluate(&format!(
            "return document.querySelectorAll({selector:?}).length"
        ))
        .await
        .as_u64()
        .unwrap()
}

async fn scroll_messages_to(browser: &Browser, top: &str) {
    browser
        .execute(&format!(
            "const list = document.querySelector('[data-testid=messages]'); list.scrollTop = {top};"
        ))
        .await;
}

#[tokio::test]
async fn older_history_loads_a_page_at_a_time_when_scrolling_up() {
    let (server, _data) = serve().await;
    let url = format!("http://{}/", server.addr());
    let driver = Chromedriver::start().await;
    let ana = signed_in(&driver, &url, "Ana").await;
    let link = create_room(&ana).await;
    let code = link.rsplit('/').next().unwrap().to_owned();
    post_messages(&server, &code, 120).await;

    let ben = signed_in(&driver, &link, "Ben").await;
    expect_text(&ben, "[data-testid=messages]", "m120").await;
    assert_eq!(
        count(&ben, ".message[data-seq]").await,
        50,
        "the newest 50 first"
    );
    assert!(!ben.body_text().await.contains("m70\n"));

    scroll_messages_to(&ben, "0").await;
    expect_text(&ben, "[data-testid=messages]", "m21").await;
    assert_eq!(count(&ben, ".message[data-seq]").await, 100);
    // The page went above: what was on the screen stays there, not at the top.
    let top = ben
        .evaluate("return document.querySelector('[data-testid=messages]').scrollTop")
        .await;
    assert!(top.as_f64().unwrap() > 100.0, "kept its place: {top}");

    scroll_messages_to(&ben, "0").await;
    expect_text(&ben, "[data-testid=messages]", "m1\n").await;
    assert_eq!(count(&ben, ".message[data-seq]").await, 120);
    let seqs = ben
        .evaluate(
            "return [...document.querySelectorAll('.message[data-seq]')].map(e => +e.dataset.seq)",
        )
        .await;
    let seqs: Vec<u64> = serde_json::from_value(seqs).unwrap();
    assert_eq!(seqs, (1..=120).collect::<Vec<_>>(), "in order, each once");
    ben.screenshot("older-history").await;
    for browser in [ana, ben] {
        browser.close().await;
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn messages_group_split_by_day_link_and_say_when_new_ones_arrive_below() {
    let (server, _data) = serve().await;
    let url = format!("http://{}/", server.addr());
    let driver = Chromedriver::start().await;
    let ana = signed_in(&driver, &url, "Ana").await;
    let link = create_room(&ana).await;
    let code = link.rsplit('/').next().unwrap().to_owned();
    post_messages(&server, &code, 40).await;
    let ben = signed_in(&driver, &link, "Ben").await;
    expect_text(&ben, "[data-testid=messages]", "m40").await;

    // One sender's messages in a row form a group: the name is shown once.
    say(&ana, "first of two").await;
    say(
        &ana,
        "see https://example.com/docs?x=1, or javascript:alert(1)",
    )
    .await;
    expect_text(&ben, "[data-testid=messages]", "javascript:alert(1)").await;
    let grouped = ben
        .evaluate(
            "const items = [...document.querySelectorAll('.message[data-seq]')];
             return items.slice(-2).map(e => e.classList.contains('continued'))",
        )
        .await;
    assert_eq!(
        grouped,
        json!([false, true]),
        "the second of Ana's continues her group"
    );
    let list = expect_text(&ben, "[data-testid=messages]", "m40").await;
    assert_eq!(
        list.matches("Seeder").count(),
        1,
        "forty messages from one sender in a row show the name once: {list}"
    );
    assert!(expect_text(&ben, ".day-break", "Today")
        .await
        .contains("Today"));
    let title = ben.attribute(".message[data-seq='42']", "title").await;
    assert!(
        title.contains("day ") && title.contains(", ") && title.contains(':'),
        "the full date and time on hover, e.g. \"Sunday 29 November 2026, 09:05\": {title:?}"
    );

    // Only the http(s) URL is a link, and it opens safely in a new tab.
    assert_eq!(count(&ben, ".message .text a").await, 1);
    assert_eq!(
        ben.attribute(".message .text a", "href").await,
        "https://example.com/docs?x=1"
    );
    assert_eq!(
        ben.attribute(".message .text a", "rel").await,
        "noopener noreferrer"
    );

    // Reading further up, a new message does not pull the list down: a button says so.
    scroll_messages_to(&ben, "0").await;
    assert!(!ben.exists("[data-testid=new-messages]").await);
    say(&ana, "something new").await;
    expect_text(&ben, "[data-testid=new-messages]", "New messages").await;
    ben.screenshot("new-messages-button").await;
    ben.click("[data-testid=new-messages]").await;
    let at_bottom = "const l = document.querySelector('[data-testid=messages]');
                     return l.scrollHeight - l.scrollTop - l.clientHeight < 80";
    let deadline = tokio::time::Instant::now() + SCREEN_WAIT;
    while ben.evaluate(at_bottom).await != json!(true) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the list goes to the newest"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        !ben.exists("[data-testid=new-messages]").await,
        "the button goes"
    );
    for browser in [ana, ben] {
        browser.close().await;
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn dark_mode_follows_the_system() {
    let (server, _data) = serve().await;
    let url = format!("http://{}/", server.addr());
    let driver = Chromedriver::start().await;
    let ana = signed_in(&driver, &url, "Ana").await;
    let background = async |browser: &Browser| {
        browser
            .evaluate("return getComputedStyle(document.documentElement).backgroundColor")
            .await
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(background(&ana).await, "rgb(245, 246, 250)");
    ana.prefer_dark().await;
    assert_eq!(background(&ana).await, "rgb(18, 21, 28)");
    create_room(&ana).await;
    say(&ana, "in the dark").await;
    expect_text(&ana, "[data-testid=messages]", "in the dark").await;
    ana.screenshot("room-dark").await;
    ana.close().await;
    server.shutdown().await.unwrap();
}

/// The rooms sidebar: names, newest messages and unread counts that are the same on every
/// device of a person, because the server keeps where they have read to.
#[tokio::test]
async fn rooms_show_unread_counts_that_every_device_agrees_on() {
    let (server, _data) = serve().await;
    let url = format!("http://{}/", server.addr());
    let driver = Chromedriver::start().await;
    let laptop = signed_in(&driver, &url, "Ana").await;
    laptop.fill("#room-name", "Book club").await;
    let book_club = create_room(&laptop).await;
    let book_club_code = book_club.rsplit('/').next().unwrap().to_owned();
    laptop.goto(&url).await;
    let other = create_room(&laptop).await;
    let item = format!("[data-testid=rooms] li[data-code='{book_club_code}']");
    let listed = expect_text(&laptop, &item, "Book club").await;
    assert!(listed.contains("No messages yet"), "{listed}");

    // Three messages in the Book club while Ana is in her other room.
    post_messages(&server, &book_club_code, 3).await;
    let listed = expect_text(&laptop, &format!("{item} [data-testid=unread]"), "3").await;
    assert_eq!(listed, "3");
    expect_text(&laptop, &item, "Seeder: m3").await;
    assert!(
        laptop
            .attribute("[data-testid=rooms] li.current", "data-code")
            .await
            != book_club_code
    );
    laptop.screenshot("rooms-unread").await;

    // Ana's phone, signed in to the same account, shows the same count.
    let session = laptop
        .evaluate("return localStorage.getItem('confab.session')")
        .await;
    let phone = Browser::open(&driver).await;
    phone.resize(PHONE.0, PHONE.1).await;
    phone.goto(&url).await;
    phone
        .execute(&format!(
            "localStorage.setItem('confab.session', {})",
            serde_json::to_string(session.as_str().unwrap()).unwrap()
        ))
        .await;
    phone.refresh().await;
    assert_eq!(
        expect_text(&phone, &format!("{item} [data-testid=unread]"), "3").await,
        "3"
    );
    assert!(!phone.overflows_horizontally().await);
    phone.screenshot("rooms-unread-phone").await;

    // Reading on the laptop clears it there and, at once, on the phone.
    laptop.click(&format!("{item} a")).await;
    expect_text(&laptop, "[data-testid=messages]", "m3").await;
    let deadline = tokio::time::Instant::now() + SCREEN_WAIT;
    while phone.exists(&format!("{item} [data-testid=unread]")).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the phone sees it read"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(!laptop.exists(&format!("{item} [data-testid=unread]")).await);
    // And so it stays after a reload: the server kept it.
    phone.refresh().await;
    expect_text(&phone, &item, "Book club").await;
    assert!(!phone.exists(&format!("{item} [data-testid=unread]")).await);
    assert!(other.contains("/#/room/"));
    for browser in [laptop, phone] {
        browser.close().await;
    }
    server.shutdown().await.unwrap();
}

/// Going to another room and back finds the list where it was left.
#[tokio::test]
async fn switching_rooms_keeps_each_rooms_place() {
    let (server, _data) = serve().await;
    let url = format!("http://{}/", server.addr());
    let driver = Chromedriver::start().await;
    let ana = signed_in(&driver, &url, "Ana").await;
    let first = create_room(&ana).await;
    let first_code = first.rsplit('/').next().unwrap().to_owned();
    post_messages(&server, &first_code, 45).await;
    expect_text(&ana, "[data-testid=messages]", "m45").await;
    ana.goto(&url).await;
    let second = create_room(&ana).await;
    let second_code = second.rsplit('/').next().unwrap().to_owned();

    let top = "return document.querySelector('[data-testid=messages]').scrollTop";
    ana.click(&format!(
        "[data-testid=rooms] li[data-code='{first_code}'] a"
    ))
    .await;
    expect_text(&ana, "[data-testid=messages]", "m45").await;
    scroll_messages_to(&ana, "300").await;
    let left_at = ana.evaluate(top).await.as_f64().unwrap();
    assert!((left_at - 300.0).abs() < 2.0, "{left_at}");
    ana.click(&format!(
        "[data-testid=rooms] li[data-code='{second_code}'] a"
    ))
    .await;
    expect_text(&ana, "[data-testid=room-code]", &second_code).await;
    ana.click(&format!(
        "[data-testid=rooms] li[data-code='{first_code}'] a"
    ))
    .await;
    expect_text(&ana, "[data-testid=messages]", "m45").await;
    let deadline = tokio::time::Instant::now() + SCREEN_WAIT;
    loop {
        let now_at = ana.evaluate(top).await.as_f64().unwrap();
        if (now_at - left_at).abs() < 2.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "back at {left_at}, not {now_at}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    ana.close().await;
    server.shutdown().await.unwrap();
}
