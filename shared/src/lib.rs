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
//!
//! The derives are the definition of every shape. The app reads what it receives with
//! [`decode`] instead, by hand ([`FromJson`]): the derived decoders and serde's error
//! machinery were about a fifth of its wasm. Tests and fuzzing hold each hand decoder to its
//! derive ([`decode_json`]).

pub mod api;
pub mod channels;
pub mod fields;
pub mod limits;
pub mod native;

use serde::de::DeserializeOwned;
use serde_json::Value;

/// A type read by hand from parsed JSON. For a type of this crate that is exactly what its
/// derived `Deserialize` accepts, which the tests check.
pub trait FromJson: Sized {
    fn from_json(value: &Value) -> fields::Result<Self>;
}

/// Decodes JSON text into a `T` by hand: parsed into a [`Value`], then read field by field.
pub fn decode<T: FromJson>(text: &str) -> serde_json::Result<T> {
    let value: Value = serde_json::from_str(text)?;
    T::from_json(&value).map_err(serde::de::Error::custom)
}

/// Decodes JSON text into a `T` through its derived `Deserialize`: what the server's tests
/// and the fuzz targets compare the hand decoders with.
pub fn decode_json<T: DeserializeOwned>(text: &str) -> serde_json::Result<T> {
    serde_json::from_value(serde_json::from_str(text)?)
}

/// Any JSON, as it is.
impl FromJson for Value {
    fn from_json(value: &Value) -> fields::Result<Self> {
        Ok(value.clone())
    }
}

/// `null`, as an answer with no body reads.
impl FromJson for () {
    fn from_json(value: &Value) -> fields::Result<Self> {
        match value {
            Value::Null => Ok(()),
            _ => Err("expected null".to_owned()),
        }
    }
}
