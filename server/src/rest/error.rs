//! The HTTP API's one error type: a status, a stable machine-readable code and a message,
//! rendered as `{"error": {"code": ..., "message": ...}}`. Internal causes are logged, never
//! sent.

use axum::{
    extract::rejection::JsonRejection,
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use confab_shared::api::{ApiErrorBody, ApiErrorDetail};

use crate::core::CoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("authentication required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("too many requests; slow down")]
    RateLimited,
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            tracing::error!(error = %cause, "request failed");
        }
        let (status, code) = self.status_and_code();
        let error = ApiErrorDetail {
            code: code.into(),
            message: self.to_string(),
        };
        (status, Json(ApiErrorBody { error })).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

/// The one mapping of the core's refusals to HTTP: every route answers a refusal alike.
impl From<CoreError> for ApiError {
    fn from(err: CoreError) -> Self {
        match err {
            CoreError::Internal(cause) => Self::Internal(cause.0),
            CoreError::NotSignedIn => Self::Unauthorized,
            CoreError::RoomNotFound
            | CoreError::PartyNotFound
            | CoreError::NotificationNotFound
            | CoreError::MessageNotFound
            | CoreError::NotBanned => Self::NotFound(err.to_string()),
            CoreError::NotHost
            | CoreError::NotAMember
            | CoreError::NotAPlayer
            | CoreError::Banned => Self::Forbidden(err.to_string()),
            CoreError::RoomClosed => Self::Conflict(err.to_string()),
            CoreError::Conflict(text) => Self::Conflict(text),
            CoreError::RoomFull | CoreError::PartyEnded | CoreError::AlreadyPlaying => {
                Self::Conflict(err.to_string())
            }
            CoreError::TooManyRooms(_) | CoreError::Invalid(_) => Self::BadRequest(err.to_string()),
            CoreError::CreatingTooFast => Self::RateLimited,
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::ApiError;
    use crate::core::CoreError;

    /// Every route maps a refusal of the core the same way; a conflict is 409 everywhere.
    #[test]
    fn core_refusals_map_to_one_status_each() {
        let cases = [
            (CoreError::NotSignedIn, StatusCode::UNAUTHORIZED),
            (CoreError::RoomNotFound, StatusCode::NOT_FOUND),
            (CoreError::PartyNotFound, StatusCode::NOT_FOUND),
            (CoreError::NotificationNotFound, StatusCode::NOT_FOUND),
            (CoreError::MessageNotFound, StatusCode::NOT_FOUND),
            (CoreError::NotBanned, StatusCode::NOT_FOUND),
            (CoreError::Banned, StatusCode::FORBIDDEN),
            (CoreError::RoomClosed, StatusCode::CONFLICT),
            (CoreError::NotHost, StatusCode::FORBIDDEN),
            (CoreError::NotAMember, StatusCode::FORBIDDEN),
            (CoreError::NotAPlayer, StatusCode::FORBIDDEN),
            (CoreError::Conflict("busy".into()), StatusCode::CONFLICT),
            (CoreError::RoomFull, StatusCode::CONFLICT),
            (CoreError::PartyEnded, StatusCode::CONFLICT),
            (CoreError::AlreadyPlaying, StatusCode::CONFLICT),
            (CoreError::TooManyRooms(3), StatusCode::BAD_REQUEST),
            (CoreError::CreatingTooFast, StatusCode::TOO_MANY_REQUESTS),
            (CoreError::invalid("bad"), StatusCode::BAD_REQUEST),
        ];
        for (err, status) in cases {
            let text = err.to_string();
            let api = ApiError::from(err);
            assert_eq!(api.status_and_code().0, status, "{text}");
        }
    }
}
