//! What people do with the app, each in a browser of their own: chat through a shared link,
//! see each other type, watch the online list, ping, and get asked to sign in again.

use std::time::Duration;

use confab_server::{config::Config, Server};

use crate::harness::{site_dir, Browser, Chromedriver, PAGE_LOAD_WAIT, PHONE, SCREEN_WAIT};

const ENTER: &str = "\u{E007}";

async fn serve() -> (Server, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(data.path());
    config.site_dir = site_dir();
    (Server::start(config).await.expect("server starts"), data)
}

/// A browser signed in as `name`, at `url`.
pub async fn signed_in(driver: &Chromedriver, url: &str, name: &str) -> Browser {
    let browser = Browser::open(driver).await;
    browser.goto(url).await;
    browser.fill("#display-name", name).await;
    browser.click("form.sign-in button[type=submit]").await;
    let shown = browser
        .wait_for_text("[data-testid=signed-in-as]", SCREEN_WAIT)
        .await
        .unwrap_or_else(|err| panic!("{name} signs in: {err}"));
    assert_eq!(shown, name);
    browser
}

pub async fn expect_text(browser: &Browser, selector: &str, needle: &str) -> String {
    browser
        .wait_until(selector, SCREEN_WAIT, |text| text.contains(needle))
        .await
        .unwrap_or_else(|err| panic!("waiting for {needle:?}: {err}"))
}

/// Creates a room from the lobby; returns its shareable link.
pub async fn create_room(browser: &Browser) -> String {
    browser
        .click("[data-testid=create-room] button[type=submit]")
        .await;
    browser
        .wait_for_text("[data-testid=room-code]", SCREEN_WAIT)
        .await
        .unwrap_or_else(|err| panic!("the room opens: {err}"));
    browser.attribute("[data-testid=share-link]", "href").await
}

/// Waits until the lobby shows (after leaving a room or a party).
async fn back_in_lobby(browser: &Browser) {
    browser
        .wait_for_text("[data-testid=create-room] button[type=submit]", SCREEN_WAIT)
        .await
        .unwrap_or_else(|err| panic!("back in the lobby: {err}"));
}

pub async fn say(browser: &Browser, text: &str) {
    browser
        .type_into("#message", &format!("{text}{ENTER}"))
        .await;
}

#[tokio::test]
async fn two_people_chat_through_a_shared_link_and_a_latecomer_sees_the_history() {
    let (server, _data) = serve().await;
    let url = format!("http://{}/", server.addr());
    let driver = Chromedriver::start().await;
    let ana = signed_in(&driver, &url, "Ana").await;
    let link = create_room(&ana).await;
    assert!(link.contains("/#/room/"), "a shareable link: {link}");

    let ben = signed_in(&driver, &link, "Ben").await;
    expect_text(&ben, "[data-testid=members]", "Ana").await;
    expect_text(&ana, "[data-testid=members]", "Ben").await;
    say(&ana, "Hello Ben <b>not bold</b>").await;
    expect_text(&ben, "[data-testid=messages]", "Hello Ben <b>not bold</b>").await;
    say(&ben, "Hi Ana").await;
    expect_text(&ana, "[data-testid=messages]", "Hi Ana").await;
    assert!(
        ana.exists(".message.own").await,
        "own messages are set apart"
    );
    ana.screenshot("room-chat").await;
    ana.resize(360, 740).await;
    ana.screenshot("room-chat-360px").await;
    assert!(
        !ana.overflows_horizontally().await,
        "the room fits a 360 px screen"
    );

    let carl = signed_in(&driver, &link, "Carl").await;
    let history = expect_text(&carl, "[data-testid=messages]", "Hi Ana").await;
    let (first, second) = (
        history.find("Hello Ben").expect("Ana's message"),
        history.find("Hi Ana").expect("Ben's message"),
    );
    assert!(first < second, "oldest first: {history}");
    assert_eq!(history.matches("Hi Ana").count(), 1, "shown once");
    for browser in [ana, ben, carl] {
        browser.close().await;
    }
    server.shutdown().await.unwrap();
}

