//! The wire dialects. Each one decodes its wire format into calls on the core and renders the
//! core's events back; none of them holds room logic of its own.

pub mod channels;
pub mod direct_ws;
pub mod native;
pub mod plain_ws;
pub mod socketio;

use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(native::routes())
        .merge(channels::routes())
        .merge(socketio::publish::routes())
}

/// An opaque stored document as JSON; a document that is not JSON is passed on as a string.
pub fn document(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned()))
}
