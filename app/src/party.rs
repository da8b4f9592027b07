//! The party lobby (contract 003's party mode): players and their ready state, the host,
//! the phase and its transitions, and the host's controls. Changes are made over REST and
//! arrive, for everyone, on the session's `/qf/party/{id}/ws` socket.

use confab_shared::channels::{ChannelMessage, PartyPlayer, PartySession};
use leptos::{ev::SubmitEvent, html, prelude::*};
use serde_json::json;

use crate::{account::Account, api, channels};

/// Transitions kept on screen.
const MAX_TRANSITIONS: usize = 20;

/// Creating a party or joining one by code, from the lobby.
#[component]
pub fn PartyCard(me: Account, on_enter: Callback<String>) -> impl IntoView {
    let code = NodeRef::<html::Input>::new();
    let error = RwSignal::new(None::<String>);
    let token = StoredValue::new(me.token);
    let enter = move |path: &'static str, body: serde_json::Value| {
        leptos::task::spawn_local(async move {
            match api::party_post::<PartySession>(&token.get_value(), path, body).await {
                Ok(session) => on_enter.run(session.session_id),
                Err(err) => error.set(Some(err.to_string())),
            }
        });
    };
    let join = move |ev: SubmitEvent| {
        ev.prevent_default();
        let code = code
            .get()
            .map(|i| i.value().trim().to_uppercase())
            .unwrap_or_default();
        enter("/join", json!({ "code": code }));
    };
    view! {
        <section class="card">
            <h2>"Party"</h2>
            <div class="stack">
                <button type="button" data-testid="create-party" on:click=move |_| enter("", json!({}))>
                    "Create a party"
                </button>
                <form class="stack" on:submit=join>
                    <label for="party-code">"Party code"</label>
                    <input id="party-code" node_ref=code required maxlength="6" autocapitalize="characters" />
                    <button type="submit" class="secondary">"Join party"</button>
                </form>
            </div>
            {move || error.get().map(|e| view! { <p class="status error" role="alert">{e}</p> })}
        </section>
    }
}

