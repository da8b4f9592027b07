//! Drives a real headless Chromium through chromedriver. Every wait has a timeout, so a
//! broken server fails a test instead of hanging it.

use std::{
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use fantoccini::{error::CmdError, Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tokio::process::{Child, Command};

/// A phone's screen (an iPhone 12 to 15's CSS pixels), where the app's narrow layout applies.
pub const PHONE: (u32, u32) = (390, 844);
/// How long a test waits for something to appear on screen.
pub const SCREEN_WAIT: Duration = Duration::from_secs(10);
/// How long a test waits for a freshly loaded page's app to render: compiling the debug
/// build's WebAssembly takes seconds when every test has a browser open on two cores.
pub const PAGE_LOAD_WAIT: Duration = Duration::from_secs(30);

/// The built app. `scripts/test.sh` builds it with `scripts/build-app.sh --debug` before the
/// tests run; `CONFAB_TEST_SITE_DIR` points the tests at another build.
pub fn site_dir() -> PathBuf {
    let dir = std::env::var_os("CONFAB_TEST_SITE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/site")));
    assert!(
        dir.join("shell.html").is_file(),
        "no built app in {}: run `scripts/build-app.sh --debug` first (scripts/test.sh does)",
        dir.display()
    );
    dir
}

/// A chromedriver process on a free port, killed on drop.
pub struct Chromedriver {
    _child: Child,
    port: u16,
}

impl Chromedriver {
    pub async fn start() -> Self {
        let port = free_port();
        let child =
            Command::new(std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into()))
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("chromedriver runs (scripts/bootstrap.sh test installs it)");
        let deadline = Instant::now() + SCREEN_WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            _child: child,
            port,
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One browser window with a profile of its own.
pub struct Browser {
    client: Client,
    _profile: tempfile::TempDir,
}

#[derive(Debug)]
pub enum WaitError {
    /// Nothing matched within the time allowed.
    TimedOut {
        selector: String,
        waited: Duration,
    },
    Browser(CmdError),
}

impl std::fmt::Display for WaitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TimedOut { selector, waited } => {
                write!(
                    f,
                    "nothing with text matched {selector:?} within {waited:?}"
                )
            }
            Self::Browser(err) => write!(f, "the browser failed: {err}"),
        }
    }
}

