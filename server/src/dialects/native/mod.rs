//! The native envelope at `/ws`: contract 000 and its extensions, typed by `confab_shared`.
//!
//! One task per connection reads frames, calls the core, and writes replies and the events
//! the core delivers to the connection's inbox. `PROTOCOL.md` documents the behaviour,
//! including the close codes used here.

mod in_flight;
mod render;

use std::time::Duration;

use axum::{extract::State, response::Response, routing::get, Router};
use confab_shared::native::{decode_client, ClientMessage, RoomStateView, ServerMessage};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use in_flight::InFlight;
pub use in_flight::MAX_POSTS_IN_FLIGHT;

use super::{
    direct_ws::{Socket, Upgrade},
    plain_ws::{self, close_code, Stop},
};

use crate::{
    auth::{AuthError, Identity, EXPIRY_LEEWAY_SECS},
    core::{
        error::logged,
        events::Delivery,
        mailbox,
        model::{MessageKind, Room},
        now_ms, Connection, Core, CoreError, CoreResult, HistoryPage, IfMissing, Resubscribed,
        RoomSpec,
    },
    ratelimit::Bucket,
    AppState,
};

/// Events written per flush at most, so one busy connection cannot starve its reads.
const MAX_BATCH: usize = 64;

/// How long a connection whose peer stopped reading (or closed) goes on reading what the
/// peer sent before, so that chat messages sent just before a close still reach the room.
const READ_REST_TIMEOUT: Duration = Duration::from_secs(1);

/// The furthest ahead a peer's expiry timer is set; tokens valid for longer are checked
/// again when it fires.
const MAX_EXPIRY_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

pub fn routes() -> Router<AppState> {
    Router::new().route("/ws", get(upgrade))
}

async fn upgrade(upgrade: Upgrade, State(state): State<AppState>) -> Response {
    plain_ws::accept(upgrade, state, "ws", serve)
}

/// One `/ws` client as the server keeps it: its core connection, who it signed in as, its
/// rate limit and the messages it is storing.
struct Peer {
    state: AppState,
    conn: Connection,
    /// `exp` of the token signed in with, Unix seconds; `None` when signed out. All the
    /// connection keeps of its identity: the core has the profile.
    token_exp: Option<i64>,
    /// Signed in at some point: the authentication deadline no longer applies.
    signed_in_once: bool,
    limiter: Bucket,
    /// Chat messages being stored, to be announced in order.
    in_flight: InFlight,
}

/// What a connection's one timer waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alarm {
    /// The authentication deadline: nobody has signed in yet.
    SignIn,
    /// The signed-in token's expiry (`exp` plus the leeway, in Unix seconds).
    Expiry(i64),
    /// Nothing: signed in once, and signed out since.
    Off,
}

/// The close for a connection that did not authenticate within `--auth-deadline-secs`.
const AUTH_TIMEOUT: Stop = Stop::Close(close_code::POLICY, "authentication required");
/// The close for a connection whose user a moderator banned.
const BANNED: Stop = Stop::Close(close_code::POLICY, "banned");

