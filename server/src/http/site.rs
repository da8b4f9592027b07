//! Serves the built app. A navigation to a path that is not a file gets the app's shell page,
//! so client-side routes load the app; anything else that is not there (a missing asset, an
//! unknown API path) is a 404, never a page of HTML. Without a built site, `/` explains how to
//! build one and every API and socket keeps working: Confab is also a backend for other apps.

use std::path::Path;

use std::sync::Arc;

use axum::{
    handler::HandlerWithoutStateExt,
    http::{header, HeaderValue, StatusCode, Uri},
    response::{Html, IntoResponse, Response},
    Router,
};
use tower_http::{
    compression::CompressionLayer, services::ServeDir, set_header::SetResponseHeaderLayer,
};

/// The page cargo-leptos copies from `public/` into the site: it loads the app.
pub const SHELL_FILE: &str = "shell.html";
/// The site's directory of files whose names carry a hash of their content
/// (`scripts/build-app.sh` puts the app there): a name never changes what it serves, so
/// browsers keep them for a year without asking again.
pub const ASSETS_DIR: &str = "assets";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

pub fn warn_if_missing(site_dir: &Path) {
    if !site_dir.join(SHELL_FILE).is_file() {
        tracing::warn!(
            site_dir = %site_dir.display(),
            "no built app here, so only the APIs and sockets are served; \
             build it with `cargo leptos build --release` or point CONFAB_SITE_DIR at one"
        );
    }
}

/// Paths under which the server, not the app, answers: a miss there is a 404.
const SERVER_PREFIXES: &[&str] = &["/api/", "/qf/", "/socket.io/", "/pkg/", "/assets/", "/ws/"];
const SERVER_PATHS: &[&str] = &["/api", "/qf", "/ws", "/metrics", "/healthz", "/readyz"];

/// Adds the site to `router` as its fallback: files from `site_dir`, the shell page for a
/// navigation to any other path (client-side routes get 200), a 404 for anything else, or
/// the build instructions when there is no site.
pub fn serve<S: Clone + Send + Sync + 'static>(router: Router<S>, site_dir: &Path) -> Router<S> {
    let shell = match std::fs::read_to_string(site_dir.join(SHELL_FILE)) {
        Ok(shell) => Arc::<str>::from(shell),
        Err(_) => return router.fallback(no_site_page),
    };
    let not_a_file = move |uri: Uri| {
        let shell = Arc::clone(&shell);
        async move {
            if is_navigation(uri.path()) {
                Html(shell.to_string()).into_response()
            } else {
                (StatusCode::NOT_FOUND, "not found").into_response()
            }
        }
    };
    let hashed = tower::ServiceBuilder::new()
        .layer(CompressionLayer::new())
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static(IMMUTABLE),
        ))
        // `build-app.sh` writes each file's `.br` and `.gz` beside it, compressed harder
        // than the layer would on the fly; the layer leaves those as they are.
        .service(
            ServeDir::new(site_dir.join(ASSETS_DIR))
                .precompressed_br()
                .precompressed_gzip(),
        );
    let router = router.nest_service(&format!("/{ASSETS_DIR}"), hashed);
    let files = ServeDir::new(site_dir).fallback(not_a_file.into_service());
    let served = tower::ServiceBuilder::new()
        // brotli or gzip, as the browser accepts (the app's wasm shrinks to about a third).
        .layer(CompressionLayer::new())
        // These files' names carry no hash (the shell page, cargo-leptos's `pkg/`), so a
        // browser asks again on each load and gets a 304 while the file is unchanged
        // (`ServeDir` sends `Last-Modified`).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
        .service(files);
    router.fallback_service(served)
}

/// Whether `path` is one a person navigates to (a client-side route), rather than a file or
/// a server endpoint.
fn is_navigation(path: &str) -> bool {
    let last_segment = path.rsplit('/').next().unwrap_or_default();
    !last_segment.contains('.')
        && !SERVER_PATHS.contains(&path)
        && !SERVER_PREFIXES
            .iter()
            .any(|prefix| path.starts_with(prefix))
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
