//! What every REST route shares, whichever module serves it (`http`, the `/qf` channels,
//! the Socket.IO publish API): the one error type and the extractors that refuse with it.

pub mod error;
pub mod extract;

pub use error::ApiError;
pub use extract::{Caller, JsonBody, OptionalJsonBody, ServiceKey};