/// One connection: frames in, replies and room events out, until either side closes or
/// the server stops.
async fn serve(mut socket: Socket, state: AppState) {
    let (conn, mut inbox) = state.core().connect();
    plain_ws::record_connection(&conn);
    let config = state.config();
    let limiter = Bucket::new(config.message_burst, config.message_rate);
    let mut peer = Peer {
        state: state.clone(),
        conn,
        token_exp: None,
        signed_in_once: false,
        limiter,
        in_flight: InFlight::default(),
    };
    let sign_in_by = Instant::now() + Duration::from_secs(config.auth_deadline_secs);
    let ends = plain_ws::Ends::new(&inbox.ending, BANNED);
    // Made once, not on every turn of the loop: a connection may turn it thousands of times
    // a second, and each new timer or cancellation waiter costs more than the delivery.
    let ended = ends.reached();
    // One timer for both deadlines, which never apply at once: every idle connection's
    // task holds it, and a timer is over a hundred bytes.
    let timer = tokio::time::sleep_until(sign_in_by);
    tokio::pin!(ended, timer);
    // What the timer is set for; `None` when it is to be set again.
    let mut timer_set_for: Option<Alarm> = Some(Alarm::SignIn);
    let stop = loop {
        let alarm = peer.alarm();
        if timer_set_for != Some(alarm) {
            timer_set_for = Some(alarm);
            match alarm {
                Alarm::SignIn => timer.as_mut().reset(sign_in_by),
                Alarm::Expiry(_) => {
                    if let Some(deadline) = peer.expiry() {
                        timer.as_mut().reset(deadline);
                    }
                }
                Alarm::Off => {}
            }
        }
        let replies = tokio::select! {
            stop = &mut ended => break stop,
            () = &mut timer, if alarm != Alarm::Off => {
                if alarm == Alarm::SignIn {
                    break AUTH_TIMEOUT;
                }
                if !peer.expired() {
                    // A token that outlives the longest wait: look again later.
                    timer_set_for = None;
                    continue;
                }
                peer.sign_out(&mut inbox.queue);
                to_frames(&[ServerMessage::AuthError { error: AuthError::Expired.to_string() }])
            }
            Some(replies) = peer.in_flight.next(), if !peer.in_flight.is_empty() => {
                to_frames(&replies)
            }
            deliveries = inbox.queue.recv_many(MAX_BATCH) => {
                if deliveries.is_empty() {
                    break Stop::Gone;
                }
                deliveries.iter().filter_map(|d| rendered(d)).collect()
            }
            frame = socket.recv(), if !peer.in_flight.is_full() => match frame {
                // Boxed: the request handling (storage calls and all) would otherwise be
                // part of every idle connection's resident task.
                Some(Ok(Message::Text(text))) => {
                    Box::pin(peer.handle_text(&text, &mut inbox.queue)).await
                }
                Some(Ok(Message::Binary(_))) => to_frames(&peer.refuse_binary()),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Close(_))) | None => break Stop::Gone,
                Some(Err(err)) => break Stop::after_ws_error(&err),
            },
        };
        if let Err(stop) = Box::pin(plain_ws::write(&mut socket, &replies, &ends)).await {
            if stop == Stop::Gone {
                Box::pin(peer.read_rest(&mut socket, &mut inbox.queue)).await;
            }
            break stop;
        }
    };
    // Whatever was accepted still reaches the room, whoever closed the connection: the
    // store's writer broadcasts it without this connection. Boxed like the request
    // handling: it runs once, at the end, and need not size every idle connection's task.
    Box::pin(plain_ws::finish(&mut socket, stop)).await;
}

/// This dialect's rendering of a delivery, serialised once for all its recipients.
struct NativeFrame(Option<Utf8Bytes>);

fn rendered(delivery: &Delivery) -> Option<Utf8Bytes> {
    delivery
        .rendered
        .get_or_render(|| NativeFrame(render::event(&delivery.event).map(|m| m.to_json().into())))
        .0
        .clone()
}

fn to_frames(replies: &[ServerMessage]) -> Vec<Utf8Bytes> {
    replies
        .iter()
        .map(|m| Utf8Bytes::from(m.to_json()))
        .collect()
}

impl Peer {
    fn core(&self) -> &Core {
        self.state.core()
    }

    /// When the peer's token expires (with the verifier's leeway), or when to look again
    /// for a token that lasts longer than [`MAX_EXPIRY_WAIT`].
    fn expiry(&self) -> Option<Instant> {
        let ends_ms = self.expires_at_secs()?.saturating_mul(1000);
        let left =
            Duration::from_millis(u64::try_from(ends_ms.saturating_sub(now_ms())).unwrap_or(0));
        Some(Instant::now() + left.min(MAX_EXPIRY_WAIT))
    }

