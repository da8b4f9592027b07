//! What HTTP handlers take from a request, each refusing with [`ApiError`]: who is calling
//! ([`Caller`]), the service key other backends present ([`ServiceKey`]), and JSON bodies
//! ([`JsonBody`], [`OptionalJsonBody`]). A handler's signature shows what it needs.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::{header, request::Parts},
    Json,
};
use serde::de::DeserializeOwned;

use super::ApiError;
use crate::{
    auth::{
        caller::{identify, require_service_key},
        Identity,
    },
    AppState,
};

/// The verified identity of a caller presenting a JWT (`Authorization: Bearer` or the
/// session cookie); `401` otherwise.
pub struct Caller(pub Identity);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        identify(state, &parts.headers).await.map(Self)
    }
}

/// A caller holding the service key (`CONFAB_API_KEY`); `401` without it, `403` when no
/// key is configured (publishing is off).
pub struct ServiceKey;

impl FromRequestParts<AppState> for ServiceKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        require_service_key(state, &parts.headers).map(|()| Self)
    }
}

/// A JSON body, sent as `Content-Type: application/json`; anything else is `400`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<T>::from_request(request, state).await?;
        Ok(Self(value))
    }
}

/// A JSON body that may be left out: an empty body, with no `Content-Type` or a JSON one,
/// reads as `T::default()`. A body of any other type (a form, plain text) is refused rather
/// than read as an empty request. (A cross-site request with no body at all is not told
/// apart here: that takes an `Origin` check.)
pub struct OptionalJsonBody<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|value| value.to_str().map(is_json).unwrap_or(false));
        if content_type == Some(false) {
            return Err(not_json());
        }
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
        if body.is_empty() {
            return Ok(Self(T::default()));
        }
        if content_type.is_none() {
            return Err(not_json());
        }
        let Json(value) = Json::<T>::from_bytes(&body)?;
        Ok(Self(value))
    }
}

/// Whether a `Content-Type` is JSON: `application/json` or `application/…+json`, with any
/// parameters.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn not_json() -> ApiError {
    ApiError::BadRequest("a request body must be sent as Content-Type: application/json".into())
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn json_content_types_are_told_apart() {
        for json in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
        ] {
            assert!(is_json(json), "{json}");
        }
        for other in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
            "",
        ] {
            assert!(!is_json(other), "{other}");
        }
    }
}
