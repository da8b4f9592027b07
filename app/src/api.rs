//! Calls to the server's HTTP API, typed by `confab_shared::api` and `channels`.

use confab_shared::{
    api::{
        ApiErrorBody, GuestRequest, GuestResponse, NotificationList, PingRequest, WsTokenResponse,
    },
    channels::OnlineUsersUpdate,
    decode, FromJson,
};
use gloo_net::http::{Request, Response};

/// Why a call failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The JWT was refused: the person must sign in again.
    Unauthorized,
    /// The server's own message, or what went wrong reaching it.
    Other(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unauthorized => f.write_str("please sign in again"),
            Self::Other(text) => f.write_str(text),
        }
    }
}

async fn answer<T: FromJson>(response: Result<Response, gloo_net::Error>) -> Result<T, Failure> {
    let response = response.map_err(|e| Failure::Other(format!("cannot reach the server: {e}")))?;
    if response.status() == 401 {
        return Err(Failure::Unauthorized);
    }
    if response.ok() {
        // Callers expecting no body (204) ask for `()`, which decodes from `null`.
        let text = match response.status() {
            204 => "null".to_owned(),
            _ => response.text().await.unwrap_or_default(),
        };
        return decode(&text).map_err(|e| Failure::Other(format!("unreadable answer: {e}")));
    }
    let text = response.text().await.unwrap_or_default();
    match decode::<ApiErrorBody>(&text) {
        Ok(body) => Err(Failure::Other(body.error.message)),
        Err(_) => Err(Failure::Other(format!(
            "request failed ({})",
            response.status()
        ))),
    }
}

/// Gets a guest token for `username`.
pub async fn guest_sign_in(
    username: &str,
    image_url: Option<&str>,
) -> Result<GuestResponse, String> {
    let body = GuestRequest {
        username: username.to_owned(),
        image_url: image_url.map(str::to_owned),
    };
    let request = Request::post("/api/auth/guest")
        .json(&body)
        .map_err(|e| e.to_string())?;
    answer(request.send().await)
        .await
        .map_err(|e| e.to_string())
}

/// A short-lived token for the `/qf` sockets.
pub async fn ws_token(jwt: &str) -> Result<String, Failure> {
    let response = Request::get("/qf/auth/ws-token")
        .header("Authorization", &format!("Bearer {jwt}"))
        .send()
        .await;
    answer::<WsTokenResponse>(response).await.map(|t| t.token)
}

/// The REST fallback of the online list.
pub async fn online_users(jwt: &str) -> Result<OnlineUsersUpdate, Failure> {
    let response = Request::get("/qf/users/online")
        .header("Authorization", &format!("Bearer {jwt}"))
        .send()
        .await;
    answer(response).await
}

/// Pings everyone online named `username`, with a link to join when there is one.
pub async fn ping(jwt: &str, username: &str, join_url: Option<String>) -> Result<(), String> {
    let path = format!(
        "/qf/users/online/{}/ping",
        js_sys::encode_uri_component(username)
    );
    let request = Request::post(&path)
        .header("Authorization", &format!("Bearer {jwt}"))
        .json(&PingRequest { join_url })
        .map_err(|e| e.to_string())?;
    answer::<serde_json::Value>(request.send().await)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The signed-in person's stored notifications, newest first.
pub async fn notifications(jwt: &str) -> Result<NotificationList, Failure> {
    let response = Request::get("/api/notifications")
        .header("Authorization", &format!("Bearer {jwt}"))
        .send()
        .await;
    answer(response).await
}

/// Marks notification `id` read.
pub async fn mark_notification_read(jwt: &str, id: &str) -> Result<(), Failure> {
    let path = format!(
        "/api/notifications/{}/read",
        js_sys::encode_uri_component(id)
    );
    let response = Request::post(&path)
        .header("Authorization", &format!("Bearer {jwt}"))
        .send()
        .await;
    answer(response).await
}

/// A party call: `POST /qf/party{path}` with `body`, answering the session (or nothing).
pub async fn party_post<T: FromJson>(
    jwt: &str,
    path: &str,
    body: serde_json::Value,
) -> Result<T, Failure> {
    let request = Request::post(&format!("/qf/party{path}"))
        .header("Authorization", &format!("Bearer {jwt}"))
        .json(&body)
        .map_err(|e| Failure::Other(e.to_string()))?;
    answer(request.send().await).await
}
