//! Connection state recovery for socket.io clients 4.6+ (`--socketio-recovery`), from the
//! stored history: a client that loses its connection gets what it missed on whichever node
//! it reconnects to, with no session kept anywhere.
//!
//! The protocol is socket.io's own. The CONNECT reply carries a private session id `pid`
//! next to `sid` (set with the patched `Socket::set_pid`, see `vendor/socketioxide`); the
//! client then records the last argument of every event, when it is a string, as its
//! offset, and sends `{pid, offset}` in its auth when it reconnects. If the reply to that
//! carries the same `pid`, the client sets `socket.recovered`.
//!
//! Here the `pid` is a nonce with an HMAC over it, the namespace and the user (a key derived
//! from the server secret), so any node can check it; the user is verified from the token as
//! on every connect. Every event to a socket with a `pid` ends with an [`Offset`]: the
//! socket's contract and, for each room it follows, a short hash of the room's key and the
//! `seq` of the last message it was sent there. Restoring ([`restore`]) subscribes the new
//! socket to those rooms, reads what was stored after each `seq`, and hands it to the socket
//! to send before anything live; live messages at or below a sent `seq` are dropped, so the
//! client gets every message once and in order.
//!
//! Past the bounds below, or for a room the user is no longer a member of, the socket gets a
//! fresh `pid` instead (`recovered` false) and the client's usual rejoin runs, as without
//! recovery. Events that are not stored (typing, joins and leaves, room events) are not
//! replayed.

use std::time::Duration;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};
use socketioxide::extract::SocketRef;

use super::{Flavor, Namespace, Peer};
use crate::{
    core::{model::Message, now_ms, CoreError},
    lock,
};

/// Missed messages one reconnect may replay, over all its rooms; past it, no recovery. Never
/// more than half the outbound queue either, which the replay fills at once.
pub const MAX_MISSED_MESSAGES: usize = 500;
/// Oldest missed message a reconnect may replay; past it, no recovery. socket.io's own
/// server keeps sessions for the same two minutes by default.
pub const MAX_MISSED_AGE: Duration = Duration::from_secs(120);
/// Rooms an offset can name; a socket following more is not recovered.
pub const MAX_OFFSET_ROOMS: usize = 32;
/// Longest offset read from a client.
pub const MAX_OFFSET_BYTES: usize = 2 + MAX_OFFSET_ROOMS * (1 + ROOM_HASH_CHARS + 1 + 20);
/// Longest `pid` read from a client.
const MAX_PID_BYTES: usize = 64;

/// Separates this key from every other use of the server secret.
const KEY_CONTEXT: &[u8] = b"confab/socketio-pid/v1";
const NONCE_BYTES: usize = 12;
const TAG_BYTES: usize = 16;
/// Bytes of a room key's SHA-256 an offset carries (8 base64url characters).
const ROOM_HASH_BYTES: usize = 6;
const ROOM_HASH_CHARS: usize = 8;
/// The offset of a socket that follows more than [`MAX_OFFSET_ROOMS`] rooms.
const TOO_MANY_ROOMS: &str = "*";

type HmacSha256 = Hmac<Sha256>;

/// Issues and checks `pid`s.
pub struct Pids {
    key: Vec<u8>,
}

