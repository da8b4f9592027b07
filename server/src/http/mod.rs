//! Plain HTTP: health, and the static site with its fallback for client-side routes.

pub mod caller;
pub mod error;
pub mod extract;
pub mod notifications;
pub mod publish;
pub mod site;

use std::path::Path;

use axum::{
    routing::{get, post},
    Router,
};

use crate::AppState;

pub fn routes(site_dir: &Path) -> Router<AppState> {
    let api = Router::new()
        .route("/healthz", get(healthz))
        .route("/api/auth/guest", post(crate::auth::guest::issue))
        .route(
            "/api/notifications",
            get(notifications::list).post(notifications::publish),
        )
        .route(
            "/api/notifications/{id}/read",
            post(notifications::mark_read),
        )
        .route(
            "/api/media/{media_id}/progress",
            post(publish::media_progress),
        )
        .route(
            "/api/media/{media_id}/complete",
            post(publish::media_complete),
        )
        .route("/api/media/{media_id}/error", post(publish::media_error))
        .route("/api/rooms/{room}/events", post(publish::room_event));
    site::serve(api, site_dir)
}

async fn healthz() -> &'static str {
    "ok"
}
