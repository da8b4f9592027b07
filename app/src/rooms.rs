//! The rooms the person is a member of, as a sidebar shows them: each with its name, its
//! newest message and an unread count. The server keeps the read positions, so every
//! device shows the same counts; the list is fetched on every sign-in and kept current from
//! the messages the connection receives in between, and from what the server says the
//! person read on another device.

use std::collections::HashMap;

use confab_shared::native::{ClientMessage, RoomSummary, ServerMessage};
use leptos::prelude::*;

use crate::{link::Link, route::Route};

/// The most an unread badge shows; past it, "99+".
const MAX_BADGE: u64 = 99;

#[derive(Clone, Copy)]
pub struct MyRooms {
    pub list: RwSignal<Vec<RoomSummary>>,
    link: Link,
    /// The signed-in user, whose own messages are never unread.
    me: StoredValue<String>,
    /// The room on the screen, whose messages are read as they arrive.
    open: StoredValue<Option<String>>,
    /// Where the person left each room's message list scrolled (none: at the newest).
    scrolled: StoredValue<HashMap<String, i32>>,
}

impl MyRooms {
    pub fn new(link: Link) -> Self {
        let rooms = Self {
            list: RwSignal::new(Vec::new()),
            link,
            me: StoredValue::new(String::new()),
            open: StoredValue::new(None),
            scrolled: StoredValue::new(HashMap::new()),
        };
        link.listen(move |message| rooms.on_message(message));
        rooms
    }

    fn on_message(self, message: &ServerMessage) {
        match message {
            ServerMessage::AuthOk { user_id, .. } => {
                self.me.set_value(user_id.clone());
                self.link.send(ClientMessage::RoomsList);
            }
            ServerMessage::RoomsList { rooms } => self.list.set(rooms.clone()),
            // A room joined or created here appears at once (asking the server would cost a
            // request of the connection's rate limit).
            ServerMessage::RoomJoined { room, .. } | ServerMessage::RoomCreated { room } => {
                self.list.update(|all| {
                    if !all.iter().any(|r| r.code == room.code) {
                        all.insert(
                            0,
                            RoomSummary {
                                code: room.code.clone(),
                                name: room.name.clone(),
                                last_seq: room.last_seq,
                                unread: 0,
                                last_message: None,
                            },
                        );
                    }
                });
            }
            ServerMessage::RoomChat(chat) => {
                let unread = self
                    .open
                    .with_value(|open| open.as_deref() != Some(&chat.code))
                    && self.me.with_value(|me| *me != chat.from);
                self.list.update(|all| {
                    if let Some(i) = all.iter().position(|r| r.code == chat.code) {
                        let mut room = all.remove(i);
                        room.last_seq = room.last_seq.max(chat.seq);
                        room.unread += u64::from(unread);
                        room.last_message = Some(chat.clone());
                        // The most recently active first.
                        all.insert(0, room);
                    }
                });
            }
            // Read on another device (or this one): the count follows.
            ServerMessage::RoomRead { code, seq } => self.list.update(|all| {
                if let Some(room) = all.iter_mut().find(|r| r.code == *code) {
                    room.unread = room.unread.min(room.last_seq.saturating_sub(*seq));
                }
            }),
            ServerMessage::RoomLeft { code } | ServerMessage::RoomClosed { code } => {
                self.forget(code);
            }
            ServerMessage::RoomUserLeft {
                code,
                user_id,
                removed: true,
            } if self.me.with_value(|me| me == user_id) => self.forget(code),
            _ => {}
        }
    }

    fn forget(self, code: &str) {
        self.list.update(|all| all.retain(|r| r.code != code));
    }

    /// Room `code` is on the screen (or, with `None`, no room is).
    pub fn set_open(self, code: Option<String>) {
        self.open.set_value(code);
    }

    /// Where room `code`'s list is scrolled: `None` when at the newest message.
    pub fn remember_scroll(self, code: &str, top: Option<i32>) {
        self.scrolled.update_value(|all| match top {
            Some(top) => {
                all.insert(code.to_owned(), top);
            }
            None => {
                all.remove(code);
            }
        });
    }

    /// Where the person left room `code`'s list, unless at the newest message.
    pub fn scroll_of(self, code: &str) -> Option<i32> {
        self.scrolled.with_value(|all| all.get(code).copied())
    }

    /// The person has seen room `code` up to `seq`: the server keeps it for every device.
    pub fn read(self, code: &str, seq: u64) {
        self.list.update(|all| {
            if let Some(room) = all.iter_mut().find(|r| r.code == code) {
                room.unread = 0;
            }
        });
        self.link.send(ClientMessage::RoomRead {
            code: code.to_owned(),
            seq,
        });
    }
}

/// "3", or "99+".
pub fn badge(unread: u64) -> String {
    if unread > MAX_BADGE {
        format!("{MAX_BADGE}+")
    } else {
        unread.to_string()
    }
}

/// The rooms list: a link to each room, the current one marked.
#[component]
pub fn RoomsList(rooms: MyRooms, current: Option<String>) -> impl IntoView {
    let current = StoredValue::new(current);
    view! {
        <section class="card rooms" aria-label="Your rooms">
            <h2>"Your rooms"</h2>
            <Show when=move || rooms.list.with(|all| !all.is_empty())
                fallback=|| view! { <p class="status">"Rooms you join show here."</p> }>
                <ul data-testid="rooms">
                    <For each=move || rooms.list.get() key=|r| (r.code.clone(), r.unread, r.last_seq) let:r>
                        <li class:current=current.with_value(|c| c.as_deref() == Some(&r.code))
                            class:unread={r.unread > 0} data-code=r.code.clone()>
                            <a href=Route::Room(r.code.clone()).href()>
                                <span class="room-name">
                                    {if r.name.is_empty() { r.code.clone() } else { r.name.clone() }}
                                </span>
                                {(r.unread > 0).then(|| view! {
                                    <span class="count" data-testid="unread"
                                        aria-label=format!("{} unread", r.unread)>{badge(r.unread)}</span>
                                })}
                                <span class="last-message">
                                    {r.last_message.as_ref().map(|m| format!("{}: {}", m.username, m.message))
                                        .unwrap_or_else(|| "No messages yet".into())}
                                </span>
                            </a>
                        </li>
                    </For>
                </ul>
            </Show>
        </section>
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn badges_stop_at_99_plus() {
        assert_eq!(super::badge(1), "1");
        assert_eq!(super::badge(99), "99");
        assert_eq!(super::badge(100), "99+");
    }
}
