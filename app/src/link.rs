//! The app's connection to `/ws`: one socket for the whole page, reopened with exponential
//! backoff and jitter when it drops, signed in again on every open, and with a visible state
//! (connected with its ping latency, reconnecting in N s, offline). Views register listeners
//! and send through it; messages sent while it is down wait in an outbox, bounded.

use std::{cell::RefCell, collections::VecDeque, rc::Rc};

use confab_shared::native::{decode_server, ClientMessage, ServerMessage};
use futures::{channel::mpsc, SinkExt, StreamExt};
use gloo_net::websocket::{futures::WebSocket, Message};
use leptos::prelude::*;

use crate::backoff;

/// First reconnect delay; it doubles up to [`MAX_BACKOFF_MS`].
const FIRST_BACKOFF_MS: f64 = 500.0;
const MAX_BACKOFF_MS: f64 = 10_000.0;
/// How often the latency is measured.
const PING_EVERY_MS: u32 = 10_000;
/// Messages kept while disconnected; older ones are dropped past it.
pub const MAX_OUTBOX: usize = 100;

/// What the person sees of the connection.
#[derive(Clone, Debug, PartialEq)]
pub enum LinkState {
    Connecting,
    Connected {
        latency_ms: Option<u32>,
    },
    Reconnecting {
        in_secs: u32,
    },
    /// Several attempts in a row have failed: the server (or the network) is down.
    Offline {
        in_secs: u32,
    },
}

/// Failed attempts in a row after which the page says it is offline.
const OFFLINE_AFTER: u32 = 4;

type Listener = Rc<dyn Fn(&ServerMessage)>;

struct Inner {
    sender: Option<mpsc::UnboundedSender<ClientMessage>>,
    outbox: VecDeque<ClientMessage>,
    listeners: Vec<(u64, Listener)>,
    next_listener: u64,
    /// Sent first on every open: the person's `auth`.
    hello: Option<ClientMessage>,
    failures: u32,
    ping_sent_at: Option<f64>,
}

/// A handle on the page's connection; cheap to copy into closures.
#[derive(Clone, Copy)]
pub struct Link {
    inner: StoredValue<Rc<RefCell<Inner>>, LocalStorage>,
    pub state: RwSignal<LinkState>,
    /// Counts opens, so views can re-sync after a reconnect.
    pub opened: RwSignal<u32>,
}

impl Link {
    /// Starts connecting to `path` on the page's own host.
    pub fn start(path: &'static str) -> Self {
        let link = Self {
            inner: StoredValue::new_local(Rc::new(RefCell::new(Inner {
                sender: None,
                outbox: VecDeque::new(),
                listeners: Vec::new(),
                next_listener: 0,
                hello: None,
                failures: 0,
                ping_sent_at: None,
            }))),
            state: RwSignal::new(LinkState::Connecting),
            opened: RwSignal::new(0),
        };
        link.connect(path);
        link.keep_measuring();
        link
    }

    fn inner(&self) -> Rc<RefCell<Inner>> {
        self.inner.get_value()
    }

    /// Sets the message sent first on every open (the person's `auth`), and sends it now.
    pub fn set_hello(&self, hello: Option<ClientMessage>) {
        self.inner().borrow_mut().hello = hello.clone();
        if let Some(hello) = hello {
            self.send(hello);
        }
    }

    /// Sends now, or when the socket is next open.
    pub fn send(&self, message: ClientMessage) {
        let inner = self.inner();
        let mut inner = inner.borrow_mut();
        if let Some(sender) = &inner.sender {
            if sender.unbounded_send(message.clone()).is_ok() {
                return;
            }
        }
        if inner.outbox.len() == MAX_OUTBOX {
            inner.outbox.pop_front();
        }
        inner.outbox.push_back(message);
    }

    /// Calls `listener` with every server message until the reactive owner that called
    /// this is cleaned up (the view that registered it goes away).
    pub fn listen(&self, listener: impl Fn(&ServerMessage) + 'static) {
        let inner = self.inner();
        let id = {
            let mut inner = inner.borrow_mut();
            inner.next_listener += 1;
            let id = inner.next_listener;
            inner.listeners.push((id, Rc::new(listener)));
            id
        };
        let store = self.inner;
        on_cleanup(move || {
            if let Some(inner) = store.try_get_value() {
                inner
                    .borrow_mut()
                    .listeners
                    .retain(|(other, _)| *other != id);
            }
        });
    }

