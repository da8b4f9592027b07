//! Plain HTTP: health, guest tokens, the notification API and the static site with its
//! fallback for client-side routes. Routes that exist for one dialect live with it: the
//! party and online-users routes of contract 003 in `dialects::channels`, the media and
//! room-event publishing of the Socket.IO contracts in `dialects::socketio::publish`.

pub mod notifications;
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
        );
    site::serve(api, site_dir)
}

async fn healthz() -> &'static str {
    "ok"
}
