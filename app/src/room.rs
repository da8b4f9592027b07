//! A room: its history and live chat, who is typing, the members, and the game start.
//!
//! Messages are kept by `seq`, so whatever arrives twice (history after a reconnect, a
//! broadcast that raced it) is shown once, in order. After every reconnect the view joins
//! again and asks for everything after the last `seq` it has. Scrolling to the top asks
//! for the page before the oldest one shown; `timeline.rs` lays the messages out.

use std::collections::BTreeMap;

use confab_shared::{
    limits::{HISTORY_LEN, MAX_CHAT_CHARS, TYPING_TTL_MS},
    native::{ChatMessage, ClientMessage, Room, RoomPhase, RoomUser, ServerMessage},
};
use leptos::{ev, html, prelude::*};

use crate::{
    account::Account,
    link::Link,
    rooms::MyRooms,
    route::Route,
    timeline::{lines, local_time, today, TimelineLine},
};

/// Typing notices are sent at most this often while the person keeps typing.
const TYPING_RESEND_MS: f64 = 2000.0;
/// The indicator stops this long after the last keystroke.
const TYPING_IDLE_MS: u32 = 3000;
/// Within this many pixels of the bottom, new messages scroll into view.
const FOLLOW_SLACK_PX: i32 = 80;
/// Within this many pixels of the top, the page of older messages is asked for.
const OLDER_SLACK_PX: i32 = 40;
/// Read positions go to the server at most this often while messages keep arriving.
const READ_EVERY_MS: u64 = 1000;

/// Someone else who is typing, until `until` (ms since the epoch).
#[derive(Clone, Debug, PartialEq)]
struct Typist {
    username: String,
    until: f64,
}

/// A message this person sent that the room has not shown back yet: "Sending…" until the
/// server broadcasts it (the outbox holds it while the connection is down), "Not sent" with
/// a retry when the room refused what was sent.
#[derive(Clone, Debug, PartialEq)]
struct Outgoing {
    id: u64,
    text: String,
    failed: bool,
}