impl Browser {
    pub async fn open(driver: &Chromedriver) -> Self {
        let profile = tempfile::tempdir().unwrap();
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let capabilities = json!({
            "browserName": "chrome",
            // The page's console, read back by `page_errors`.
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities.as_object().unwrap().clone())
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .expect("chromium starts under chromedriver");
        Self {
            client,
            _profile: profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("page loads");
    }

    /// The text of the first element matching `selector`, once one exists and its text is
    /// not empty; `WaitError::TimedOut` after `timeout`.
    pub async fn wait_for_text(
        &self,
        selector: &str,
        timeout: Duration,
    ) -> Result<String, WaitError> {
        let started = Instant::now();
        loop {
            match self.client.find(Locator::Css(selector)).await {
                Ok(element) => {
                    let text = element.text().await.map_err(WaitError::Browser)?;
                    if !text.is_empty() {
                        return Ok(text);
                    }
                }
                Err(err) if err.is_no_such_element() => {}
                Err(err) => return Err(WaitError::Browser(err)),
            }
            if started.elapsed() >= timeout {
                return Err(WaitError::TimedOut {
                    selector: selector.to_owned(),
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The text of the first element matching `selector` once `accept` takes it;
    /// `WaitError::TimedOut` after `timeout`. An element that does not exist reads as "".
    pub async fn wait_until(
        &self,
        selector: &str,
        timeout: Duration,
        accept: impl Fn(&str) -> bool,
    ) -> Result<String, WaitError> {
        let started = Instant::now();
        loop {
            let text = match self.client.find(Locator::Css(selector)).await {
                Ok(element) => match element.text().await {
                    Ok(text) => text,
                    // Re-rendered between finding it and reading it: look again.
                    Err(err) if err.is_stale_element_reference() => String::new(),
                    Err(err) => return Err(WaitError::Browser(err)),
                },
                Err(err) if err.is_no_such_element() => String::new(),
                Err(err) => return Err(WaitError::Browser(err)),
            };
            if accept(&text) {
                return Ok(text);
            }
            if started.elapsed() >= timeout {
                return Err(WaitError::TimedOut {
                    selector: format!("{selector} (last text: {text:?})"),
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The value of `attribute` on the element matching `selector`, once it exists.
    pub async fn attribute(&self, selector: &str, attribute: &str) -> String {
        let element = self
            .client
            .wait()
            .at_most(SCREEN_WAIT)
            .for_element(Locator::Css(selector))
            .await
            .expect("element appears");
        element.attr(attribute).await.unwrap().unwrap_or_default()
    }

    /// Types `text` into the element matching `selector` without clearing it first
    /// (`"\u{E007}"` is the Enter key).
    pub async fn type_into(&self, selector: &str, text: &str) {
        let input = self
            .client
            .wait()
            .at_most(SCREEN_WAIT)
            .for_element(Locator::Css(selector))
            .await
            .expect("input appears");
        input.send_keys(text).await.unwrap();
    }

    /// Types `text` into the input matching `selector`.
    pub async fn fill(&self, selector: &str, text: &str) {
        let input = self
            .client
            .wait()
            .at_most(SCREEN_WAIT)
            .for_element(Locator::Css(selector))
            .await
            .expect("input appears");
        input.clear().await.unwrap();
        input.send_keys(text).await.unwrap();
    }

    /// Clicks the element matching `selector`, once it exists.
    pub async fn click(&self, selector: &str) {
        let element = self
            .client
            .wait()
            .at_most(SCREEN_WAIT)
            .for_element(Locator::Css(selector))
            .await
            .expect("element appears");
        element.click().await.unwrap();
    }

    pub async fn refresh(&self) {
        self.client.refresh().await.unwrap();
    }

    /// Whether an element matches `selector` now.
    pub async fn exists(&self, selector: &str) -> bool {
        self.client.find(Locator::Css(selector)).await.is_ok()
    }

    /// The page's visible text.
    pub async fn body_text(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Saves a screenshot under `target/screenshots/` (a build artifact, not committed).
    /// At desktop width it also looks at the same screen on a phone: at 390×844 nothing may
    /// stick out sideways, and that view is saved as `{name}-phone`; then the window gets
    /// its size back.
    pub async fn screenshot(&self, name: &str) {
        self.save_screenshot(name).await;
        let (width, height) = self.client.get_window_size().await.expect("window size");
        if width < u64::from(PHONE.0) * 2 {
            return;
        }
        self.resize(PHONE.0, PHONE.1).await;
        // Two frames: the narrow layout is applied and painted.
        self.client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
                Vec::new(),
            )
            .await
            .expect("script runs");
        let outside = self.shown_outside_the_screen_sideways().await;
        assert!(
            outside.is_empty() && !self.overflows_horizontally().await,
            "{name}: on a phone, something sticks out sideways: {outside:?}"
        );
        self.save_screenshot(&format!("{name}-phone")).await;
        self.resize(width as u32, height as u32).await;
    }

    async fn save_screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/screenshots"
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Resizes the window (to look at the narrow layout).
    pub async fn resize(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("window resizes");
    }

    /// Whether the page scrolls sideways (something does not fit its width).
    pub async fn overflows_horizontally(&self) -> bool {
        let value = self
            .client
            .execute(
                "return document.documentElement.scrollWidth > document.documentElement.clientWidth",
                Vec::new(),
            )
            .await
            .expect("script runs");
        value.as_bool().unwrap_or(true)
    }

    /// Elements shown that reach past the screen's left or right edge, which the page
    /// cannot be scrolled to (what sticks out on the right, `overflows_horizontally` sees).
    async fn shown_outside_the_screen_sideways(&self) -> Vec<String> {
        let outside = self
            .evaluate(
                "return [...document.querySelectorAll('body *')].filter(e => {
                   const r = e.getBoundingClientRect();
                   return r.width > 0 && r.height > 0 && (r.left < -1 || r.right > innerWidth + 1);
                 }).map(e => e.tagName.toLowerCase() + '.' + [...e.classList].join('.'))",
            )
            .await;
        serde_json::from_value(outside).unwrap_or_default()
    }

    /// Runs `script` in the page.
    pub async fn execute(&self, script: &str) {
        self.client
            .execute(script, Vec::new())
            .await
            .expect("script runs");
    }

    /// Panics and uncaught errors the page logged since the last call: a WASM panic is
    /// logged as "panicked at …", and what follows it (or any other uncaught exception) as
    /// "Uncaught …". Failed requests (a server restarting, say) are not errors of the page.
    pub async fn page_errors(&self) -> Vec<String> {
        let logged = self
            .client
            .issue_cmd(ChromeCommand::browser_log())
            .await
            .expect("chromedriver returns the browser's log");
        logged
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|entry| entry["message"].as_str())
            .filter(|message| message.contains("panicked at") || message.contains("Uncaught"))
            .map(str::to_owned)
            .collect()
    }

    /// Runs `script` (a function body that `return`s) in the page; its value.
    pub async fn evaluate(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, Vec::new())
            .await
            .expect("script runs")
    }

    /// Has the page's CSS see `prefers-color-scheme: dark`, as a system in dark mode does.
    pub async fn prefer_dark(&self) {
        self.client
            .issue_cmd(ChromeCommand::devtools(
                "Emulation.setEmulatedMedia",
                json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
            ))
            .await
            .expect("chromedriver passes the DevTools command on");
    }

    /// Closes the window; fails the test if the page panicked or threw an uncaught error at
    /// any point.
    pub async fn close(self) {
        let errors = self.page_errors().await;
        let _ = self.client.close().await;
        assert!(errors.is_empty(), "the page failed: {errors:#?}");
    }
}

/// A ChromeDriver command beyond WebDriver's own: `POST /session/{id}/{path}` with `body`.
/// `se/log` (type `browser`) reads the console since it was last asked; `goog/cdp/execute`
/// passes a Chrome DevTools Protocol command on.
#[derive(Debug)]
struct ChromeCommand {
    path: &'static str,
    body: serde_json::Value,
}

impl ChromeCommand {
    fn browser_log() -> Self {
        Self {
            path: "se/log",
            body: json!({"type": "browser"}),
        }
    }

    fn devtools(command: &str, params: serde_json::Value) -> Self {
        Self {
            path: "goog/cdp/execute",
            body: json!({"cmd": command, "params": params}),
        }
    }
}

impl fantoccini::wd::WebDriverCompatibleCommand for ChromeCommand {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}
