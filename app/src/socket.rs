//! The app's WebSocket to `/ws`: typed by `confab_shared`, with an outbox any component can
//! send through while one task reads.

use confab_shared::native::{decode_server, ClientMessage, ServerMessage};
use futures::{channel::mpsc, SinkExt, StreamExt};
use gloo_net::websocket::{futures::WebSocket, Message};

/// Sends messages on the socket; cheap to clone.
#[derive(Clone)]
pub struct Outbox(mpsc::UnboundedSender<ClientMessage>);

impl Outbox {
    pub fn send(&self, message: ClientMessage) {
        // A closed socket drops the message; the connection state already says so.
        let _ = self.0.unbounded_send(message);
    }
}

/// Opens `path` on the page's own host and runs it: `on_message` sees every server message,
/// `on_closed` the reason when it ends.
pub fn open(
    path: &str,
    mut on_message: impl FnMut(ServerMessage) + 'static,
    on_closed: impl FnOnce(String) + 'static,
) -> Result<Outbox, String> {
    let url = same_origin_ws_url(path)?;
    let socket = WebSocket::open(&url).map_err(|e| format!("cannot open {url}: {e}"))?;
    let (mut sink, mut stream) = socket.split();
    let (outbox, mut queue) = mpsc::unbounded::<ClientMessage>();
    leptos::task::spawn_local(async move {
        while let Some(message) = queue.next().await {
            if sink.send(Message::Text(message.to_json())).await.is_err() {
                break;
            }
        }
    });
    leptos::task::spawn_local(async move {
        let reason = loop {
            match stream.next().await {
                Some(Ok(Message::Text(text))) => match decode_server(&text) {
                    Ok(message) => on_message(message),
                    Err(e) => break format!("unreadable message from the server: {e}"),
                },
                Some(Ok(Message::Bytes(_))) => break "unexpected binary message".to_owned(),
                Some(Err(e)) => break format!("connection lost: {e}"),
                None => break "connection closed".to_owned(),
            }
        };
        on_closed(reason);
    });
    Ok(Outbox(outbox))
}

fn same_origin_ws_url(path: &str) -> Result<String, String> {
    let location = web_sys::window().ok_or("no window")?.location();
    let protocol = location.protocol().map_err(|_| "no page protocol")?;
    let host = location.host().map_err(|_| "no page host")?;
    let scheme = if protocol == "https:" { "wss" } else { "ws" };
    Ok(format!("{scheme}://{host}{path}"))
}
