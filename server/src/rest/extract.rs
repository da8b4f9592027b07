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

/// A JSON body that may be left out: a request with no body and no `Content-Type` reads as
/// `T::default()`. A body of any other type is refused like [`JsonBody`]'s, so a form post
/// from another site cannot pass for an empty request.
pub struct OptionalJsonBody<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let has_content_type = request.headers().contains_key(header::CONTENT_TYPE);
        if has_content_type {
            return JsonBody::from_request(request, state)
                .await
                .map(|JsonBody(value)| Self(value));
        }
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
        if body.is_empty() {
            Ok(Self(T::default()))
        } else {
            Err(ApiError::BadRequest(
                "a request body must be sent as Content-Type: application/json".into(),
            ))
        }
    }
}