#[component]
pub fn RoomView(
    code: String,
    link: Link,
    me: Account,
    rooms: MyRooms,
    on_leave: Callback<()>,
) -> impl IntoView {
    let messages = RwSignal::new(BTreeMap::<u64, ChatMessage>::new());
    let members = RwSignal::new(Vec::<RoomUser>::new());
    let room = RwSignal::new(None::<Room>);
    let error = RwSignal::new(None::<String>);
    // A moderator removed the user or closed the room: no joining again on a reconnect.
    let ended = RwSignal::new(false);
    // On a phone the members are a drawer, open or not.
    let members_open = RwSignal::new(false);
    let typists = RwSignal::new(BTreeMap::<String, Typist>::new());
    let draft = RwSignal::new(String::new());
    let outgoing = RwSignal::new(Vec::<Outgoing>::new());
    let next_outgoing = StoredValue::new(0u64);
    let list_ref = NodeRef::<html::Ol>::new();
    let code = StoredValue::new(code);

    // Join on every (re)open, then ask for anything missed while away.
    Effect::new(move |_| {
        link.opened.track();
        if ended.get_untracked() {
            return;
        }
        let code = code.get_value();
        link.send(ClientMessage::RoomJoin { code: code.clone() });
        let after_seq = messages.with_untracked(|m| m.keys().next_back().copied().unwrap_or(0));
        if after_seq > 0 {
            link.send(ClientMessage::RoomHistory {
                code,
                after_seq: Some(after_seq),
                before_seq: None,
            });
        }
    });

    // Whether the room has messages older than those shown, and whether they are on the way.
    let has_older = RwSignal::new(false);
    let loading_older = RwSignal::new(false);
    // Messages arrived while the person was reading further up.
    let unseen = RwSignal::new(false);
    let at_bottom = move || {
        list_ref.get_untracked().is_none_or(|list| {
            list.scroll_height() - list.scroll_top() - list.client_height() < FOLLOW_SLACK_PX
        })
    };
    let to_bottom = move || {
        request_animation_frame(move || {
            if let Some(list) = list_ref.get_untracked() {
                list.set_scroll_top(list.scroll_height());
            }
        });
    };
    // What the person has seen (the list at its bottom) is marked read, at most once a
    // second: the server keeps it, so their other devices show the same unread counts.
    rooms.set_open(Some(code.get_value()));
    let last_read = StoredValue::new(0u64);
    let read_pending = StoredValue::new(false);
    let mark_read = move || {
        if read_pending.try_get_value() != Some(false) {
            return;
        }
        read_pending.set_value(true);
        set_timeout(
            move || {
                // The view may be gone by now.
                let (Some(code), Some(read)) = (code.try_get_value(), last_read.try_get_value())
                else {
                    return;
                };
                read_pending.set_value(false);
                let newest = messages.with_untracked(|all| all.keys().next_back().copied());
                if let Some(newest) = newest.filter(|newest| *newest > read) {
                    if at_bottom() {
                        last_read.set_value(newest);
                        rooms.read(&code, newest);
                    }
                }
            },
            std::time::Duration::from_millis(READ_EVERY_MS),
        );
    };
    on_cleanup(move || rooms.set_open(None));
    let add = move |incoming: Vec<ChatMessage>, live: bool| {
        let follow = at_bottom();
        let first_load = messages.with_untracked(BTreeMap::is_empty);
        messages.update(|all| {
            for message in incoming {
                all.insert(message.seq, message);
            }
        });
        if first_load {
            has_older
                .set(messages.with_untracked(|all| all.keys().next().is_some_and(|seq| *seq > 1)));
            // Back in a room left scrolled up: the list opens where it was.
            if let Some(top) = rooms.scroll_of(&code.get_value()) {
                request_animation_frame(move || {
                    if let Some(list) = list_ref.get_untracked() {
                        list.set_scroll_top(top);
                    }
                });
                return;
            }
        }
        if follow {
            to_bottom();
            mark_read();
        } else if live {
            unseen.set(true);
        }
    };
    // An older page goes above what is shown, which stays where it was on the screen.
    let add_older = move |older: Vec<ChatMessage>| {
        loading_older.set(false);
        has_older.set(older.len() >= HISTORY_LEN);
        let height_before = list_ref
            .get_untracked()
            .map_or(0, |list| list.scroll_height());
        messages.update(|all| {
            for message in older {
                all.insert(message.seq, message);
            }
        });
        request_animation_frame(move || {
            if let Some(list) = list_ref.get_untracked() {
                list.set_scroll_top(list.scroll_top() + list.scroll_height() - height_before);
            }
        });
    };
    let on_scroll = move |_| {
        let bottom = at_bottom();
        let top = list_ref.get_untracked().map(|list| list.scroll_top());
        rooms.remember_scroll(&code.get_value(), top.filter(|_| !bottom));
        if bottom {
            unseen.set(false);
            mark_read();
        }
        let near_top = list_ref
            .get_untracked()
            .is_some_and(|list| list.scroll_top() < OLDER_SLACK_PX);
        if near_top && has_older.get_untracked() && !loading_older.get_untracked() {
            if let Some(oldest) = messages.with_untracked(|all| all.keys().next().copied()) {
                loading_older.set(true);
                link.send(ClientMessage::RoomHistory {
                    code: code.get_value(),
                    after_seq: None,
                    before_seq: Some(oldest),
                });
            }
        }
    };
    let jump_to_new = move |_| {
        unseen.set(false);
        to_bottom();
    };
    let timeline = Memo::new(move |_| messages.with(|all| lines(all, local_time, today())));
    let my_id = StoredValue::new(me.user_id);
    link.listen(move |message| {
        let ours = |c: &str| c == code.get_value();
        match message {
            ServerMessage::RoomJoined { room: r, users } if ours(&r.code) => {
                room.set(Some(r.clone()));
                members.set(users.clone());
                error.set(None);
            }
            ServerMessage::RoomHistory {
                code,
                messages: m,
                before_seq: Some(_),
            } if ours(code) => add_older(m.clone()),
            ServerMessage::RoomHistory {
                code, messages: m, ..
            } if ours(code) => add(m.clone(), false),
            ServerMessage::RoomChat(m) if ours(&m.code) => {
                typists.update(|t| {
                    t.remove(&m.from);
                });
                if m.from == my_id.get_value() {
                    outgoing.update(|all| {
                        if let Some(i) = all.iter().position(|o| o.text.trim() == m.message.trim())
                        {
                            all.remove(i);
                        }
                    });
                }
                add(vec![m.clone()], true);
            }
            ServerMessage::RoomUserJoined { code, user } if ours(code) => members.update(|all| {
                all.retain(|u| u.user_id != user.user_id);
                all.push(user.clone());
            }),
            ServerMessage::RoomUserLeft {
                code,
                user_id,
                removed,
            } if ours(code) => {
                if *removed && *user_id == my_id.get_value() {
                    room.set(None);
                    ended.set(true);
                    error.set(Some("A moderator removed you from this room.".into()));
                }
                members.update(|all| all.retain(|u| &u.user_id != user_id));
            }
            ServerMessage::RoomDeleted { code, seq, .. } if ours(code) => messages.update(|all| {
                all.remove(seq);
            }),
            ServerMessage::RoomClosed { code } if ours(code) => {
                room.set(None);
                ended.set(true);
                error.set(Some("A moderator closed this room.".into()));
            }
            ServerMessage::RoomTyping {
                code,
                user_id,
                username,
                typing,
            } if ours(code) && *user_id != my_id.get_value() => typists.update(|t| {
                if *typing {
                    let until = js_sys::Date::now() + TYPING_TTL_MS as f64;
                    t.insert(
                        user_id.clone(),
                        Typist {
                            username: username.clone(),
                            until,
                        },
                    );
                } else {
                    t.remove(user_id);
                }
            }),
            ServerMessage::RoomStarted { room: r } if ours(&r.code) => room.set(Some(r.clone())),
            // A chat message over the rate limit is refused with a plain `error`.
            ServerMessage::RoomError {
                error: e,
                code: None,
            }
            | ServerMessage::Error { error: e }
                if outgoing.with_untracked(|all| all.iter().any(|o| !o.failed)) =>
            {
                error.set(Some(e.clone()));
                outgoing.update(|all| {
                    if let Some(o) = all.iter_mut().find(|o| !o.failed) {
                        o.failed = true;
                    }
                });
            }
            // A room that ended (closed, or the user removed) keeps the reason it ended with:
            // an answer to something the app sent just before, "not a member of this
            // room", says less.
            ServerMessage::RoomError { error: e, code: c }
                if c.as_deref().is_none_or(ours) && !ended.get_untracked() =>
            {
                error.set(Some(e.clone()));
                // Answers come in the order sent: the oldest message still sending is the
                // one refused, when one is.
                outgoing.update(|all| {
                    if let Some(o) = all.iter_mut().find(|o| !o.failed) {
                        o.failed = true;
                    }
                });
            }
            _ => {}
        }
    });

    // Indicators that were never stopped go after the typing TTL.
    let sweeper = set_interval_with_handle(
        move || {
            let now = js_sys::Date::now();
            if typists.with_untracked(|t| t.values().any(|typist| typist.until <= now)) {
                typists.update(|t| t.retain(|_, typist| typist.until > now));
            }
        },
        std::time::Duration::from_millis(500),
    )
    .ok();
    on_cleanup(move || {
        if let Some(handle) = sweeper {
            handle.clear();
        }
    });

    // Typing notices: throttled while typing, stopped after a pause or on send.
    let last_typing_sent = StoredValue::new(0.0f64);
    let idle_timer = StoredValue::new_local(None::<TimeoutHandle>);
    let stop_typing = move || {
        // Also run by the idle timer, which must find the view gone without failing.
        let (Some(sent), Some(code)) = (last_typing_sent.try_get_value(), code.try_get_value())
        else {
            return;
        };
        if sent > 0.0 {
            last_typing_sent.set_value(0.0);
            link.send(ClientMessage::RoomTyping {
                code,
                typing: false,
            });
        }
    };
    on_cleanup(move || {
        if let Some(Some(handle)) = idle_timer.try_get_value() {
            handle.clear();
        }
    });
    let on_input = move |ev: ev::Event| {
        draft.set(event_target_value(&ev));
        let now = js_sys::Date::now();
        if now - last_typing_sent.get_value() > TYPING_RESEND_MS {
            last_typing_sent.set_value(now);
            link.send(ClientMessage::RoomTyping {
                code: code.get_value(),
                typing: true,
            });
        }
        if let Some(handle) = idle_timer.get_value() {
            handle.clear();
        }
        idle_timer.set_value(
            set_timeout_with_handle(
                stop_typing,
                std::time::Duration::from_millis(TYPING_IDLE_MS.into()),
            )
            .ok(),
        );
    };
    let send = move || {
        let text = draft.get_untracked();
        if text.trim().is_empty() || text.chars().count() > MAX_CHAT_CHARS {
            return;
        }
        link.send(ClientMessage::RoomChat {
            code: code.get_value(),
            message: text.clone(),
        });
        let id = next_outgoing.get_value();
        next_outgoing.set_value(id + 1);
        outgoing.update(|all| {
            all.push(Outgoing {
                id,
                text,
                failed: false,
            });
        });
        draft.set(String::new());
        stop_typing();
    };
    let retry = move |id: u64| {
        let Some(text) =
            outgoing.with_untracked(|all| all.iter().find(|o| o.id == id).map(|o| o.text.clone()))
        else {
            return;
        };
        outgoing.update(|all| {
            if let Some(o) = all.iter_mut().find(|o| o.id == id) {
                o.failed = false;
            }
        });
        error.set(None);
        link.send(ClientMessage::RoomChat {
            code: code.get_value(),
            message: text,
        });
    };
    let on_keydown = move |ev: ev::KeyboardEvent| {
        if ev.key() == "Enter" && !ev.shift_key() {
            ev.prevent_default();
            send();
        }
    };
    let on_submit = move |ev: ev::SubmitEvent| {
        ev.prevent_default();
        send();
    };
    let leave = move |_| {
        link.send(ClientMessage::RoomLeave {
            code: code.get_value(),
        });
        on_leave.run(());
    };
    let start = move |_| {
        link.send(ClientMessage::RoomStart {
            code: code.get_value(),
            game_state: serde_json::json!({"round": 1}),
        });
    };
    let share_url = move || Route::Room(code.get_value()).url().unwrap_or_default();

    // A join the server refused (no such room, full, a bad code), or a room a moderator
    // took away, leaves nothing to show but why, and the way back.
    let unavailable = move || room.with(Option::is_none) && error.with(Option::is_some);
    let back = move |_| on_leave.run(());
    let refused = move || {
        view! {
            <section class="card room-unavailable" aria-label="Room not available" data-testid="room-unavailable">
                <h2>"Room "<code>{code.get_value()}</code>
                    {move || if ended.get() { " is no longer open to you" } else { " cannot be opened" }}</h2>
                <p class="status error" role="alert">{move || error.get().unwrap_or_default()}</p>
                <Show when=move || !ended.get()>
                    <p>"Check the code or the link you were given."</p>
                </Show>
                <button type="button" on:click=back>"Back to the lobby"</button>
            </section>
        }
    };

    view! {
        <Show when=move || !unavailable() fallback=refused>
        <section class="room" aria-label="Room">
            <header class="room-head">
                <h2>
                    {move || room.with(|r| r.as_ref().map(|r| r.name.clone()).filter(|name| !name.is_empty()))
                        .map(|name| view! { <span class="room-title" data-testid="room-name">{name}" "</span> })}
                    <span class="room-word">"Room "</span><code data-testid="room-code">{code.get_value()}</code>
                </h2>
                <p class="share">"Share: "<a data-testid="share-link" href=share_url>{share_url}</a></p>
                <div class="room-actions">
                    {move || room.get().map(|r| match r.state {
                        RoomPhase::Lobby => view! {
                            <button type="button" class="secondary" on:click=start>"Start game"</button>
                        }.into_any(),
                        RoomPhase::Playing => view! {
                            <p class="status ok" data-testid="game-state">{game_line(&r.game_state)}</p>
                        }.into_any(),
                    })}
                    <button type="button" class="secondary phone-only" data-testid="members-toggle"
                        aria-expanded=move || members_open.get().to_string()
                        on:click=move |_| members_open.update(|open| *open = !*open)>
                        {move || format!("Members ({})", members.with(Vec::len))}
                    </button>
                    <button type="button" class="secondary" on:click=leave>"Leave"</button>
                </div>
            </header>
            {move || error.get().map(|e| view! { <p class="status error" role="alert" data-testid="room-error">{e}</p> })}
            <div class="room-body">
                <div class="messages-wrap">
                <ol class="messages" node_ref=list_ref aria-live="polite" data-testid="messages" on:scroll=on_scroll>
                    <Show when=move || loading_older.get()>
                        <li class="loading-older" data-testid="loading-older">"Loading earlier messages…"</li>
                    </Show>
                    <For each=move || timeline.get() key=|line| line.key() let:line>
                        <TimelineLine own=matches!(&line, crate::timeline::Line::Message { message, .. } if message.from == my_id.get_value()) line=line />
                    </For>
                    <For each=move || outgoing.get() key=|o| (o.id, o.failed) let:o>
                        <li class="message own pending" data-testid="pending">
                            <div>
                                <p class="meta"><strong>"You"</strong>" "
                                    <span class="pending-state">{if o.failed { "Not sent" } else { "Sending…" }}</span>
                                    {o.failed.then(|| view! {
                                        <button type="button" class="secondary retry" on:click=move |_| retry(o.id)>"Retry"</button>
                                    })}
                                </p>
                                <p class="text">{o.text.clone()}</p>
                            </div>
                        </li>
                    </For>
                </ol>
                <Show when=move || unseen.get()>
                    <button type="button" class="new-messages" data-testid="new-messages" on:click=jump_to_new>"New messages ↓"</button>
                </Show>
                </div>
                <aside class="members" class:open=move || members_open.get() aria-label="Members">
                    <h3>"Members"
                        <button type="button" class="secondary small phone-only" aria-label="Close members"
                            on:click=move |_| members_open.set(false)>"×"</button>
                    </h3>
                    <p class="share phone-share phone-only">"Share: "<a href=share_url>{share_url}</a></p>
                    <ul data-testid="members">
                        <For each=move || members.get() key=|u| u.user_id.clone() let:u>
                            <li><Avatar url=u.image_url.clone() name=u.username.clone() />{u.username.clone()}</li>
                        </For>
                    </ul>
                </aside>
            </div>
            <p class="typing" data-testid="typing" aria-live="polite">
                {move || typing_line(typists.with(|t| t.values().map(|t| t.username.clone()).collect()))}
            </p>
            <form class="composer" on:submit=on_submit>
                <label for="message" class="visually-hidden">"Message"</label>
                <textarea id="message" rows="2" placeholder="Write a message (Enter sends)"
                    maxlength=MAX_CHAT_CHARS.to_string()
                    prop:value=move || draft.get() on:input=on_input on:keydown=on_keydown />
                <span class="counter" data-testid="counter">
                    {move || format!("{}/{MAX_CHAT_CHARS}", draft.with(|d| d.chars().count()))}
                </span>
                <button type="submit" disabled=move || draft.with(|d| d.trim().is_empty())>"Send"</button>
            </form>
        </section>
        </Show>
    }
}