#[component]
pub fn PartyView(id: String, me: Account, on_leave: Callback<()>) -> impl IntoView {
    let party = RwSignal::new(None::<PartySession>);
    let transitions = RwSignal::new(Vec::<String>::new());
    let progress = RwSignal::new(None::<String>);
    let notice = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let stop = RwSignal::new(false);
    let refused = RwSignal::new(false);
    let token = StoredValue::new(me.token.clone());
    let my_id = StoredValue::new(me.user_id.clone());
    let id = StoredValue::new(id);
    on_cleanup(move || stop.set(true));

    let apply = move |message: ChannelMessage| match message {
        ChannelMessage::SessionUpdate(session) => party.set(Some(session)),
        ChannelMessage::PlayerJoined { player, .. } => party.update(|p| {
            if let Some(p) = p {
                p.players.retain(|x| x.user_id != player.user_id);
                p.players.push(player);
            }
        }),
        ChannelMessage::PlayerLeft {
            user_id, host_id, ..
        } => party.update(|p| {
            if let Some(p) = p {
                p.players.retain(|x| x.user_id != user_id);
                p.host_id = host_id.clone();
                for player in &mut p.players {
                    player.is_host = player.user_id == host_id;
                }
            }
        }),
        ChannelMessage::PlayerReady { user_id, ready, .. } => party.update(|p| {
            if let Some(player) = p
                .iter_mut()
                .flat_map(|p| p.players.iter_mut())
                .find(|x| x.user_id == user_id)
            {
                player.ready = ready;
            }
        }),
        ChannelMessage::PhaseTransition { from, to, .. } => {
            party.update(|p| {
                if let Some(p) = p {
                    p.phase = to.clone();
                }
            });
            transitions.update(|all| {
                all.push(format!("{from} → {to}"));
                if all.len() > MAX_TRANSITIONS {
                    all.remove(0);
                }
            });
        }
        ChannelMessage::ProgressUpdate { progress: p, .. } => progress.set(Some(p.to_string())),
        ChannelMessage::SessionStarted { .. } => {
            notice.set(Some("The session has started.".into()))
        }
        ChannelMessage::SessionCompleted { .. } => {
            notice.set(Some("The session is complete.".into()))
        }
        ChannelMessage::HostPing {
            from_username,
            message,
            ..
        } => notice.set(Some(match message {
            Some(m) => format!("{from_username}: {m}"),
            None => format!("{from_username} is waiting for you"),
        })),
        _ => {}
    };
    channels::follow(
        format!(
            "/qf/party/{}/ws?context=lobby",
            js_sys::encode_uri_component(&id.get_value())
        ),
        me,
        stop,
        refused,
        apply,
        async |_: &Account| {},
    );
    // A refused party socket (not a player, unknown or ended session): say so, don't retry.
    Effect::new(move |_| {
        if refused.get() {
            error.set(Some("You are not in this party (or it has ended).".into()));
        }
    });

    let act = move |path: &'static str, body: serde_json::Value| {
        let path = format!("/{}{path}", id.get_value());
        let token = token.get_value();
        leptos::task::spawn_local(async move {
            let answer = api::party_post::<serde_json::Value>(&token, &path, body).await;
            // Leaving disposes the view before the answer comes.
            let _ = error.try_set(answer.err().map(|err| err.to_string()));
        });
    };
    let mine = move || {
        party.with(|p| {
            p.as_ref().and_then(|p| {
                p.players
                    .iter()
                    .find(|x| x.user_id == my_id.get_value())
                    .cloned()
            })
        })
    };
    let am_host =
        move || party.with(|p| p.as_ref().is_some_and(|p| p.host_id == my_id.get_value()));
    let in_lobby = move || party.with(|p| p.as_ref().is_some_and(|p| p.phase == "lobby"));
    let can_start = move || {
        party.with(|p| {
            p.as_ref().is_some_and(|p| {
                p.players.len() >= p.min_players && p.players.iter().all(|x| x.ready)
            })
        })
    };
    let next_phase = NodeRef::<html::Input>::new();
    let advance = move |ev: SubmitEvent| {
        ev.prevent_default();
        let phase = next_phase.get().map(|i| i.value()).unwrap_or_default();
        act("/phase", json!({ "phase": phase }));
    };
    let leave = move |_| {
        act("/leave", json!({}));
        on_leave.run(());
    };

    view! {
        <section class="card party" aria-label="Party lobby">
            <header class="room-head">
                <h2>"Party "<code data-testid="party-code">{move || party.with(|p| p.as_ref().map(|p| p.code.clone()).unwrap_or_default())}</code></h2>
                <p class="status">"Phase: "<strong data-testid="party-phase">{move || party.with(|p| p.as_ref().map(|p| p.phase.clone()).unwrap_or_default())}</strong></p>
                <button type="button" class="secondary" on:click=leave>"Leave"</button>
            </header>
            {move || error.get().map(|e| view! { <p class="status error" role="alert" data-testid="party-error">{e}</p> })}
            {move || notice.get().map(|n| view! { <p class="status ok" role="status" data-testid="party-notice">{n}</p> })}
            <ul class="players" data-testid="players">
                <For each=move || party.with(|p| p.as_ref().map(|p| p.players.clone()).unwrap_or_default())
                    key=|p: &PartyPlayer| (p.user_id.clone(), p.ready, p.is_host) let:p>
                    <li class:ready=p.ready>
                        <span class="name">{p.username.clone()}</span>
                        {p.is_host.then(|| view! { <span class="badge">"host"</span> })}
                        <span class="ready-state">{if p.ready { "ready" } else { "not ready" }}</span>
                    </li>
                </For>
            </ul>
            <div class="room-actions">
                {move || (in_lobby() && mine().is_some()).then(|| {
                    let ready = mine().is_some_and(|p| p.ready);
                    view! {
                        <button type="button" data-testid="ready-toggle" aria-pressed=ready.to_string()
                            on:click=move |_| act("/ready", json!({ "ready": !ready }))>
                            {if ready { "Not ready" } else { "Ready" }}
                        </button>
                    }
                })}
                {move || (in_lobby() && am_host()).then(|| view! {
                    <button type="button" data-testid="start-party" disabled=move || !can_start()
                        on:click=move |_| act("/start", json!({}))>"Start"</button>
                })}
            </div>
            {move || (!in_lobby() && am_host() && party.with(|p| p.as_ref().is_some_and(|p| p.phase != "completed"))).then(|| view! {
                <form class="host-controls" on:submit=advance>
                    <label for="next-phase">"Next phase"</label>
                    <input id="next-phase" node_ref=next_phase required maxlength="64" />
                    <button type="submit" class="secondary">"Move on"</button>
                    <button type="button" class="secondary" on:click=move |_| act("/complete", json!({}))>"Complete"</button>
                </form>
            })}
            {move || progress.get().map(|p| view! { <p class="status" data-testid="party-progress">"Progress: "{p}</p> })}
            <h3>"Transitions"</h3>
            <ol class="transitions" data-testid="transitions">
                <For each=move || transitions.get().into_iter().enumerate() key=|(i, _)| *i let:t>
                    <li>{t.1}</li>
                </For>
            </ol>
        </section>
    }
}