impl Pids {
    pub fn new(secret: &[u8]) -> Self {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(KEY_CONTEXT);
        Self {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    /// A fresh `pid` for `user_id`'s socket on `namespace`.
    pub fn issue(&self, namespace: Namespace, user_id: &str) -> String {
        let nonce: [u8; NONCE_BYTES] = rand::random();
        let tag = self.tag(&nonce, namespace, user_id);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(nonce),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// Whether `pid` was issued for `user_id`'s socket on `namespace`.
    pub fn verify(&self, pid: &str, namespace: Namespace, user_id: &str) -> bool {
        if pid.len() > MAX_PID_BYTES {
            return false;
        }
        let Some((nonce, tag)) = pid.split_once('.') else {
            return false;
        };
        let (Ok(nonce), Ok(tag)) = (URL_SAFE_NO_PAD.decode(nonce), URL_SAFE_NO_PAD.decode(tag))
        else {
            return false;
        };
        tag.len() == TAG_BYTES
            && self
                .mac(&nonce, namespace, user_id)
                .verify_truncated_left(&tag)
                .is_ok()
    }

    fn tag(&self, nonce: &[u8], namespace: Namespace, user_id: &str) -> Vec<u8> {
        let full = self.mac(nonce, namespace, user_id).finalize().into_bytes();
        full[..TAG_BYTES].to_vec()
    }

    fn mac(&self, nonce: &[u8], namespace: Namespace, user_id: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("any key length");
        mac.update(nonce);
        mac.update(&[namespace_tag(namespace)]);
        mac.update(user_id.as_bytes());
        mac
    }
}

fn namespace_tag(namespace: Namespace) -> u8 {
    match namespace {
        Namespace::Default => b'/',
        Namespace::Media => b'm',
        Namespace::Notifications => b'n',
    }
}

/// Where a socket is: the `seq` of the last message sent to it in each room it follows,
/// in the order it started following them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Positions {
    rooms: Vec<Followed>,
}

/// A room a socket follows. Its hash is made once, not for every event's offset.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Followed {
    key: String,
    hash: String,
    seq: u64,
}

impl Positions {
    fn find(&mut self, key: &str) -> Option<&mut Followed> {
        self.rooms.iter_mut().find(|room| room.key == key)
    }

    fn follow(&mut self, key: &str, seq: u64) {
        self.rooms.push(Followed {
            key: key.to_owned(),
            hash: room_hash(key),
            seq,
        });
    }

    /// Records that the socket was sent room `key` up to `seq` (a join's history).
    pub fn advance(&mut self, key: &str, seq: u64) {
        match self.find(key) {
            Some(room) => room.seq = room.seq.max(seq),
            None => self.follow(key, seq),
        }
    }

    /// Records a message of room `key` as sent; `false` when the socket has been sent it
    /// already (a replayed message arriving live too).
    pub fn admit(&mut self, key: &str, seq: u64) -> bool {
        match self.find(key) {
            Some(room) if room.seq >= seq => false,
            Some(room) => {
                room.seq = seq;
                true
            }
            None => {
                self.follow(key, seq);
                true
            }
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.rooms.iter().map(|room| room.key.as_str())
    }

    pub fn forget(&mut self, key: &str) {
        self.rooms.retain(|room| room.key != key);
    }

    /// The offset for an event sent now: the contract's letter, then `.hash:seq` per room.
    pub fn offset(&self, flavor: Flavor) -> String {
        let mut offset = String::from(match flavor {
            Flavor::Undecided => "u",
            Flavor::Chat001 => "1",
            Flavor::Discussion004 => "4",
        });
        if self.rooms.len() > MAX_OFFSET_ROOMS {
            offset.push_str(TOO_MANY_ROOMS);
            return offset;
        }
        for room in &self.rooms {
            offset.push('.');
            offset.push_str(&room.hash);
            offset.push(':');
            offset.push_str(&room.seq.to_string());
        }
        offset
    }
}

fn room_hash(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..ROOM_HASH_BYTES])
}

/// An offset as a client sent it back: the contract, and (room hash, seq) per room.
#[derive(Debug, PartialEq, Eq)]
pub struct Offset {
    flavor: Flavor,
    rooms: Vec<(String, u64)>,
}

impl Offset {
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() > MAX_OFFSET_BYTES {
            return None;
        }
        let mut parts = text.split('.');
        let flavor = match parts.next()? {
            "u" => Flavor::Undecided,
            "1" => Flavor::Chat001,
            "4" => Flavor::Discussion004,
            _ => return None,
        };
        let rooms = parts
            .map(|part| {
                let (hash, seq) = part.split_once(':')?;
                let valid = hash.len() == ROOM_HASH_CHARS
                    && hash
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                valid.then_some(())?;
                Some((hash.to_owned(), seq.parse().ok()?))
            })
            .collect::<Option<Vec<_>>>()?;
        (rooms.len() <= MAX_OFFSET_ROOMS).then_some(Self { flavor, rooms })
    }
}

