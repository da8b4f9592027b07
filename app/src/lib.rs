//! Confab's browser app: Leptos, client-side rendered, speaking `confab_shared`'s envelope
//! over browser WebSockets.

mod socket;

use confab_shared::native::{ClientMessage, RoomStateView, ServerMessage};
use leptos::prelude::*;
use wasm_bindgen::prelude::wasm_bindgen;

/// The entry point for both builds (trunk and cargo-leptos).
#[wasm_bindgen(start)]
pub fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

/// What the first exchange with the server showed.
#[derive(Clone, Debug, PartialEq)]
enum Link {
    Connecting,
    /// The server answered the ping with this lobby state.
    Answered(String),
    Failed(String),
}

#[component]
pub fn App() -> impl IntoView {
    let link = RwSignal::new(Link::Connecting);
    leptos::task::spawn_local(async move {
        link.set(match first_exchange().await {
            Ok(state) => Link::Answered(state),
            Err(err) => Link::Failed(err),
        });
    });
    view! {
        <main class="shell">
            <header class="topbar">
                <h1 class="brand">"Confab"</h1>
            </header>
            <section class="card" aria-live="polite">
                {move || match link.get() {
                    Link::Connecting => view! { <p class="status">"Connecting…"</p> }.into_any(),
                    Link::Answered(state) => view! {
                        <p class="status ok">"Connected. Room state: "<strong data-testid="room-state">{state}</strong></p>
                    }.into_any(),
                    Link::Failed(err) => view! { <p class="status error" role="alert">{err}</p> }.into_any(),
                }}
            </section>
        </main>
    }
}

/// Sends contract 000's `ping` and reads the `room:state` answer.
async fn first_exchange() -> Result<String, String> {
    let mut socket = socket::Socket::open("/ws")?;
    socket.send(&ClientMessage::Ping).await?;
    match socket.next().await? {
        ServerMessage::RoomState {
            room: RoomStateView::Lobby { state },
        } => Ok(format!("{state:?}").to_lowercase()),
        ServerMessage::RoomState {
            room: RoomStateView::Room(room),
        } => Ok(room.code),
        other => Err(format!("unexpected answer: {other:?}")),
    }
}