/// The game as people read it: "Game started", then the state's fields as `name: value`
/// ("Game started · round: 1"), never raw JSON.
pub fn game_line(state: &serde_json::Value) -> String {
    use serde_json::Value;
    let text = |value: &Value| match value {
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        other => other.to_string(),
    };
    let details = match state {
        Value::Null => String::new(),
        Value::Object(fields) => fields
            .iter()
            .map(|(name, value)| format!("{name}: {}", text(value)))
            .collect::<Vec<_>>()
            .join(", "),
        other => text(other),
    };
    if details.is_empty() {
        "Game started".into()
    } else {
        format!("Game started · {details}")
    }
}

/// "Ana is typing…", "Ana and Ben are typing…", "Ana, Ben and 2 others are typing…".
pub fn typing_line(mut names: Vec<String>) -> String {
    names.sort();
    match names.as_slice() {
        [] => String::new(),
        [one] => format!("{one} is typing…"),
        [a, b] => format!("{a} and {b} are typing…"),
        [a, b, rest @ ..] => format!("{a}, {b} and {} others are typing…", rest.len()),
    }
}

#[component]
pub fn Avatar(url: String, name: String) -> impl IntoView {
    let initial = name
        .chars()
        .next()
        .unwrap_or('?')
        .to_uppercase()
        .to_string();
    if url.is_empty() {
        view! { <span class="avatar" aria-hidden="true">{initial}</span> }.into_any()
    } else {
        view! { <img class="avatar" src=url alt="" /> }.into_any()
    }
}

#[cfg(test)]
mod tests {
    use super::{game_line, typing_line};

    #[test]
    fn a_game_state_reads_as_words_not_json() {
        use serde_json::json;
        assert_eq!(game_line(&json!(null)), "Game started");
        assert_eq!(game_line(&json!({})), "Game started");
        assert_eq!(game_line(&json!({"round": 1})), "Game started · round: 1");
        assert_eq!(
            game_line(&json!({"map": "docks", "round": 2})),
            "Game started · map: docks, round: 2"
        );
        assert_eq!(game_line(&json!("warm-up")), "Game started · warm-up");
    }

    #[test]
    fn typing_lines_name_one_two_or_a_few() {
        let names = |list: &[&str]| list.iter().map(|n| (*n).to_owned()).collect();
        assert_eq!(typing_line(names(&[])), "");
        assert_eq!(typing_line(names(&["Ana"])), "Ana is typing…");
        assert_eq!(
            typing_line(names(&["Ben", "Ana"])),
            "Ana and Ben are typing…"
        );
        assert_eq!(
            typing_line(names(&["Dan", "Ana", "Cy", "Ben"])),
            "Ana, Ben and 2 others are typing…"
        );
    }
}