    /// What the connection's timer is to wait for now.
    fn alarm(&self) -> Alarm {
        if !self.signed_in_once {
            return Alarm::SignIn;
        }
        self.expires_at_secs().map_or(Alarm::Off, Alarm::Expiry)
    }

    /// `exp` plus the leeway, in Unix seconds.
    fn expires_at_secs(&self) -> Option<i64> {
        let leeway = i64::try_from(EXPIRY_LEEWAY_SECS).unwrap_or(0);
        Some(self.token_exp?.saturating_add(leeway))
    }

    /// Whether the peer's token has expired (the timer fires early for long-lived tokens).
    fn expired(&self) -> bool {
        self.expires_at_secs()
            .is_some_and(|ends| ends <= now_ms() / 1000)
    }

    /// Drops the identity, its subscriptions and any of its events still queued.
    fn sign_out(&mut self, queue: &mut mailbox::Receiver) {
        self.token_exp = None;
        self.core().sign_out(&self.conn);
        queue.clear();
    }

    /// Takes a token from the connection's inbound rate limit; `false` when over it.
    fn allow(&mut self) -> bool {
        let allowed = self.limiter.try_take(std::time::Instant::now());
        if !allowed {
            crate::metrics::rate_limited("messages");
        }
        allowed
    }

    fn refuse_binary(&mut self) -> Vec<ServerMessage> {
        if !self.allow() {
            return vec![error("rate limit exceeded; slow down")];
        }
        vec![error("binary frames are not supported; send JSON text")]
    }

