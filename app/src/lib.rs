//! Confab's browser app: Leptos, client-side rendered, speaking `confab_shared`'s envelope
//! over browser WebSockets.
//!
//! One `/ws` connection ([`link::Link`]) serves every view; the `/qf` channels
//! ([`channels`]) carry the online list and the notifications. Routes live in the URL's
//! hash ([`route::Route`]), so a room link opens that room directly on any static host.

mod account;
mod api;
mod backoff;
mod channels;
mod inbox;
mod link;
mod lobby;
mod party;
mod room;
mod rooms;
mod route;
mod timeline;

use account::Account;
use confab_shared::{
    channels::{ChannelMessage, OnlineUser},
    limits::MAX_USERNAME_CHARS,
    native::{ClientMessage, ServerMessage},
};
use leptos::{ev::SubmitEvent, html, prelude::*};
use link::{Link, LinkState};
use route::Route;
use wasm_bindgen::prelude::wasm_bindgen;

/// How long a toast stays.
const TOAST_MS: u64 = 8000;
/// Toasts shown at once; the oldest goes first.
const MAX_TOASTS: usize = 5;

/// The entry point for both builds (trunk and cargo-leptos).
#[wasm_bindgen(start)]
pub fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

/// Whether the signed-in person's token was accepted.
#[derive(Clone, Debug, PartialEq)]
enum Auth {
    SignedOut,
    Pending,
    SignedIn(Account),
    Refused(String),
}

#[derive(Clone, Debug, PartialEq)]
struct Toast {
    id: u64,
    text: String,
    join_url: Option<String>,
    /// Toasts with the same key (pings from one person) collapse into one, counted.
    key: Option<String>,
    count: u32,
}

