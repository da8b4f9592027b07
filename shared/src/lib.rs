//! Confab's wire protocol, shared by the server and the browser app so the two cannot disagree.
//!
//! - [`native`]: the JSON envelope spoken at `/ws` (`{"type": ...}`), contract 000 plus the
//!   extensions documented in `PROTOCOL.md`.
//! - [`api`]: the JSON bodies of the HTTP API.
//! - [`channels`]: the messages of the `/qf/*` sockets (contract 003).
//! - [`limits`]: every limit a client must respect, so the app validates exactly as the
//!   server does.
//!
//! This crate carries serde types only; it compiles for `wasm32-unknown-unknown` and native
//! and depends on nothing server-side.

pub mod api;
pub mod channels;
mod fields;
pub mod limits;
pub mod native;

use serde::de::DeserializeOwned;

/// Decodes JSON text into a `T`, by way of a [`serde_json::Value`]. The app decodes
/// everything it receives with this, so its wasm holds one copy of serde_json's parser (the
/// one that builds a `Value`) instead of one for every type it decodes: about 7 KB less
/// wasm.
pub fn decode_json<T: DeserializeOwned>(text: &str) -> serde_json::Result<T> {
    serde_json::from_value(serde_json::from_str(text)?)
}
