//! A typed WebSocket to the server that served the page.

use confab_shared::native::{decode_server, ClientMessage, ServerMessage};
use futures::{SinkExt, StreamExt};
use gloo_net::websocket::{futures::WebSocket, Message};

pub struct Socket {
    inner: WebSocket,
}

impl Socket {
    /// Opens `path` (e.g. `/ws`) on the page's own host, `wss:` when the page is `https:`.
    pub fn open(path: &str) -> Result<Self, String> {
        let url = same_origin_ws_url(path)?;
        let inner = WebSocket::open(&url).map_err(|e| format!("cannot open {url}: {e}"))?;
        Ok(Self { inner })
    }

    pub async fn send(&mut self, message: &ClientMessage) -> Result<(), String> {
        self.inner
            .send(Message::Text(message.to_json()))
            .await
            .map_err(|e| format!("send failed: {e}"))
    }

    /// The next server message; an error if the socket closed or sent something unreadable.
    pub async fn next(&mut self) -> Result<ServerMessage, String> {
        match self.inner.next().await {
            Some(Ok(Message::Text(text))) => {
                decode_server(&text).map_err(|e| format!("unreadable message from the server: {e}"))
            }
            Some(Ok(Message::Bytes(_))) => Err("unexpected binary message".into()),
            Some(Err(e)) => Err(format!("connection lost: {e}")),
            None => Err("connection closed".into()),
        }
    }
}

fn same_origin_ws_url(path: &str) -> Result<String, String> {
    let location = web_sys::window().ok_or("no window")?.location();
    let protocol = location.protocol().map_err(|_| "no page protocol")?;
    let host = location.host().map_err(|_| "no page host")?;
    let scheme = if protocol == "https:" { "wss" } else { "ws" };
    Ok(format!("{scheme}://{host}{path}"))
}
