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