/// Why a reconnect got a fresh `pid` instead of its old state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Not a `pid` this server issued to this user on this namespace.
    UnknownPid,
    /// The offset is not one this server writes (or names too many rooms).
    BadOffset,
    /// A room in the offset is gone, or the user is no longer a member of it.
    RoomLost,
    /// More than [`MAX_MISSED_MESSAGES`] missed.
    TooManyMissed,
    /// A missed message is older than [`MAX_MISSED_AGE`].
    TooOld,
    /// Storage failed; the client rejoins as without recovery.
    Unavailable,
}

/// What a recovered socket missed, room by room, each room's messages in `seq` order.
pub type Missed = Vec<Message>;

/// Gives a signed-in socket its `pid`, from its connect middleware: the one its client sent
/// back, with the socket's state restored, when that works; a fresh one otherwise.
pub async fn offer(socket: &SocketRef, peer: &Peer, pids: &Pids, auth: Option<&Value>) {
    let Some(user) = peer.user() else {
        return;
    };
    let field = |name| auth.and_then(|auth| auth.get(name)).and_then(Value::as_str);
    if let Some(pid) = field("pid") {
        match restore(peer, &user.user_id, pids, pid, field("offset")).await {
            Ok(missed) => {
                tracing::debug!(sid = %socket.id, missed = missed.len(), "socket recovered");
                // Rooms of a socket that never chatted were joined with `joinRoom`, which
                // also keeps them as Socket.IO rooms (for `getConnectionInfo`).
                if peer.flavor() == Flavor::Undecided {
                    for key in peer.followed_rooms() {
                        socket.join(key);
                    }
                }
                *lock(&peer.missed) = missed;
                socket.set_pid(pid.to_owned());
                return;
            }
            Err(reason) => tracing::debug!(sid = %socket.id, ?reason, "socket not recovered"),
        }
    }
    *lock(&peer.positions) = Some(Positions::default());
    socket.set_pid(pids.issue(peer.namespace, &user.user_id));
}

/// Restores a reconnecting socket from the `pid` and `offset` its client sent: subscribes
/// it to its rooms again and returns what it missed, with its positions set to match. On
/// failure the socket is left as a fresh one (no rooms).
pub async fn restore(
    peer: &Peer,
    user_id: &str,
    pids: &Pids,
    pid: &str,
    offset: Option<&str>,
) -> Result<Missed, Fallback> {
    if !pids.verify(pid, peer.namespace, user_id) {
        return Err(Fallback::UnknownPid);
    }
    // No offset: the socket had been sent no event, so it followed no room.
    let offset = match offset {
        None => Offset {
            flavor: Flavor::Undecided,
            rooms: Vec::new(),
        },
        Some(text) => Offset::parse(text).ok_or(Fallback::BadOffset)?,
    };
    let core = peer.state.core();
    // Its reads come in the same storms as sign-ins and joins (a node lost, every client
    // back at once), so they wait their turn with them rather than time out on the store.
    let _admission = core.admit().await;
    let member_of: Vec<(String, String)> = core
        .member_rooms(&peer.conn)
        .await
        .map_err(fallback)?
        .into_iter()
        .map(|key| (room_hash(&key), key))
        .collect();
    let mut rooms = Vec::with_capacity(offset.rooms.len());
    for (hash, seq) in &offset.rooms {
        let (_, key) = member_of
            .iter()
            .find(|(member_hash, _)| member_hash == hash)
            .ok_or(Fallback::RoomLost)?;
        rooms.push((key.clone(), *seq));
    }
    let mut subscribed = Vec::new();
    let outcome = replay(peer, &rooms, &mut subscribed).await;
    match outcome {
        Ok(missed) => {
            peer.decide(offset.flavor);
            let mut positions = Positions::default();
            for (key, seq) in &rooms {
                positions.advance(key, *seq);
            }
            *lock(&peer.positions) = Some(positions);
            Ok(missed)
        }
        Err(reason) => {
            for key in &subscribed {
                core.unsubscribe(&peer.conn, key);
            }
            Err(reason)
        }
    }
}

