//! Calls to the server's HTTP API, typed by `confab_shared::api`.

use confab_shared::api::{ApiErrorBody, GuestRequest, GuestResponse};
use gloo_net::http::Request;

/// Gets a guest token for `username`. Errors are the server's own message when it sent one.
pub async fn guest_sign_in(
    username: &str,
    image_url: Option<&str>,
) -> Result<GuestResponse, String> {
    let body = GuestRequest {
        username: username.to_owned(),
        image_url: image_url.map(str::to_owned),
    };
    let response = Request::post("/api/auth/guest")
        .json(&body)
        .map_err(|e| e.to_string())?
        .send()
        .await
        .map_err(|e| format!("cannot reach the server: {e}"))?;
    if response.ok() {
        response
            .json()
            .await
            .map_err(|e| format!("unreadable answer: {e}"))
    } else {
        match response.json::<ApiErrorBody>().await {
            Ok(body) => Err(body.error.message),
            Err(_) => Err(format!("sign-in failed ({})", response.status())),
        }
    }
}