/// The typing indicator's idle timer (3 s) outlived the room view: typing and then leaving
/// at once made the page panic when it fired. The harness fails on any panic the page logs.
#[tokio::test]
async fn leaving_a_room_right_after_typing_leaves_nothing_running() {
    let (server, _data) = serve().await;
    let url = format!("http://{}/", server.addr());
    let driver = Chromedriver::start().await;
    let ana = signed_in(&driver, &url, "Ana").await;
    create_room(&ana).await;
    ana.type_into("#message", "half a thou").await;
    ana.click(".room-actions button.secondary:last-child").await;
    back_in_lobby(&ana).await;
    // Past the idle timer.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    ana.close().await;
    server.shutdown().await.unwrap();
}

/// A message the server refuses (here: over the rate limit) shows as not sent, with a retry
/// that sends it once it may be.
#[tokio::test]
async fn a_refused_message_can_be_sent_again() {
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(data.path());
    config.site_dir = site_dir();
    // Signing in, listing rooms, creating one, joining it and the latency pings take five
    // or so; the notes below go over the rest.
    config.message_burst = 6;
    config.message_rate = 0.5;
    let server = Server::start(config).await.expect("server starts");
    let url = format!("http://{}/", server.addr());
    let driver = Chromedriver::start().await;
    let ana = signed_in(&driver, &url, "Ana").await;
    create_room(&ana).await;
    // Signing in and joining took from the burst: some of these are over it.
    for n in 1..=4 {
        say(&ana, &format!("note {n}")).await;
    }
    let refused = expect_text(&ana, "[data-testid=pending]", "Not sent").await;
    ana.screenshot("message-not-sent").await;
    // Retried on a phone.
    ana.resize(PHONE.0, PHONE.1).await;
    let text = refused
        .split_whitespace()
        .skip_while(|word| *word != "note")
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(text.starts_with("note "), "{refused}");
    // The bucket refills one message every 2 s.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    ana.click("[data-testid=pending] button.retry").await;
    ana.wait_until("[data-testid=messages]", SCREEN_WAIT, |t| {
        t.matches(&text).count() == 1 && !shows_pending(t, &text)
    })
    .await
    .unwrap_or_else(|err| panic!("{text:?} sent on retry: {err}"));
    ana.close().await;
    server.shutdown().await.unwrap();
}

/// Whether the text of the message list shows `text` as still pending.
fn shows_pending(list: &str, text: &str) -> bool {
    list.split("You")
        .any(|item| item.contains(text) && (item.contains("Not sent") || item.contains("Sending")))
}

/// A code that opens no room shows why, with the way back, and no composer to type into.
#[tokio::test]
async fn a_wrong_room_code_says_so_and_leads_back() {
    let (server, _data) = serve().await;
    let url = format!("http://{}/", server.addr());
    let driver = Chromedriver::start().await;
    let ana = signed_in(&driver, &url, "Ana").await;
    ana.goto(&format!("{url}#/room/NOPE99")).await;
    let shown = ana
        .wait_for_text("[data-testid=room-unavailable]", SCREEN_WAIT)
        .await
        .unwrap_or_else(|err| panic!("the room is said to be unavailable: {err}"));
    assert!(
        shown.contains("NOPE99") && shown.contains("cannot be opened"),
        "{shown}"
    );
    assert!(shown.contains("room not found"), "{shown}");
    assert!(
        !ana.exists("#message").await,
        "no composer for a room that is not there"
    );
    ana.screenshot("room-not-found").await;
    // The way back, taken on a phone.
    ana.resize(PHONE.0, PHONE.1).await;
    ana.click("[data-testid=room-unavailable] button").await;
    back_in_lobby(&ana).await;
    ana.close().await;
    server.shutdown().await.unwrap();
}

