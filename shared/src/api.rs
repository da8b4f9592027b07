//! The JSON bodies of the HTTP API the app uses.

use serde::{Deserialize, Serialize};

/// `POST /api/auth/guest`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GuestRequest {
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
}

/// The answer to `POST /api/auth/guest`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GuestResponse {
    /// A JWT for `auth` on `/ws`.
    pub token: String,
    pub user_id: String,
    /// Unix seconds.
    pub exp: i64,
}

/// Every API error: `{"error": {"code": ..., "message": ...}}`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ApiErrorBody {
    pub error: ApiErrorDetail,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ApiErrorDetail {
    /// Stable and machine-readable: `bad_request`, `unauthorized`, `rate_limited`, `internal`.
    pub code: String,
    /// For people.
    pub message: String,
}

/// The answer to `GET /qf/auth/ws-token` (contract 003).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct WsTokenResponse {
    /// Opens `/qf/*` sockets as `?token=…`; not accepted anywhere else.
    pub token: String,
    /// Seconds the token can be used to open a socket.
    pub expires_in: u64,
}
