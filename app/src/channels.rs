//! The `/qf` channels (contract 003): one socket per path, opened with a short-lived token,
//! reopened with backoff and jitter while it drops, and given up on an auth close code
//! (1008, 4000–4003, 4401, 4403), where only signing in again can help. While a socket is
//! down, a fallback (the online list's REST poll) can keep its view current.

use confab_shared::channels::{ChannelMessage, OnlineUser};
use futures::StreamExt;
use gloo_net::websocket::{futures::WebSocket, Message};
use leptos::prelude::*;

use crate::{account::Account, api, backoff};

/// How often the online list's REST fallback is polled while its socket is down.
pub const POLL_EVERY_MS: u32 = 10_000;
const FIRST_BACKOFF_MS: f64 = 1000.0;
const MAX_BACKOFF_MS: f64 = 30_000.0;
/// Close codes after which reconnecting cannot help (contract 003's no-reconnect set).
pub const AUTH_CLOSE_CODES: [u16; 7] = [1008, 4000, 4001, 4002, 4003, 4401, 4403];

/// Follows `path` for `account` until `stop` is set or the server refuses its token
/// (then `refused` is set). `while_down` runs between attempts.
pub fn follow(
    path: String,
    account: Account,
    stop: RwSignal<bool>,
    refused: RwSignal<bool>,
    on_message: impl Fn(ChannelMessage) + 'static,
    while_down: impl AsyncFn(&Account) + 'static,
) {
    leptos::task::spawn_local(async move {
        let mut failures = 0u32;
        while !stopped(stop) {
            match run(&path, &account, stop, &on_message).await {
                Ended::Closed(code) if AUTH_CLOSE_CODES.contains(&code) => {
                    // The view that asked may be gone by now.
                    let _ = refused.try_set(true);
                    return;
                }
                Ended::Stopped => return,
                Ended::Opened => failures = 0,
                Ended::Closed(_) | Ended::Failed => failures += 1,
            }
            let delay = backoff::jittered_delay_ms(failures, FIRST_BACKOFF_MS, MAX_BACKOFF_MS);
            let deadline = js_sys::Date::now() + delay;
            loop {
                while_down(&account).await;
                let left = deadline - js_sys::Date::now();
                if left <= 0.0 || stopped(stop) {
                    break;
                }
                gloo_timers::future::TimeoutFuture::new(left.min(f64::from(POLL_EVERY_MS)) as u32)
                    .await;
            }
        }
    });
}

/// Whether the view that started a channel has asked it to stop, or is gone: the channel's
/// task outlives the view, and a disposed signal counts as a stop.
fn stopped(stop: RwSignal<bool>) -> bool {
    stop.try_get_untracked().unwrap_or(true)
}

enum Ended {
    /// It was open and then dropped: start the backoff over.
    Opened,
    Closed(u16),
    Failed,
    Stopped,
}

async fn run(
    path: &str,
    account: &Account,
    stop: RwSignal<bool>,
    on_message: &impl Fn(ChannelMessage),
) -> Ended {
    let token = match api::ws_token(&account.token).await {
        Ok(token) => token,
        Err(api::Failure::Unauthorized) => return Ended::Closed(1008),
        Err(_) => return Ended::Failed,
    };
    let separator = if path.contains('?') { '&' } else { '?' };
    let Some(url) = crate::link::ws_url(&format!("{path}{separator}token={token}")) else {
        return Ended::Failed;
    };
    let Ok(socket) = WebSocket::open(&url) else {
        return Ended::Failed;
    };
    let (_sink, mut stream) = socket.split();
    let mut opened = false;
    while let Some(frame) = stream.next().await {
        if stopped(stop) {
            return Ended::Stopped;
        }
        match frame {
            Ok(Message::Text(text)) => {
                opened = true;
                if let Ok(message) = confab_shared::channels::decode_channel(&text) {
                    on_message(message);
                }
            }
            Ok(Message::Bytes(_)) => {}
            Err(gloo_net::websocket::WebSocketError::ConnectionClose(close)) => {
                return if AUTH_CLOSE_CODES.contains(&close.code) || !opened {
                    Ended::Closed(close.code)
                } else {
                    Ended::Opened
                };
            }
            Err(_) => break,
        }
    }
    if opened {
        Ended::Opened
    } else {
        Ended::Failed
    }
}

/// Keeps `users` current from `/qf/users/online/ws`, polling the REST list while it is down.
pub fn follow_online(
    account: Account,
    users: RwSignal<Vec<OnlineUser>>,
    stop: RwSignal<bool>,
    refused: RwSignal<bool>,
) {
    follow(
        "/qf/users/online/ws".to_owned(),
        account,
        stop,
        refused,
        move |message| {
            if let ChannelMessage::OnlineUsersUpdate(update) = message {
                users.set(update.users);
            }
        },
        async move |account: &Account| {
            if let Ok(list) = api::online_users(&account.token).await {
                users.set(list.users);
            }
        },
    );
}