#[component]
pub fn App() -> impl IntoView {
    let link = Link::start("/ws");
    let auth = RwSignal::new(Auth::SignedOut);
    let route = RwSignal::new(Route::current());
    let online = RwSignal::new(Vec::<OnlineUser>::new());
    let toasts = RwSignal::new(Vec::<Toast>::new());
    let notifications = inbox::Inbox::new();
    let channels_refused = RwSignal::new(false);

    let _ = window_event_listener(leptos::ev::hashchange, move |_| route.set(Route::current()));

    let next_toast = StoredValue::new(0u64);
    let push_toast = move |text: String, join_url: Option<String>, key: Option<String>| {
        next_toast.update_value(|n| *n += 1);
        let id = next_toast.get_value();
        toasts.update(|all| {
            // A repeat replaces the toast it repeats, counted, and stays its full time.
            let count = key
                .as_ref()
                .and_then(|key| all.iter().position(|t| t.key.as_ref() == Some(key)))
                .map_or(1, |i| all.remove(i).count + 1);
            let text = if count > 1 {
                format!("{text} (×{count})")
            } else {
                text
            };
            all.push(Toast {
                id,
                text,
                join_url,
                key,
                count,
            });
            if all.len() > MAX_TOASTS {
                all.remove(0);
            }
        });
        set_timeout(
            move || toasts.update(|all| all.retain(|t| t.id != id)),
            std::time::Duration::from_millis(TOAST_MS),
        );
    };

    // The running channels' stop signal; replaced on every sign-in.
    let channel_stop = StoredValue::new(None::<RwSignal<bool>>);
    let stop_channels = move || {
        if let Some(stop) = channel_stop.get_value() {
            stop.set(true);
        }
    };
    let start_channels = move |account: Account| {
        stop_channels();
        let stop = RwSignal::new(false);
        channel_stop.set_value(Some(stop));
        channels::follow_online(account.clone(), online, stop, channels_refused);
        channels::follow(
            "/qf/notifications/ws".to_owned(),
            account,
            stop,
            channels_refused,
            move |message| match message {
                ChannelMessage::Notification(n) => {
                    notifications.arrived(&n);
                    let text = if n.phrase_text.is_empty() {
                        n.notification_type
                    } else {
                        n.phrase_text
                    };
                    push_toast(text, None, None);
                }
                ChannelMessage::Ping(ping) => {
                    let key = format!("ping:{}", ping.from_username);
                    let text = format!("{} pinged you", ping.from_username);
                    push_toast(text, ping.join_url, Some(key));
                }
                _ => {}
            },
            async |_: &Account| {},
        );
    };

    let sign_out_locally = move |why: Option<String>| {
        account::clear();
        link.set_hello(None);
        stop_channels();
        online.set(Vec::new());
        notifications.clear();
        auth.set(why.map_or(Auth::SignedOut, Auth::Refused));
    };

    link.listen(move |message| match message {
        ServerMessage::AuthOk { .. } => {
            if let Auth::Pending = auth.get_untracked() {
                if let Some(account) = account::load() {
                    notifications.load(&account);
                    start_channels(account.clone());
                    auth.set(Auth::SignedIn(account));
                }
            }
        }
        // A refused or expired token: ask the person to sign in again; nothing retries it.
        ServerMessage::AuthError { error } => sign_out_locally(Some(error.clone())),
        _ => {}
    });
    Effect::new(move |_| {
        if channels_refused.get() {
            channels_refused.set(false);
            sign_out_locally(Some("your session has expired".into()));
        }
    });

    let authenticate = move |account: &Account| {
        auth.set(Auth::Pending);
        link.set_hello(Some(ClientMessage::Auth {
            user_id: Some(account.user_id.clone()),
            token: account.token.clone(),
        }));
    };
    if let Some(remembered) = account::load() {
        authenticate(&remembered);
    }
    let sign_out = move |_| {
        sign_out_locally(None);
        // A fresh page drops the socket's identity with it.
        if let Some(window) = web_sys::window() {
            let _ = window.location().reload();
        }
    };
    let enter = Callback::new(move |code: String| Route::Room(code).go());
    let enter_party = Callback::new(move |id: String| Route::Party(id).go());
    let leave = Callback::new(move |()| Route::Lobby.go());
    let people_open = RwSignal::new(false);
    let my_rooms = rooms::MyRooms::new(link);
    // Unread notifications and messages, in the tab's title.
    Effect::new(move |_| {
        let rooms: u64 = my_rooms.list.with(|all| all.iter().map(|r| r.unread).sum());
        let total = rooms + notifications.unread() as u64;
        if let Some(document) = web_sys::window().and_then(|w| w.document()) {
            document.set_title(&if total > 0 {
                format!("({total}) Confab")
            } else {
                "Confab".to_owned()
            });
        }
    });

    view! {
        <div class="shell">
            <header class="topbar">
                <h1 class="brand"><a href=Route::Lobby.href()>"Confab"</a></h1>
                <LinkStatus link=link />
                // On a phone the online list beside a room or party is a drawer.
                <Show when=move || !matches!(route.get(), Route::Lobby) && matches!(auth.get(), Auth::SignedIn(_))>
                    <button type="button" class="secondary small phone-only" data-testid="online-toggle"
                        aria-expanded=move || people_open.get().to_string()
                        on:click=move |_| people_open.update(|open| *open = !*open)>
                        {move || format!("Rooms · online ({})", online.with(Vec::len))}
                    </button>
                </Show>
                {move || match auth.get() {
                    Auth::SignedIn(account) => view! {
                        <div class="user-chip">
                            <inbox::Bell inbox=notifications />
                            <room::Avatar url=account.image_url.clone() name=account.username.clone() />
                            <span><span class="signed-in-label">"Signed in as "</span><strong data-testid="signed-in-as">{account.username.clone()}</strong></span>
                            <button type="button" class="secondary" data-testid="sign-out" on:click=sign_out>"Sign out"</button>
                        </div>
                    }.into_any(),
                    _ => ().into_any(),
                }}
            </header>
            <main>
                {move || match auth.get() {
                    Auth::SignedOut | Auth::Refused(_) => view! {
                        <SignIn refused=move || match auth.get() { Auth::Refused(why) => Some(why), _ => None }
                            on_signed_in=move |account: Account| authenticate(&account) />
                    }.into_any(),
                    Auth::Pending => view! { <p class="status">"Signing in…"</p> }.into_any(),
                    Auth::SignedIn(me) => match route.get() {
                        Route::Room(code) => view! {
                            <div class="with-sidebar" class:people-open=move || people_open.get()>
                                <room::RoomView code=code.clone() link=link me=me.clone() rooms=my_rooms on_leave=leave />
                                <div class="side">
                                    <rooms::RoomsList rooms=my_rooms current=Some(code) />
                                    <lobby::OnlineList me=me online=online />
                                </div>
                            </div>
                        }.into_any(),
                        Route::Party(id) => view! {
                            <div class="with-sidebar" class:people-open=move || people_open.get()>
                                <party::PartyView id=id me=me.clone() on_leave=leave />
                                <div class="side">
                                    <rooms::RoomsList rooms=my_rooms current=None />
                                    <lobby::OnlineList me=me online=online />
                                </div>
                            </div>
                        }.into_any(),
                        Route::Lobby => view! {
                            <lobby::Lobby link=link me=me online=online rooms=my_rooms on_enter=enter on_enter_party=enter_party />
                        }.into_any(),
                    },
                }}
            </main>
            <ol class="toasts" aria-live="polite" data-testid="toasts">
                <For each=move || toasts.get() key=|t| t.id let:t>
                    <li class="toast" role="status">
                        <span>{t.text.clone()}</span>
                        {t.join_url.clone().map(|url| view! { <a href=url>" Join"</a> })}
                        <button type="button" class="secondary small" aria-label="Dismiss"
                            on:click=move |_| toasts.update(|all| all.retain(|x| x.id != t.id))>"×"</button>
                    </li>
                </For>
            </ol>
        </div>
    }
}

/// The connection as the person sees it: connected (with the ping latency), reconnecting in
/// N s, or connecting.
#[component]
fn LinkStatus(link: Link) -> impl IntoView {
    view! {
        <p class="link-state" role="status" data-testid="link-state"
            class:ok=move || matches!(link.state.get(), LinkState::Connected { .. })>
            {move || match link.state.get() {
                LinkState::Connecting => "Connecting…".to_owned(),
                LinkState::Connected { latency_ms: Some(ms) } => format!("Connected · {ms} ms"),
                LinkState::Connected { latency_ms: None } => "Connected".to_owned(),
                LinkState::Reconnecting { in_secs } => format!("Reconnecting in {in_secs} s"),
                LinkState::Offline { in_secs } => format!("Offline · retrying in {in_secs} s"),
            }}
        </p>
    }
}

/// The sign-in form: a display name and an optional avatar URL, for a guest token.
#[component]
fn SignIn(
    refused: impl Fn() -> Option<String> + Send + Sync + 'static,
    on_signed_in: impl Fn(Account) + Copy + 'static,
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
                    let account = Account {
                        token: granted.token,
                        user_id: granted.user_id,
                        username: username.trim().to_owned(),
                        image_url: image_url.unwrap_or_default().to_owned(),
                        exp: granted.exp,
                    };
                    account::save(&account);
                    error.set(None);
                    on_signed_in(account);
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
                <p class="status error" role="alert" data-testid="sign-in-again">"Please sign in again ("{why}")."</p>
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
