//! The lobby: create a room, join one by code, and see who is online (and ping them).

use confab_shared::{
    channels::OnlineUser,
    limits::{DEFAULT_MAX_USERS, MAX_ROOM_NAME_CHARS, MAX_USERS_CAP, ROOM_CODE_LEN},
    native::{ClientMessage, ServerMessage},
};
use leptos::{ev::SubmitEvent, html, prelude::*};

use crate::{
    account::Account,
    api,
    link::Link,
    room::Avatar,
    rooms::{MyRooms, RoomsList},
    route::Route,
};

#[component]
pub fn Lobby(
    link: Link,
    me: Account,
    online: RwSignal<Vec<OnlineUser>>,
    rooms: MyRooms,
    on_enter: Callback<String>,
    on_enter_party: Callback<String>,
) -> impl IntoView {
    let room_name = NodeRef::<html::Input>::new();
    let room_type = NodeRef::<html::Input>::new();
    let max_users = NodeRef::<html::Input>::new();
    let join_code = NodeRef::<html::Input>::new();
    let error = RwSignal::new(None::<String>);
    let creating = RwSignal::new(false);

    link.listen(move |message| match message {
        ServerMessage::RoomCreated { room } if creating.get_untracked() => {
            creating.set(false);
            on_enter.run(room.code.clone());
        }
        ServerMessage::RoomError { error: e, .. } | ServerMessage::Error { error: e }
            if creating.get_untracked() =>
        {
            creating.set(false);
            error.set(Some(e.clone()));
        }
        _ => {}
    });

    let create = move |ev: SubmitEvent| {
        ev.prevent_default();
        let room_type = room_type.get().map(|i| i.value()).unwrap_or_default();
        let max_users = max_users
            .get()
            .and_then(|i| i.value().parse::<u32>().ok())
            .unwrap_or(DEFAULT_MAX_USERS);
        error.set(None);
        creating.set(true);
        let name = room_name
            .get()
            .map(|i| i.value().trim().to_owned())
            .filter(|name| !name.is_empty());
        link.send(ClientMessage::RoomCreate {
            room_type,
            max_users: Some(max_users),
            name,
        });
    };
    let join = move |ev: SubmitEvent| {
        ev.prevent_default();
        let code = join_code
            .get()
            .map(|i| i.value().trim().to_uppercase())
            .unwrap_or_default();
        if !code.is_empty() {
            on_enter.run(code);
        }
    };

    view! {
        <div class="lobby">
            <section class="card">
                <h2>"Create a room"</h2>
                <form class="stack" on:submit=create data-testid="create-room">
                    <label for="room-name">"Name (optional)"</label>
                    <input id="room-name" node_ref=room_name maxlength=MAX_ROOM_NAME_CHARS.to_string()
                        placeholder="Book club" />
                    <label for="room-type">"Room type"</label>
                    <input id="room-type" node_ref=room_type value="chat" required maxlength="32" />
                    <label for="max-users">"Max users"</label>
                    <input id="max-users" node_ref=max_users type="number" min="1"
                        max=MAX_USERS_CAP.to_string() value=DEFAULT_MAX_USERS.to_string() />
                    <button type="submit" disabled=move || creating.get()>"Create room"</button>
                </form>
                {move || error.get().map(|e| view! { <p class="status error" role="alert">{e}</p> })}
            </section>
            <section class="card">
                <h2>"Join by code"</h2>
                <form class="stack" on:submit=join>
                    <label for="join-code">"Room code"</label>
                    <input id="join-code" node_ref=join_code required
                        maxlength=ROOM_CODE_LEN.to_string() autocapitalize="characters" />
                    <button type="submit">"Join"</button>
                </form>
            </section>
            <RoomsList rooms=rooms current=None />
            <crate::party::PartyCard me=me.clone() on_enter=on_enter_party />
            <OnlineList me=me online=online />
        </div>
    }
}

#[component]
pub fn OnlineList(me: Account, online: RwSignal<Vec<OnlineUser>>) -> impl IntoView {
    let notice = RwSignal::new(None::<String>);
    let token = StoredValue::new(me.token.clone());
    let my_id = StoredValue::new(me.user_id.clone());
    let ping = move |username: String| {
        leptos::task::spawn_local(async move {
            let join_url = match Route::current() {
                room @ Route::Room(_) => room.url(),
                Route::Lobby | Route::Party(_) => None,
            };
            let outcome = api::ping(&token.get_value(), &username, join_url).await;
            notice.set(Some(match outcome {
                Ok(()) => format!("Pinged {username}."),
                Err(err) => err,
            }));
        });
    };
    view! {
        <section class="card online" aria-label="Online users">
            <h2>"Online "<span class="count" data-testid="online-count">{move || online.with(Vec::len)}</span></h2>
            <ul data-testid="online-users">
                <For each=move || online.get() key=|u| u.user_id.clone() let:u>
                    <li>
                        <Avatar url=u.image_url.clone() name=u.username.clone() />
                        <span class="name">{u.username.clone()}</span>
                        {(u.user_id != my_id.get_value()).then(|| {
                            let username = u.username.clone();
                            let label = format!("Ping {}", u.username);
                            view! {
                                <button type="button" class="secondary small" aria-label=label
                                    on:click=move |_| ping(username.clone())>"Ping"</button>
                            }
                        })}
                    </li>
                </For>
            </ul>
            {move || notice.get().map(|n| view! { <p class="status" role="status">{n}</p> })}
        </section>
    }
}
