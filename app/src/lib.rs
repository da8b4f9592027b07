//! Confab's browser app: Leptos, client-side rendered, speaking `confab_shared`'s envelope
//! over browser WebSockets.

mod api;
mod session;
mod socket;

use confab_shared::{
    limits::MAX_USERNAME_CHARS,
    native::{ClientMessage, RoomStateView, ServerMessage},
};
use leptos::{ev::SubmitEvent, html, prelude::*};
use session::Session;
use wasm_bindgen::prelude::wasm_bindgen;

/// The entry point for both builds (trunk and cargo-leptos).
#[wasm_bindgen(start)]
pub fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

/// The state of the link to the server.
#[derive(Clone, Debug, PartialEq)]
enum Link {
    Connecting,
    /// Connected; the last room state the server reported.
    Connected {
        room_state: String,
    },
    Closed(String),
}

/// Whether the signed-in person's token was accepted on the socket.
#[derive(Clone, Debug, PartialEq)]
enum Auth {
    SignedOut,
    Pending,
    SignedIn { username: String },
    Refused(String),
}

#[component]
pub fn App() -> impl IntoView {
    let link = RwSignal::new(Link::Connecting);
    let auth = RwSignal::new(Auth::SignedOut);
    let on_message = move |message: ServerMessage| match message {
        ServerMessage::RoomState { room } => {
            let room_state = match room {
                RoomStateView::Lobby { state } => format!("{state:?}").to_lowercase(),
                RoomStateView::Room(room) => room.code,
            };
            link.set(Link::Connected { room_state });
        }
        ServerMessage::AuthOk { username, .. } => auth.set(Auth::SignedIn { username }),
        ServerMessage::AuthError { error } => {
            // A refused or expired token: forget it and ask the person to sign in again.
            session::clear();
            auth.set(Auth::Refused(error));
        }
        _ => {}
    };
    let outbox = match socket::open("/ws", on_message, move |reason| {
        link.set(Link::Closed(reason))
    }) {
        Ok(outbox) => {
            outbox.send(ClientMessage::Ping);
            Some(outbox)
        }
        Err(err) => {
            link.set(Link::Closed(err));
            None
        }
    };
    let outbox = StoredValue::new_local(outbox);
    let authenticate = move |session: &Session| {
        auth.set(Auth::Pending);
        outbox.with_value(|outbox| {
            if let Some(outbox) = outbox {
                outbox.send(ClientMessage::Auth {
                    user_id: Some(session.user_id.clone()),
                    token: session.token.clone(),
                });
            }
        });
    };
    if let Some(remembered) = session::load() {
        authenticate(&remembered);
    }
    let sign_out = move |_| {
        session::clear();
        // A fresh page drops the socket's identity with it.
        if let Some(window) = web_sys::window() {
            let _ = window.location().reload();
        }
    };

    view! {
        <main class="shell">
            <header class="topbar">
                <h1 class="brand">"Confab"</h1>
                {move || match auth.get() {
                    Auth::SignedIn { username } => view! {
                        <div class="user-chip">
                            <span>"Signed in as "<strong data-testid="signed-in-as">{username}</strong></span>
                            <button type="button" class="secondary" on:click=sign_out>"Sign out"</button>
                        </div>
                    }.into_any(),
                    _ => ().into_any(),
                }}
            </header>
            <section class="card" aria-live="polite">
                {move || match link.get() {
                    Link::Connecting => view! { <p class="status">"Connecting…"</p> }.into_any(),
                    Link::Connected { room_state } => view! {
                        <p class="status ok">"Connected. Room state: "<strong data-testid="room-state">{room_state}</strong></p>
                    }.into_any(),
                    Link::Closed(reason) => view! { <p class="status error" role="alert">{reason}</p> }.into_any(),
                }}
            </section>
            {move || match auth.get() {
                Auth::SignedOut | Auth::Refused(_) => view! {
                    <SignIn refused=move || match auth.get() { Auth::Refused(why) => Some(why), _ => None }
                        on_signed_in=move |session: Session| authenticate(&session) />
                }.into_any(),
                Auth::Pending => view! { <p class="status">"Signing in…"</p> }.into_any(),
                Auth::SignedIn { .. } => ().into_any(),
            }}
        </main>
    }
}

/// The sign-in form: a display name and an optional avatar URL, for a guest token.
#[component]
fn SignIn(
    refused: impl Fn() -> Option<String> + Send + Sync + 'static,
    on_signed_in: impl Fn(Session) + Copy + 'static,
) -> impl IntoView {
    let name = NodeRef::<html::Input>::new();
    let avatar = NodeRef::<html::Input>::new();
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let username = name.get().map(|input| input.value()).unwrap_or_default();
        let image_url = avatar.get().map(|input| input.value()).unwrap_or_default();
        busy.set(true);
        leptos::task::spawn_local(async move {
            let image_url = Some(image_url.trim()).filter(|url| !url.is_empty());
            match api::guest_sign_in(&username, image_url).await {
                Ok(granted) => {
                    let session = Session {
                        token: granted.token,
                        user_id: granted.user_id,
                        username: username.trim().to_owned(),
                        image_url: image_url.unwrap_or_default().to_owned(),
                        exp: granted.exp,
                    };
                    session::save(&session);
                    error.set(None);
                    on_signed_in(session);
                }
                Err(err) => error.set(Some(err)),
            }
            busy.set(false);
        });
    };
    view! {
        <form class="card sign-in" on:submit=submit>
            <h2>"Sign in"</h2>
            {move || refused().map(|why| view! {
                <p class="status error" role="alert">"Please sign in again ("{why}")."</p>
            })}
            <label for="display-name">"Display name"</label>
            <input id="display-name" name="display-name" node_ref=name required
                maxlength=MAX_USERNAME_CHARS.to_string() autocomplete="nickname" />
            <label for="avatar-url">"Avatar URL (optional)"</label>
            <input id="avatar-url" name="avatar-url" type="url" node_ref=avatar placeholder="https://…" />
            {move || error.get().map(|err| view! { <p class="status error" role="alert" data-testid="sign-in-error">{err}</p> })}
            <button type="submit" disabled=move || busy.get()>"Sign in"</button>
        </form>
    }
}