/// A started game reads as words, never as raw JSON.
#[tokio::test]
async fn a_started_game_reads_as_words() {
    let (server, _data) = serve().await;
    let url = format!("http://{}/", server.addr());
    let driver = Chromedriver::start().await;
    let ana = signed_in(&driver, &url, "Ana").await;
    create_room(&ana).await;
    ana.click(".room-actions button.secondary:first-child")
        .await;
    expect_text(&ana, "[data-testid=game-state]", "Game started · round: 1").await;
    let shown = ana
        .wait_for_text("[data-testid=game-state]", SCREEN_WAIT)
        .await
        .unwrap();
    assert!(!shown.contains('{'), "{shown}");
    ana.close().await;
    server.shutdown().await.unwrap();
}

/// WCAG AA: text at 4.5:1 against what is behind it, control boundaries at 3:1.
#[tokio::test]
async fn text_and_controls_meet_aa_contrast() {
    let (server, _data) = serve().await;
    let url = format!("http://{}/", server.addr());
    let driver = Chromedriver::start().await;
    let ana = signed_in(&driver, &url, "Ana").await;
    create_room(&ana).await;
    expect_text(&ana, "[data-testid=link-state]", "Connected").await;
    for mode in ["light", "dark"] {
        if mode == "dark" {
            ana.prefer_dark().await;
        }
        let colors = ana
            .evaluate(
                "const css = (sel, prop) => getComputedStyle(document.querySelector(sel))[prop];
                 return {
                   connected: css('[data-testid=link-state]', 'color'),
                   page: css('html', 'backgroundColor'),
                   input: css('#message', 'borderTopColor'),
                   field: css('#message', 'backgroundColor'),
                   muted: css('.composer .counter', 'color'),
                   accent: css('.room-actions button.secondary', 'color'),
                 };",
            )
            .await;
        let rgb = |key: &str| -> [f64; 3] {
            let text = colors[key].as_str().unwrap_or_default();
            let parts: Vec<f64> = text
                .trim_start_matches("rgba(")
                .trim_start_matches("rgb(")
                .trim_end_matches(')')
                .split(',')
                .filter_map(|p| p.trim().parse().ok())
                .collect();
            assert!(parts.len() >= 3, "{key}: {text}");
            [parts[0], parts[1], parts[2]]
        };
        let ratio = |a: [f64; 3], b: [f64; 3]| {
            let luminance = |c: [f64; 3]| {
                let linear = |v: f64| {
                    let v = v / 255.0;
                    if v <= 0.03928 {
                        v / 12.92
                    } else {
                        ((v + 0.055) / 1.055).powf(2.4)
                    }
                };
                0.2126 * linear(c[0]) + 0.7152 * linear(c[1]) + 0.0722 * linear(c[2])
            };
            let (x, y) = (luminance(a) + 0.05, luminance(b) + 0.05);
            x.max(y) / x.min(y)
        };
        let connected = ratio(rgb("connected"), rgb("page"));
        assert!(
            connected >= 4.5,
            "{mode}: \"Connected\" at {connected:.2}:1"
        );
        let border = ratio(rgb("input"), rgb("field"));
        assert!(border >= 3.0, "{mode}: input border at {border:.2}:1");
        for text in ["muted", "accent"] {
            let contrast = ratio(rgb(text), rgb("page"));
            assert!(contrast >= 4.5, "{mode}: {text} text at {contrast:.2}:1");
        }
    }
    ana.close().await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_typing_indicator_appears_for_the_other_person_and_goes_away() {
    let (server, _data) = serve().await;
    let url = format!("http://{}/", server.addr());
    let driver = Chromedriver::start().await;
    let ana = signed_in(&driver, &url, "Ana").await;
    let link = create_room(&ana).await;
    let ben = signed_in(&driver, &link, "Ben").await;
    expect_text(&ana, "[data-testid=members]", "Ben").await;

    ana.type_into("#message", "I am wri").await;
    expect_text(&ben, "[data-testid=typing]", "Ana is typing…").await;
    ben.screenshot("typing").await;
    assert_eq!(
        ana.wait_until("[data-testid=typing]", Duration::from_millis(300), |t| !t
            .is_empty())
            .await
            .ok(),
        None,
        "nobody sees their own indicator"
    );
    // A pause ends it.
    ben.wait_until("[data-testid=typing]", SCREEN_WAIT, str::is_empty)
        .await
        .unwrap_or_else(|err| panic!("the indicator goes: {err}"));
    // So does sending.
    ana.type_into("#message", "ting").await;
    expect_text(&ben, "[data-testid=typing]", "Ana is typing…").await;
    ana.type_into("#message", ENTER).await;
    expect_text(&ben, "[data-testid=messages]", "I am writing").await;
    ben.wait_until(
        "[data-testid=typing]",
        Duration::from_secs(2),
        str::is_empty,
    )
    .await
    .unwrap_or_else(|err| panic!("sending ends the indicator: {err}"));
    ana.close().await;
    ben.close().await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_online_list_follows_people_signing_in_and_out() {
    let (server, _data) = serve().await;
    let url = format!("http://{}/", server.addr());
    let driver = Chromedriver::start().await;
    let ana = signed_in(&driver, &url, "Ana").await;
    expect_text(&ana, "[data-testid=online-users]", "Ana").await;
    let ben = signed_in(&driver, &url, "Ben").await;
    expect_text(&ana, "[data-testid=online-users]", "Ben").await;
    expect_text(&ana, "[data-testid=online-count]", "2").await;
    ana.screenshot("lobby-online").await;

    ben.click("[data-testid=sign-out]").await;
    ana.wait_until("[data-testid=online-users]", SCREEN_WAIT, |t| {
        !t.contains("Ben")
    })
    .await
    .unwrap_or_else(|err| panic!("Ben goes offline: {err}"));
    expect_text(&ana, "[data-testid=online-count]", "1").await;
    ana.close().await;
    ben.close().await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_ping_shows_a_toast_with_a_link_to_join() {
    let (server, _data) = serve().await;
    let url = format!("http://{}/", server.addr());
    let driver = Chromedriver::start().await;
    let ana = signed_in(&driver, &url, "Ana").await;
    let ben = signed_in(&driver, &url, "Ben").await;
    let link = create_room(&ana).await;
    expect_text(&ana, "[data-testid=online-users]", "Ben").await;
    ana.click("button[aria-label='Ping Ben']").await;
    expect_text(&ben, "[data-testid=toasts]", "Ana pinged you").await;
    ben.screenshot("ping-toast").await;
    assert_eq!(
        ben.attribute("[data-testid=toasts] a", "href").await,
        link,
        "the toast links to Ana's room"
    );
    ana.close().await;
    ben.close().await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_invalid_token_brings_the_sign_in_prompt_and_no_reconnect_loop() {
    let (server, _data) = serve().await;
    let url = format!("http://{}/", server.addr());
    let driver = Chromedriver::start().await;
    let browser = Browser::open(&driver).await;
    browser.goto(&url).await;
    // The first load has rendered before the session is planted and the page loads again.
    browser
        .wait_for_text("[data-testid=link-state]", PAGE_LOAD_WAIT)
        .await
        .expect("the app renders");
    browser
        .execute(
            r#"localStorage.setItem("confab.session", JSON.stringify({
                token: "forged.token.value", user_id: "guest_x", username: "Mallory",
                image_url: "", exp: 4102444800}))"#,
        )
        .await;
    browser.refresh().await;
    let prompt = browser
        .wait_until("[data-testid=sign-in-again]", PAGE_LOAD_WAIT, |text| {
            text.contains("sign in again")
        })
        .await
        .unwrap_or_else(|err| panic!("waiting for the sign-in prompt: {err}"));
    assert!(prompt.contains("invalid token"), "{prompt}");
    browser.screenshot("sign-in-again").await;
    // The prompt stays, and the connection is not torn down and retried.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(browser.exists("[data-testid=sign-in-again]").await);
    let state = browser
        .wait_for_text("[data-testid=link-state]", SCREEN_WAIT)
        .await
        .unwrap();
    assert!(state.starts_with("Connected"), "{state}");
    assert!(!browser.exists("[data-testid=signed-in-as]").await);
    browser.close().await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn after_a_server_restart_the_page_reconnects_and_no_message_is_lost_or_doubled() {
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(data.path());
    config.site_dir = site_dir();
    let server = Server::start(config.clone()).await.expect("server starts");
    // The restarted server takes the same port, as a restarted deployment would.
    config.addr = server.addr();
    let url = format!("http://{}/", server.addr());
    let driver = Chromedriver::start().await;
    let ana = signed_in(&driver, &url, "Ana").await;
    let link = create_room(&ana).await;
    let ben = signed_in(&driver, &link, "Ben").await;
    expect_text(&ana, "[data-testid=members]", "Ben").await;
    say(&ana, "before the restart").await;
    expect_text(&ben, "[data-testid=messages]", "before the restart").await;

    server.shutdown().await.unwrap();
    expect_text(&ana, "[data-testid=link-state]", "Reconnecting in").await;
    ana.screenshot("reconnecting").await;
    // Sent while the server is down: shown as sending, kept, and delivered once it is back.
    say(&ana, "while it was down").await;
    let pending = expect_text(&ana, "[data-testid=pending]", "while it was down").await;
    assert!(pending.contains("Sending…"), "{pending}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let server = Server::start(config).await.expect("server restarts");

    for browser in [&ana, &ben] {
        browser
            .wait_until("[data-testid=link-state]", SCREEN_WAIT, |t| {
                t.starts_with("Connected")
            })
            .await
            .unwrap_or_else(|err| panic!("the page reconnects: {err}"));
    }
    say(&ben, "after the restart").await;
    for browser in [&ana, &ben] {
        let messages = expect_text(browser, "[data-testid=messages]", "after the restart").await;
        let messages = expect_text_in(browser, &messages, "while it was down").await;
        for line in [
            "before the restart",
            "while it was down",
            "after the restart",
        ] {
            assert_eq!(
                messages.matches(line).count(),
                1,
                "{line:?} once in {messages}"
            );
        }
    }
    assert!(
        !ana.exists("[data-testid=pending]").await,
        "delivered: no longer pending"
    );
    ana.close().await;
    ben.close().await;
    server.shutdown().await.unwrap();
}

/// `seen` if it already holds `needle`, else the messages once they do.
async fn expect_text_in(browser: &Browser, seen: &str, needle: &str) -> String {
    if seen.contains(needle) {
        return seen.to_owned();
    }
    expect_text(browser, "[data-testid=messages]", needle).await
}

/// Leaving a party view used to leave its socket's loop and its last request reading the
/// view's disposed signals: the page panicked when the leave was answered, and when the
/// next party frame arrived.
#[tokio::test]
async fn leaving_a_party_leaves_nothing_running() {
    let (server, _data) = serve().await;
    let url = format!("http://{}/", server.addr());
    let driver = Chromedriver::start().await;
    let ana = signed_in(&driver, &url, "Ana").await;
    ana.click("[data-testid=create-party]").await;
    let code = ana
        .wait_for_text("[data-testid=party-code]", SCREEN_WAIT)
        .await
        .unwrap_or_else(|err| panic!("the party opens: {err}"));
    let ben = signed_in(&driver, &url, "Ben").await;
    ben.fill("#party-code", &code).await;
    ben.click("form:has(#party-code) button[type=submit]").await;
    expect_text(&ana, "[data-testid=players]", "Ben").await;
    ana.click(".party button.secondary").await;
    back_in_lobby(&ana).await;
    // Frames for the party keep coming while Ana's view is gone.
    ben.click("[data-testid=ready-toggle]").await;
    expect_text(&ben, "[data-testid=players]", "ready").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    ana.close().await;
    ben.close().await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn party_lobby_join_ready_start_and_both_see_the_phase_change() {
    let (server, _data) = serve().await;
    let url = format!("http://{}/", server.addr());
    let driver = Chromedriver::start().await;
    let ana = signed_in(&driver, &url, "Ana").await;
    ana.click("[data-testid=create-party]").await;
    let code = ana
        .wait_for_text("[data-testid=party-code]", SCREEN_WAIT)
        .await
        .unwrap_or_else(|err| panic!("the party opens: {err}"));
    expect_text(&ana, "[data-testid=players]", "host").await;

    let ben = signed_in(&driver, &url, "Ben").await;
    ben.fill("#party-code", &code).await;
    ben.click("form:has(#party-code) button[type=submit]").await;
    for browser in [&ana, &ben] {
        expect_text(browser, "[data-testid=players]", "Ben").await;
        expect_text(browser, "[data-testid=party-phase]", "lobby").await;
    }
    assert!(
        !ben.exists("[data-testid=start-party]").await,
        "only the host can start"
    );
    for browser in [&ana, &ben] {
        browser.click("[data-testid=ready-toggle]").await;
    }
    for browser in [&ana, &ben] {
        browser
            .wait_until("[data-testid=players]", SCREEN_WAIT, |t| {
                t.matches("not ready").count() == 0 && t.matches("ready").count() == 2
            })
            .await
            .unwrap_or_else(|err| panic!("both ready: {err}"));
    }
    ana.screenshot("party-lobby").await;
    ana.click("[data-testid=start-party]").await;
    for browser in [&ana, &ben] {
        expect_text(browser, "[data-testid=party-phase]", "playing").await;
        expect_text(browser, "[data-testid=transitions]", "lobby → playing").await;
    }
    ana.fill("#next-phase", "voting").await;
    ana.click(".host-controls button[type=submit]").await;
    expect_text(&ben, "[data-testid=party-phase]", "voting").await;
    expect_text(&ben, "[data-testid=transitions]", "playing → voting").await;
    ben.screenshot("party-playing").await;
    ana.close().await;
    ben.close().await;
    server.shutdown().await.unwrap();
}

/// What a moderator does shows in the app: a deleted message goes from everyone's list, and
/// a closed room says so and leads back to the lobby.
#[tokio::test]
async fn a_moderators_deletion_and_closing_show_in_the_app() {
    let (server, _data) = serve().await;
    let url = format!("http://{}/", server.addr());
    let driver = Chromedriver::start().await;
    let ana = signed_in(&driver, &url, "Ana").await;
    let link = create_room(&ana).await;
    let ben = signed_in(&driver, &link, "Ben").await;
    expect_text(&ben, "[data-testid=members]", "Ana").await;
    say(&ana, "keep this").await;
    say(&ana, "delete this").await;
    expect_text(&ben, "[data-testid=messages]", "delete this").await;

    let admin = |method: reqwest::Method, path: String| {
        reqwest::Client::new()
            .request(method, format!("http://{}{path}", server.addr()))
            .header("x-api-key", confab_server::config::TEST_API_KEY)
            .send()
    };
    let id = ben
        .attribute("[data-testid=messages] [data-seq='2']", "data-id")
        .await;
    let deleted = admin(reqwest::Method::DELETE, format!("/api/admin/messages/{id}"))
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    for browser in [&ana, &ben] {
        let left = browser
            .wait_until("[data-testid=messages]", SCREEN_WAIT, |text| {
                !text.contains("delete this")
            })
            .await
            .unwrap_or_else(|err| panic!("the deleted message goes: {err}"));
        assert!(left.contains("keep this"), "{left}");
    }

    let code = link.rsplit('/').next().unwrap().to_owned();
    let closed = admin(
        reqwest::Method::POST,
        format!("/api/admin/rooms/{code}/close"),
    )
    .await
    .unwrap();
    assert_eq!(closed.status(), 204);
    for browser in [&ana, &ben] {
        let shown = expect_text(browser, "[data-testid=room-unavailable]", "closed").await;
        assert!(shown.contains("A moderator closed this room."), "{shown}");
        assert!(
            !browser.exists("#message").await,
            "no composer in a closed room"
        );
    }
    ben.screenshot("room-closed").await;
    ben.click("[data-testid=room-unavailable] button").await;
    back_in_lobby(&ben).await;
    for browser in [ana, ben] {
        browser.close().await;
    }
    server.shutdown().await.unwrap();
}