    fn dispatch(&self, message: &ServerMessage) {
        if matches!(message, ServerMessage::RoomState { .. }) {
            let sent = self.inner().borrow_mut().ping_sent_at.take();
            if let Some(sent) = sent {
                let latency = (js_sys::Date::now() - sent).max(0.0) as u32;
                self.state.set(LinkState::Connected {
                    latency_ms: Some(latency),
                });
            }
        }
        // Listeners may register or drop listeners: call a snapshot.
        let listeners: Vec<Listener> = self
            .inner()
            .borrow()
            .listeners
            .iter()
            .map(|(_, l)| Rc::clone(l))
            .collect();
        for listener in listeners {
            listener(message);
        }
    }

    fn connect(self, path: &'static str) {
        let Some(opened) = ws_url(path).and_then(|url| WebSocket::open(&url).ok()) else {
            return self.retry(path);
        };
        let (mut sink, mut stream) = opened.split();
        let (sender, mut queue) = mpsc::unbounded::<ClientMessage>();
        // The first answer proves the socket open; a ping asks for one (`room:state`).
        let _ = sender.unbounded_send(ClientMessage::Ping);
        leptos::task::spawn_local(async move {
            while let Some(message) = queue.next().await {
                if sink.send(Message::Text(message.to_json())).await.is_err() {
                    break;
                }
            }
        });
        leptos::task::spawn_local(async move {
            let mut first = true;
            while let Some(frame) = stream.next().await {
                let Ok(Message::Text(text)) = frame else {
                    break;
                };
                if first {
                    first = false;
                    self.on_open(&sender);
                }
                if let Ok(message) = decode_server(&text) {
                    self.dispatch(&message);
                }
            }
            if !first {
                self.inner().borrow_mut().sender = None;
            }
            self.retry(path);
        });
    }

    /// The socket answered: sign in, flush the outbox, tell views to re-sync.
    fn on_open(&self, sender: &mpsc::UnboundedSender<ClientMessage>) {
        let inner = self.inner();
        let pending: Vec<ClientMessage> = {
            let mut inner = inner.borrow_mut();
            inner.failures = 0;
            inner.sender = Some(sender.clone());
            let mut pending: Vec<ClientMessage> = inner.hello.iter().cloned().collect();
            pending.extend(inner.outbox.drain(..));
            pending
        };
        for message in pending {
            let _ = sender.unbounded_send(message);
        }
        self.state.set(LinkState::Connected { latency_ms: None });
        self.opened.update(|n| *n += 1);
    }

    fn retry(self, path: &'static str) {
        let failures = {
            let inner = self.inner();
            let mut inner = inner.borrow_mut();
            inner.failures += 1;
            inner.failures
        };
        let delay = backoff::jittered_delay_ms(
            failures.saturating_sub(1),
            FIRST_BACKOFF_MS,
            MAX_BACKOFF_MS,
        );
        let deadline = js_sys::Date::now() + delay;
        leptos::task::spawn_local(async move {
            loop {
                let left = deadline - js_sys::Date::now();
                if left <= 0.0 {
                    break;
                }
                let in_secs = (left / 1000.0).ceil() as u32;
                self.state.set(if failures >= OFFLINE_AFTER {
                    LinkState::Offline { in_secs }
                } else {
                    LinkState::Reconnecting { in_secs }
                });
                gloo_timers::future::TimeoutFuture::new(left.min(1000.0) as u32).await;
            }
            self.state.set(LinkState::Connecting);
            self.connect(path);
        });
    }

    fn keep_measuring(self) {
        leptos::task::spawn_local(async move {
            loop {
                gloo_timers::future::TimeoutFuture::new(PING_EVERY_MS).await;
                if matches!(self.state.get_untracked(), LinkState::Connected { .. }) {
                    self.inner().borrow_mut().ping_sent_at = Some(js_sys::Date::now());
                    self.send(ClientMessage::Ping);
                }
            }
        });
    }
}

/// `path` on the page's own host, as a WebSocket URL.
pub fn ws_url(path: &str) -> Option<String> {
    let location = web_sys::window()?.location();
    let protocol = location.protocol().ok()?;
    let host = location.host().ok()?;
    let scheme = if protocol == "https:" { "wss" } else { "ws" };
    Some(format!("{scheme}://{host}{path}"))
}