    /// After a failed write, reads what the peer sent before it stopped reading, until its
    /// close or [`READ_REST_TIMEOUT`]: chat messages are stored and broadcast as usual;
    /// anything else is dropped, since nobody is left to answer (and a join or a leave cut
    /// off by the timeout would be half done). The socket can still be read when it can no
    /// longer be written: a peer that closes right after sending has its last messages
    /// read here.
    async fn read_rest(&mut self, socket: &mut Socket, queue: &mut mailbox::Receiver) {
        let rest = async {
            loop {
                if self.in_flight.is_full() {
                    self.in_flight.next().await;
                    continue;
                }
                match socket.recv().await {
                    Some(Ok(Message::Text(text))) => {
                        if matches!(decode_client(&text), Ok(ClientMessage::RoomChat { .. })) {
                            self.handle_text(&text, queue).await;
                        }
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                    Some(Ok(_)) => {}
                }
            }
        };
        let _ = tokio::time::timeout(READ_REST_TIMEOUT, rest).await;
    }

    /// The frames a text frame from the client calls for.
    async fn handle_text(&mut self, text: &str, queue: &mut mailbox::Receiver) -> Vec<Utf8Bytes> {
        if !self.allow() {
            return to_frames(&[error("rate limit exceeded; slow down")]);
        }
        let message = match decode_client(text) {
            Ok(message) => message,
            Err(err) => return to_frames(&[error(&err.to_string())]),
        };
        // Anything but chat is answered after the chat messages sent before it, on this
        // socket too: their broadcasts, already in this connection's mailbox, go first.
        let mut frames = Vec::new();
        let is_chat = matches!(message, ClientMessage::RoomChat { .. });
        if !is_chat && !self.in_flight.is_empty() {
            frames = to_frames(&self.in_flight.finish().await);
            // All of them: none may come after the answer that follows.
            let waiting = queue.try_recv_many(usize::MAX);
            frames.extend(waiting.iter().filter_map(|d| rendered(d)));
        }
        frames.extend(to_frames(&self.handle(message, queue).await));
        frames
    }

    /// Queues a chat message, broadcast once it is stored. The sender sees its message in
    /// the broadcast, like everyone else.
    async fn post(&mut self, code: String, message: &str) -> Vec<ServerMessage> {
        let queued = self
            .core()
            .queue_message(&self.conn, &code, message, MessageKind::Text)
            .await;
        match queued {
            Ok(queued) => {
                self.in_flight.push(code, queued);
                Vec::new()
            }
            Err(err) => room_reply(&code, Err(err)),
        }
    }

    async fn handle(
        &mut self,
        message: ClientMessage,
        queue: &mut mailbox::Receiver,
    ) -> Vec<ServerMessage> {
        match message {
            ClientMessage::Auth { user_id, token } => {
                self.authenticate(user_id, &token, queue).await
            }
            ClientMessage::Ping | ClientMessage::RoomState { code: None } => {
                vec![self.current_state().await]
            }
            ClientMessage::RoomState { code: Some(code) } => {
                let core = self.core();
                room_reply(
                    &code,
                    core.room(&self.conn, &code).await.map(|room| {
                        vec![ServerMessage::RoomState {
                            room: RoomStateView::Room(render::room(&room)),
                        }]
                    }),
                )
            }
            ClientMessage::RoomCreate {
                room_type,
                max_users,
                name,
            } => {
                let spec = RoomSpec {
                    key: None,
                    name: name.unwrap_or_default(),
                    room_type,
                    max_users,
                };
                let admission = self.core().admit().await;
                let created = self.core().create_room(&self.conn, spec, &admission).await;
                room_reply(
                    "",
                    created.map(|room| {
                        vec![ServerMessage::RoomCreated {
                            room: render::room(&room),
                        }]
                    }),
                )
            }
            ClientMessage::RoomJoin { code } => {
                let core = self.core();
                let admission = core.admit().await;
                // Contract 000's answer lists the members; other dialects' do not.
                let joined = core
                    .join_room_listing_members(&self.conn, &code, IfMissing::Refuse, &admission)
                    .await;
                room_reply(
                    &code,
                    joined.map(|joined| {
                        let members = joined.members.unwrap_or_default();
                        vec![
                            ServerMessage::RoomJoined {
                                room: render::room(&joined.room),
                                users: members.iter().map(render::member).collect(),
                            },
                            ServerMessage::RoomHistory {
                                code: code.clone(),
                                messages: joined.history.iter().map(render::message).collect(),
                                before_seq: None,
                            },
                        ]
                    }),
                )
            }
            ClientMessage::RoomLeave { code } => {
                let left = self.core().leave_room(&self.conn, &code).await;
                room_reply(
                    &code,
                    left.map(|()| vec![ServerMessage::RoomLeft { code: code.clone() }]),
                )
            }
            ClientMessage::RoomChat { code, message } => self.post(code, &message).await,
            ClientMessage::RoomStart { code, game_state } => {
                let started = self
                    .core()
                    .start_game(&self.conn, &code, &game_state.to_string())
                    .await;
                room_done(&code, started)
            }
            ClientMessage::RoomTyping { code, typing } => room_done(
                &code,
                self.core().set_typing(&self.conn, &code, typing).await,
            ),
            ClientMessage::RoomsList => match self.core().rooms_overview(&self.conn).await {
                Ok(rooms) => vec![ServerMessage::RoomsList {
                    rooms: rooms.iter().map(render::room_summary).collect(),
                }],
                Err(err) => room_reply("", Err(err)),
            },
            ClientMessage::RoomRead { code, seq } => {
                room_done(&code, self.core().read_up_to(&self.conn, &code, seq).await)
            }
            ClientMessage::RoomHistory {
                code,
                after_seq,
                before_seq,
            } => {
                let page = match (after_seq, before_seq) {
                    (Some(after), None) => Ok(HistoryPage::After(after)),
                    (None, Some(before)) => Ok(HistoryPage::Before(before)),
                    _ => Err(CoreError::invalid(
                        "room:history takes either afterSeq or beforeSeq",
                    )),
                };
                let history = match page {
                    Ok(page) => self.core().history(&self.conn, &code, page).await,
                    Err(err) => Err(err),
                };
                room_reply(
                    &code,
                    history.map(|messages| {
                        vec![ServerMessage::RoomHistory {
                            code: code.clone(),
                            messages: messages.iter().map(render::message).collect(),
                            before_seq,
                        }]
                    }),
                )
            }
        }
    }

    async fn authenticate(
        &mut self,
        user_id: Option<String>,
        token: &str,
        queue: &mut mailbox::Receiver,
    ) -> Vec<ServerMessage> {
        let verified =
            self.state
                .verifier()
                .verify(token)
                .await
                .and_then(|identity| match user_id {
                    Some(claimed) if claimed != identity.profile.user_id => {
                        AuthError::UserMismatch.count();
                        Err(AuthError::UserMismatch)
                    }
                    _ => Ok(identity),
                });
        let identity = match verified {
            Ok(identity) => identity,
            Err(err) => {
                return vec![ServerMessage::AuthError {
                    error: err.to_string(),
                }]
            }
        };
        // Events of the previous identity still queued must not reach the new one.
        self.sign_out(queue);
        let core = self.core().clone();
        // One turn for signing in, resubscribing and reading the room state.
        let admission = core.admit().await;
        let Identity {
            profile,
            issuer,
            expires_at,
        } = identity;
        // A reconnecting member receives their rooms again without re-joining, and what the
        // user reads elsewhere.
        let Resubscribed { user, rooms } = match core
            .sign_in_resubscribing(&self.conn, profile, &admission)
            .await
        {
            Ok(signed_in) => signed_in,
            Err(err) => {
                return vec![ServerMessage::AuthError {
                    error: client_text(&err),
                }]
            }
        };
        let rooms = logged(rooms);
        logged(core.watch_user(&self.conn));
        let ok = ServerMessage::AuthOk {
            user_id: user.user_id.clone(),
            username: user.username.clone(),
            image_url: user.image_url.clone(),
            issuer,
            exp: expires_at,
        };
        plain_ws::record_user(&user);
        self.token_exp = Some(expires_at);
        self.signed_in_once = true;
        // The rooms just resubscribed give the current one without reading them again.
        let state = match rooms {
            Some(rooms) => room_state(core.most_recent_room(&rooms).await),
            None => self.current_state().await,
        };
        vec![ok, state]
    }

    /// `room:state` for the caller's current room; the lobby when signed out or in no room.
    async fn current_state(&self) -> ServerMessage {
        if self.token_exp.is_none() {
            return room_state(Ok(None));
        }
        room_state(self.core().current_room(&self.conn).await)
    }
}

/// `room:state` for a current room, the lobby for none, or `room:error`.
fn room_state(current: CoreResult<Option<Room>>) -> ServerMessage {
    match current {
        Ok(Some(room)) => ServerMessage::RoomState {
            room: RoomStateView::Room(render::room(&room)),
        },
        Ok(None) => ServerMessage::RoomState {
            room: RoomStateView::lobby(),
        },
        Err(err) => room_error(None, &err),
    }
}

/// The replies of a room action, or its `room:error`.
fn room_reply(code: &str, result: Result<Vec<ServerMessage>, CoreError>) -> Vec<ServerMessage> {
    result.unwrap_or_else(|err| vec![room_error(Some(code).filter(|c| !c.is_empty()), &err)])
}

/// The replies of a room action that has nothing to say when done: none, or its `room:error`.
fn room_done<T>(code: &str, result: CoreResult<T>) -> Vec<ServerMessage> {
    room_reply(code, result.map(|_| Vec::new()))
}

fn room_error(code: Option<&str>, err: &CoreError) -> ServerMessage {
    ServerMessage::RoomError {
        error: client_text(err),
        code: code.map(str::to_owned),
    }
}

fn client_text(err: &CoreError) -> String {
    err.log_if_internal();
    err.to_string()
}

fn error(text: &str) -> ServerMessage {
    ServerMessage::Error {
        error: text.to_owned(),
    }
}