/// Subscribes the socket to each room and reads what it missed there.
async fn replay(
    peer: &Peer,
    rooms: &[(String, u64)],
    subscribed: &mut Vec<String>,
) -> Result<Missed, Fallback> {
    let core = peer.state.core();
    let now = now_ms();
    let bound = MAX_MISSED_MESSAGES.min(peer.state.config().outbound_queue / 2);
    let mut missed = Vec::new();
    for (key, seq) in rooms {
        let left = bound - missed.len();
        let room = core
            .resume_room(&peer.conn, key, *seq, left)
            .await
            .map_err(fallback)?;
        subscribed.push(key.clone());
        let room = room.ok_or(Fallback::TooManyMissed)?;
        if room.first().is_some_and(|m| too_old(m.created_at_ms, now)) {
            return Err(Fallback::TooOld);
        }
        missed.extend(room);
    }
    Ok(missed)
}

/// Whether a missed message stored at `created_at_ms` is past [`MAX_MISSED_AGE`] at `now`.
fn too_old(created_at_ms: i64, now: i64) -> bool {
    let max_age = i64::try_from(MAX_MISSED_AGE.as_millis()).unwrap_or(i64::MAX);
    now.saturating_sub(created_at_ms) > max_age
}

fn fallback(err: CoreError) -> Fallback {
    match err {
        CoreError::NotAMember | CoreError::RoomNotFound => Fallback::RoomLost,
        other => {
            other.log_if_internal();
            Fallback::Unavailable
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_is_valid_only_for_its_user_and_namespace() {
        let pids = Pids::new(b"secret");
        let pid = pids.issue(Namespace::Default, "ana");
        assert!(pids.verify(&pid, Namespace::Default, "ana"));
        assert!(!pids.verify(&pid, Namespace::Default, "bob"));
        assert!(!pids.verify(&pid, Namespace::Notifications, "ana"));
        assert!(!Pids::new(b"other").verify(&pid, Namespace::Default, "ana"));
        let (nonce, _) = pid.split_once('.').unwrap();
        assert!(!pids.verify(&format!("{nonce}.AAAA"), Namespace::Default, "ana"));
        assert!(!pids.verify(nonce, Namespace::Default, "ana"));
        assert!(!pids.verify("", Namespace::Default, "ana"));
    }

    #[test]
    fn positions_drop_what_was_sent_and_offsets_read_back() {
        let mut positions = Positions::default();
        positions.advance("room-a", 10);
        assert!(!positions.admit("room-a", 10), "sent with the history");
        assert!(positions.admit("room-a", 11));
        assert!(positions.admit("room-b", 3));
        let offset = positions.offset(Flavor::Discussion004);
        let parsed = Offset::parse(&offset).unwrap();
        assert_eq!(parsed.flavor, Flavor::Discussion004);
        assert_eq!(
            parsed.rooms,
            vec![(room_hash("room-a"), 11), (room_hash("room-b"), 3)]
        );
        positions.forget("room-a");
        assert_eq!(
            Offset::parse(&positions.offset(Flavor::Chat001))
                .unwrap()
                .rooms
                .len(),
            1
        );
    }

    #[test]
    fn missed_messages_are_replayed_up_to_the_age_bound() {
        let max_age = i64::try_from(MAX_MISSED_AGE.as_millis()).unwrap();
        let now = 1_800_000_000_000;
        assert!(!too_old(now, now));
        assert!(!too_old(now - max_age, now));
        assert!(too_old(now - max_age - 1, now));
    }

    #[test]
    fn malformed_or_oversized_offsets_are_refused() {
        for bad in [
            "",
            "x",
            "4.short:1",
            "4.AAAAAAAA:-1",
            "4.AAAAAAAA",
            "4.AAAAAAA!:1",
            "4*",
        ] {
            assert_eq!(Offset::parse(bad), None, "{bad:?}");
        }
        let mut positions = Positions::default();
        for i in 0..=MAX_OFFSET_ROOMS {
            positions.advance(&format!("room-{i}"), u64::MAX);
        }
        assert_eq!(Offset::parse(&positions.offset(Flavor::Chat001)), None);
        positions.forget("room-0");
        let offset = positions.offset(Flavor::Chat001);
        assert!(offset.len() <= MAX_OFFSET_BYTES, "{} bytes", offset.len());
        assert_eq!(
            Offset::parse(&offset).unwrap().rooms.len(),
            MAX_OFFSET_ROOMS
        );
    }
}
