//! The ceiling of the stack: a minimal axum WebSocket broadcast server, no auth, no storage.
//! `GET /ws?room=NAME` joins a room; every text frame a member sends goes to every member
//! (the sender included), serialised once and shared.
//!
//! Usage: `raw-ws 127.0.0.1:4000`

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    extract::{
        ws::{Message, Utf8Bytes, WebSocket},
        Query, State, WebSocketUpgrade,
    },
    response::Response,
    routing::get,
    serve::ListenerExt,
    Router,
};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast;

/// Frames one member may lag behind before it misses some (it is then dropped).
const ROOM_BUFFER: usize = 4096;

type Rooms = Arc<Mutex<HashMap<String, broadcast::Sender<Utf8Bytes>>>>;

#[derive(Deserialize)]
struct Join {
    room: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4000".into());
    let rooms: Rooms = Arc::default();
    let app = Router::new().route("/ws", get(upgrade)).with_state(rooms);
    // Like any WebSocket server (and Confab): frames are not held back by Nagle's algorithm.
    let listener = tokio::net::TcpListener::bind(&addr).await?.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}

async fn upgrade(
    ws: WebSocketUpgrade,
    Query(join): Query<Join>,
    State(rooms): State<Rooms>,
) -> Response {
    let room = {
        let mut rooms = rooms.lock().unwrap_or_else(|p| p.into_inner());
        rooms
            .entry(join.room)
            .or_insert_with(|| broadcast::channel(ROOM_BUFFER).0)
            .clone()
    };
    // The same small read buffer Confab uses; axum's default costs 128 KiB per socket.
    ws.read_buffer_size(4 * 1024)
        .on_upgrade(move |socket| serve(socket, room))
}

async fn serve(socket: WebSocket, room: broadcast::Sender<Utf8Bytes>) {
    let (mut sink, mut stream) = socket.split();
    let mut deliveries = room.subscribe();
    loop {
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => { let _ = room.send(text); }
                Some(Ok(_)) => {}
                _ => break,
            },
            delivery = deliveries.recv() => {
                let Ok(text) = delivery else { break };
                if sink.feed(Message::Text(text)).await.is_err() { break; }
                // Drain what else is queued before one flush.
                while let Ok(text) = deliveries.try_recv() {
                    if sink.feed(Message::Text(text)).await.is_err() { return; }
                }
                if sink.flush().await.is_err() { break; }
            }
        }
    }
}
