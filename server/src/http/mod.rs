//! Plain HTTP: health, guest tokens, the notification API, the moderation API and the
//! static site with its fallback for client-side routes. Routes that exist for one dialect live with it: the
//! party and online-users routes of contract 003 in `dialects::channels`, the media and
//! room-event publishing of the Socket.IO contracts in `dialects::socketio::publish`.

pub mod admin;
pub mod notifications;
pub mod site;

use std::path::Path;

use axum::{
    extract::State,
    http::StatusCode,
    routing::{get, post},
    Json, Router,
};
use serde_json::json;

use crate::AppState;

pub fn routes(site_dir: &Path) -> Router<AppState> {
    let api = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/auth/guest", post(crate::auth::guest::issue))
        .route(
            "/api/notifications",
            get(notifications::list).post(notifications::publish),
        )
        .route(
            "/api/notifications/{id}/read",
            post(notifications::mark_read),
        )
        .merge(admin::routes());
    site::serve(api, site_dir)
}

/// `GET /metrics`: Prometheus's text format. On the public listener unless
/// `--metrics-addr` gives it one of its own.
pub fn metrics_routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(),
    )
}

/// The process answers.
async fn healthz() -> &'static str {
    "ok"
}

/// The node can serve: `{"ready": true}`, or 503 with `{"ready": false, "reason"}` while its
/// database or Redis is unavailable, and from the moment it starts shutting down.
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let outcome = if state.is_draining() {
        Err("shutting down")
    } else {
        state.core().readiness().await
    };
    match outcome {
        Ok(()) => (StatusCode::OK, Json(json!({"ready": true}))),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false, "reason": reason})),
        ),
    }
}
