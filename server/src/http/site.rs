//! Serves the built app. Any path that is not a file gets the app's shell page, so client-side
//! routes load the app. Without a built site, `/` explains how to build one and every API and
//! socket keeps working: Confab is also a backend for other apps.

use std::path::Path;

use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Response},
    Router,
};
use tower_http::services::{ServeDir, ServeFile};

/// The page cargo-leptos copies from `public/` into the site: it loads the app.
pub const SHELL_FILE: &str = "shell.html";

pub fn is_built(site_dir: &Path) -> bool {
    site_dir.join(SHELL_FILE).is_file()
}

pub fn warn_if_missing(site_dir: &Path) {
    if !is_built(site_dir) {
        tracing::warn!(
            site_dir = %site_dir.display(),
            "no built app here, so only the APIs and sockets are served; \
             build it with `cargo leptos build --release` or point CONFAB_SITE_DIR at one"
        );
    }
}

/// Adds the site to `router` as its fallback: files from `site_dir`, the shell page for any
/// other path (client-side routes get 200), or the build instructions when there is no site.
pub fn serve<S: Clone + Send + Sync + 'static>(router: Router<S>, site_dir: &Path) -> Router<S> {
    if is_built(site_dir) {
        let shell = ServeFile::new(site_dir.join(SHELL_FILE));
        router.fallback_service(ServeDir::new(site_dir).fallback(shell))
    } else {
        router.fallback(no_site_page)
    }
}

async fn no_site_page() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(concat!(
            "<!doctype html><meta charset=utf-8><title>Confab</title>",
            "<h1>Confab is running</h1>",
            "<p>The web app has not been built, so this server offers its APIs and sockets only ",
            "(<code>/ws</code>, <code>/qf/…</code>, <code>/socket.io/</code>, <code>/api/…</code>).</p>",
            "<p>To serve the app, build it with <code>cargo leptos build --release</code> and ",
            "start the server from the repository root, or set <code>CONFAB_SITE_DIR</code> to ",
            "the built site directory.</p>"
        )),
    )
        .into_response()
}
