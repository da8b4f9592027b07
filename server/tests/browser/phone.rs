//! The app on a phone (390×844): in a room the message list and the composer fill the
//! screen, one scroll area, and the members and the online list open as drawers.

use serde_json::json;

use crate::flows::{create_room, expect_text, signed_in};
use crate::harness::{Browser, Chromedriver, PHONE};
use crate::timeline::{post_messages, serve};

/// Whether the element `selector` is shown (not `display: none`, on the screen).
async fn shown(browser: &Browser, selector: &str) -> bool {
    let script = format!(
        "const e = document.querySelector({selector:?});
         if (!e || getComputedStyle(e).display === 'none') return false;
         const r = e.getBoundingClientRect();
         return r.width > 0 && r.height > 0 && r.top < innerHeight && r.bottom > 0;"
    );
    browser.evaluate(&script).await == json!(true)
}

#[tokio::test]
async fn on_a_phone_the_chat_fills_the_screen_and_people_are_drawers() {
    let (server, _data) = serve().await;
    let url = format!("http://{}/", server.addr());
    let driver = Chromedriver::start().await;
    let ana = signed_in(&driver, &url, "Ana").await;
    let link = create_room(&ana).await;
    let ben = signed_in(&driver, &link, "Ben").await;
    expect_text(&ben, "[data-testid=members]", "Ana").await;
    ben.resize(PHONE.0, PHONE.1).await;
    let code = link.rsplit('/').next().unwrap().to_owned();
    post_messages(&server, &code, 30).await;
    expect_text(&ben, "[data-testid=messages]", "m30").await;

    // The composer is on the screen, and the page itself does not scroll: the list does.
    let layout = ben
        .evaluate(
            "const composer = document.querySelector('#message').getBoundingClientRect();
             const list = document.querySelector('[data-testid=messages]');
             return {
               composerBottom: composer.bottom,
               height: innerHeight,
               pageScrolls: document.documentElement.scrollHeight > innerHeight + 1,
               listScrolls: list.scrollHeight > list.clientHeight,
               listHeight: list.clientHeight,
             };",
        )
        .await;
    assert!(
        layout["composerBottom"].as_f64().unwrap() <= layout["height"].as_f64().unwrap(),
        "the composer is in view: {layout}"
    );
    assert_eq!(layout["pageScrolls"], false, "{layout}");
    assert_eq!(layout["listScrolls"], true, "{layout}");
    ben.screenshot("phone-room").await;
    assert!(
        layout["listHeight"].as_f64().unwrap() > 400.0,
        "the list fills the screen: {layout}"
    );
    assert!(!ben.overflows_horizontally().await);
    assert!(shown(&ben, "#message").await);
    assert!(
        !shown(&ben, ".room .members").await,
        "members wait in a drawer"
    );
    assert!(
        !shown(&ben, ".with-sidebar > .side").await,
        "so does the online list"
    );
    ben.screenshot("phone-room").await;

    ben.click("[data-testid=members-toggle]").await;
    assert!(shown(&ben, ".room .members").await);
    let members = expect_text(&ben, "[data-testid=members]", "Ana").await;
    assert!(members.contains("Ben"), "{members}");
    ben.screenshot("phone-members").await;
    ben.click(".members h3 button").await;
    assert!(!shown(&ben, ".room .members").await);

    ben.click("[data-testid=online-toggle]").await;
    assert!(shown(&ben, ".with-sidebar > .side").await);
    ben.screenshot("phone-online").await;
    ben.click("[data-testid=online-toggle]").await;
    assert!(!shown(&ben, ".with-sidebar > .side").await);

    // At desktop width the toggles go and both lists are beside the chat.
    ben.resize(1280, 900).await;
    assert!(!shown(&ben, "[data-testid=members-toggle]").await);
    assert!(shown(&ben, ".room .members").await);
    assert!(shown(&ben, ".with-sidebar > .side").await);
    for browser in [ana, ben] {
        browser.close().await;
    }
    server.shutdown().await.unwrap();
}
