//! Plain HTTP: health, and the static site with its fallback for client-side routes.

pub mod error;
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
        .route("/api/auth/guest", post(crate::auth::guest::issue));
    site::serve(api, site_dir)
}

async fn healthz() -> &'static str {
    "ok"
}
