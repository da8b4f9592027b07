//! Chat messages in `seq` order on a node that receives them from several writers.
//!
//! One node's message writer publishes in commit order, so one node alone delivers a room's
//! messages in order. With several nodes storing into one room, two commits can reach a
//! third node in either order, and a message published while the bus was down never reaches
//! it at all. So each node keeps, for every room its connections follow, the next `seq` it
//! expects:
//!
//! - the expected message is delivered at once, with any held ones that follow it;
//! - a message from further on is held back for up to [`HOLD`];
//! - a gap still open after that is filled from the store, which has every message before
//!   it is published anywhere;
//! - a message from before the expected one has been delivered already and is dropped.
//!
//! Every connection of the node therefore receives a room's messages in `seq` order, with no
//! gap and no duplicate, from the first one it receives. Other events are not ordered. A
//! room nobody here follows keeps no position: the connection that follows it next starts
//! after the history it read ([`Sequencer::follow`]).

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::{
    core::{
        events::{Delivery, Event, Topic},
        hub::Hub,
        model::Message,
    },
    lock,
    store::Store,
};

/// How long an early message waits for the ones before it before the gap is filled from
/// the store. Messages between nodes take well under a millisecond on a local network; a
/// gap this old is a lost message, not a slow one.
pub const HOLD: Duration = Duration::from_millis(250);
/// Messages held back in one room at most; one past it is dropped, and the fill under way
/// reads it from the store.
pub const MAX_HELD_PER_ROOM: usize = 1024;
/// Rooms whose position a node keeps; past it, the ones idle longest are forgotten, those
/// nobody here follows first (a forgotten room starts again at the next message).
pub const MAX_TRACKED_ROOMS: usize = 100_000;
/// Messages read from the store per fill.
const FILL_BATCH: usize = 500;
/// Reads in a row that find nothing new in the store before a gap is given up on.
const FILL_ATTEMPTS: u32 = 20;
/// Failed reads in a row before a fill gives up (they are retried with backoff).
const FILL_FAILURES: u32 = 12;
/// The longest wait between two failed reads.
const FILL_RETRY_MAX: Duration = Duration::from_secs(5);

pub struct Sequencer {
    hub: Arc<Hub>,
    store: Arc<dyn Store>,
    /// Where fills run: the server's runtime, also for messages published on the store
    /// writer's thread (whose runtime exists to commit, not to read and deliver).
    runtime: tokio::runtime::Handle,
    rooms: Mutex<HashMap<String, RoomLine>>,
}

/// What a fill does after reading from the store.
enum Fill {
    Done,
    /// It made progress and more may be missing: read on.
    Again,
    /// The store had nothing new: wait, then read again.
    Wait,
}

/// Where one room is on this node.
struct RoomLine {
    /// The `seq` to deliver next.
    next: u64,
    /// Messages from further on, waiting for the gap before them to close.
    held: BTreeMap<u64, Arc<Delivery>>,
    /// A fill is scheduled or running.
    filling: bool,
    /// A message was dropped for want of room in `held`: the fill reads on until it has it.
    dropped: bool,
    last_used: Instant,
}

impl RoomLine {
    fn starting_at(next: u64) -> Self {
        Self {
            next,
            held: BTreeMap::new(),
            filling: false,
            dropped: false,
            last_used: Instant::now(),
        }
    }

    /// Delivers what can go now: the expected message and every held one after it.
    fn release(&mut self, hub: &Hub) {
        while let Some(entry) = self.held.first_entry() {
            match (*entry.key()).cmp(&self.next) {
                std::cmp::Ordering::Less => {
                    entry.remove();
                }
                std::cmp::Ordering::Equal => {
                    hub.deliver(&entry.remove());
                    self.next += 1;
                }
                std::cmp::Ordering::Greater => break,
            }
        }
    }

    /// Whether a fill has nothing left to do.
    fn settled(&self) -> bool {
        self.held.is_empty() && !self.dropped
    }
}

impl Sequencer {
    /// Made on the server's runtime, whose handle fills use.
    pub fn new(hub: Arc<Hub>, store: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            hub,
            store,
            runtime: tokio::runtime::Handle::current(),
            rooms: Mutex::default(),
        })
    }

    /// Delivers `delivery` to this node's subscribers: a chat message in its room's order,
    /// anything else at once. Never waits.
    pub fn deliver(self: &Arc<Self>, delivery: Arc<Delivery>) {
        let Event::Message(message) = &delivery.event else {
            self.hub.deliver(&delivery);
            return;
        };
        let key = message.room_key.clone();
        let seq = message.seq;
        // Delivering under the lock keeps two threads (this node's writer and the bus
        // reader) from handing one room's messages to the hub out of order.
        let mut rooms = lock(&self.rooms);
        if !self.hub.has_subscribers(&delivery.topic) {
            // Nobody here to deliver to: whoever follows the room next starts afresh.
            if rooms.get(&key).is_some_and(|line| !line.filling) {
                rooms.remove(&key);
            }
            return;
        }
        if !rooms.contains_key(&key) {
            forget_idle(&mut rooms, &self.hub);
        }
        let line = rooms
            .entry(key.clone())
            .or_insert_with(|| RoomLine::starting_at(seq));
        line.last_used = Instant::now();
        if seq < line.next {
            return;
        }
        if seq > line.next && line.held.len() >= MAX_HELD_PER_ROOM {
            line.dropped = true;
        } else {
            line.held.insert(seq, delivery);
            line.release(&self.hub);
        }
        if line.settled() || line.filling {
            return;
        }
        line.filling = true;
        let wait = if line.dropped { Duration::ZERO } else { HOLD };
        drop(rooms);
        let this = Arc::clone(self);
        self.runtime
            .spawn(async move { this.fill(key, wait, false).await });
    }

    /// A connection of this node follows room `key` from after `last_seq`: a room this node
    /// has no position in starts there.
    pub fn follow(&self, key: &str, last_seq: u64) {
        let mut rooms = lock(&self.rooms);
        if !rooms.contains_key(key) {
            forget_idle(&mut rooms, &self.hub);
            rooms.insert(key.to_owned(), RoomLine::starting_at(last_seq + 1));
        }
    }

    /// Looks in the store for messages this node may have missed in every room it follows
    /// (after the bus was down): a gap nothing later would reveal. One room at a time, so a
    /// node with many rooms does not take every database connection at once.
    pub fn catch_up(self: &Arc<Self>) {
        let keys: Vec<String> = lock(&self.rooms)
            .iter_mut()
            .filter(|(key, _)| self.hub.has_subscribers(&Topic::Room((*key).clone())))
            .filter_map(|(key, line)| {
                (!std::mem::replace(&mut line.filling, true)).then(|| key.clone())
            })
            .collect();
        let this = Arc::clone(self);
        self.runtime.spawn(async move {
            for key in keys {
                Arc::clone(&this).fill(key, Duration::ZERO, true).await;
            }
        });
    }

    /// After `wait`, reads from the store what the room's line is missing and delivers it,
    /// until nothing is held back; `catching_up` reads on until the store has nothing newer.
    async fn fill(self: Arc<Self>, key: String, wait: Duration, mut catching_up: bool) {
        tokio::time::sleep(wait).await;
        let (mut stuck, mut failures) = (0, 0);
        loop {
            let next = {
                let mut rooms = lock(&self.rooms);
                let Some(line) = rooms.get_mut(&key) else {
                    return;
                };
                if !catching_up && line.settled() {
                    // The gap closed by itself while the fill waited.
                    line.filling = false;
                    return;
                }
                line.dropped = false;
                line.next
            };
            let found = match self
                .store
                .messages_after(&key, next.saturating_sub(1), FILL_BATCH)
                .await
            {
                Ok(found) => found,
                Err(err) => {
                    failures += 1;
                    tracing::warn!(room = %key, %err, failures, "cannot read missed messages");
                    if failures < FILL_FAILURES {
                        let backoff = HOLD * 2u32.saturating_pow(failures);
                        tokio::time::sleep(backoff.min(FILL_RETRY_MAX)).await;
                        continue;
                    }
                    self.give_up(&key);
                    return;
                }
            };
            failures = 0;
            let more_stored = found.len() == FILL_BATCH;
            catching_up &= more_stored;
            match self.take_in(&key, next, found, more_stored, &mut stuck) {
                Fill::Done => return,
                Fill::Again => {}
                Fill::Wait => tokio::time::sleep(HOLD).await,
            }
        }
    }

    /// Delivers what a fill read from the store (from `next` on) and says what next.
    fn take_in(
        &self,
        key: &str,
        next: u64,
        found: Vec<Message>,
        more_stored: bool,
        stuck: &mut u32,
    ) -> Fill {
        let mut rooms = lock(&self.rooms);
        let Some(line) = rooms.get_mut(key) else {
            return Fill::Done;
        };
        for message in found {
            self.deliver_stored(line, message);
        }
        line.release(&self.hub);
        if line.settled() && !more_stored {
            line.filling = false;
            return Fill::Done;
        }
        if line.next > next {
            *stuck = 0;
            return Fill::Again;
        }
        *stuck += 1;
        if *stuck < FILL_ATTEMPTS {
            return Fill::Wait;
        }
        drop(rooms);
        self.give_up(key);
        Fill::Done
    }

    /// The store cannot give what is missing: deliver what is held rather than hold the
    /// room back for good.
    fn give_up(&self, key: &str) {
        let mut rooms = lock(&self.rooms);
        let Some(line) = rooms.get_mut(key) else {
            return;
        };
        if let Some(&first) = line.held.keys().next() {
            tracing::warn!(room = %key, from = line.next, to = first, "skipping messages the store does not give");
            line.next = first;
            line.release(&self.hub);
        }
        line.filling = false;
        line.dropped = false;
    }

    fn deliver_stored(&self, line: &mut RoomLine, message: Message) {
        if message.seq != line.next {
            return;
        }
        let delivery = match line.held.remove(&message.seq) {
            Some(held) => held,
            None => {
                let topic = Topic::Room(message.room_key.clone());
                Arc::new(Delivery::new(topic, Event::Message(message), None))
            }
        };
        self.hub.deliver(&delivery);
        line.next += 1;
    }
}

/// Makes room for one more room when the map is full: forgets a tenth, those nobody here
/// follows first, then those idle longest.
fn forget_idle(rooms: &mut HashMap<String, RoomLine>, hub: &Hub) {
    if rooms.len() < MAX_TRACKED_ROOMS {
        return;
    }
    let mut idle: Vec<(bool, Instant, String)> = rooms
        .iter()
        .filter(|(_, line)| !line.filling)
        .map(|(key, line)| {
            let followed = hub.has_subscribers(&Topic::Room(key.clone()));
            (followed, line.last_used, key.clone())
        })
        .collect();
    idle.sort_unstable();
    for (_, _, key) in idle.into_iter().take(MAX_TRACKED_ROOMS / 10 + 1) {
        rooms.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{
        hub::{ConnId, Inbox},
        model::{MessageKind, NewMessage, NewRoom, Profile},
    };

    const ROOM: &str = "ORDR22";

    /// A sequencer on a real SQLite store holding `n` messages of one room, and an inbox
    /// subscribed to the room.
    async fn setup(n: usize) -> (tempfile::TempDir, Arc<Sequencer>, Inbox, Vec<Message>) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("order.db").display());
        let store = crate::store::open(&url).await.unwrap();
        let room = NewRoom {
            key: ROOM.into(),
            name: String::new(),
            room_type: "chat".into(),
            max_users: 10,
            host_id: "ana".into(),
            created_at_ms: 0,
        };
        store.create_room(&room).await.unwrap();
        store.add_member(ROOM, "ana", 0).await.unwrap();
        let mut messages = Vec::new();
        for i in 0..n {
            let message = NewMessage {
                id: uuid::Uuid::new_v4().to_string(),
                room_key: ROOM.into(),
                sender: Profile {
                    user_id: "ana".into(),
                    username: "ana".into(),
                    image_url: String::new(),
                    email: String::new(),
                },
                body: format!("m{i}"),
                kind: MessageKind::Text,
                created_at_ms: 0,
            };
            messages.push(store.append_message(&message).await.unwrap().unwrap());
        }
        let hub = Arc::new(Hub::default());
        let inbox = hub.add(ConnId(1), 1024);
        hub.subscribe(ConnId(1), Topic::Room(ROOM.into()), 10);
        (dir, Sequencer::new(hub, store), inbox, messages)
    }

    fn delivery(message: &Message) -> Arc<Delivery> {
        let topic = Topic::Room(message.room_key.clone());
        Arc::new(Delivery::new(topic, Event::Message(message.clone()), None))
    }

    /// The sequence numbers delivered since the last look.
    fn delivered(inbox: &mut Inbox) -> Vec<u64> {
        inbox
            .queue
            .try_recv_many(usize::MAX)
            .iter()
            .map(|d| match &d.event {
                Event::Message(message) => message.seq,
                other => panic!("not a message: {other:?}"),
            })
            .collect()
    }

    #[tokio::test]
    async fn an_early_message_waits_for_the_one_before_it_and_a_repeat_is_dropped() {
        let (_dir, sequencer, mut inbox, m) = setup(3).await;
        sequencer.follow(ROOM, 0);
        sequencer.deliver(delivery(&m[0]));
        sequencer.deliver(delivery(&m[2]));
        assert_eq!(delivered(&mut inbox), [1]);
        sequencer.deliver(delivery(&m[1]));
        assert_eq!(delivered(&mut inbox), [2, 3]);
        sequencer.deliver(delivery(&m[1]));
        sequencer.deliver(delivery(&m[0]));
        tokio::time::sleep(HOLD * 2).await;
        assert!(delivered(&mut inbox).is_empty(), "no repeats, no fill");
    }

    #[tokio::test]
    async fn a_gap_still_open_after_the_hold_is_filled_from_the_store() {
        let (_dir, sequencer, mut inbox, m) = setup(4).await;
        sequencer.follow(ROOM, 0);
        sequencer.deliver(delivery(&m[0]));
        sequencer.deliver(delivery(&m[3]));
        assert_eq!(delivered(&mut inbox), [1]);
        tokio::time::sleep(HOLD * 3).await;
        assert_eq!(
            delivered(&mut inbox),
            [2, 3, 4],
            "2 and 3 read from the store"
        );
        // The lost ones arriving late are repeats now.
        sequencer.deliver(delivery(&m[1]));
        assert!(delivered(&mut inbox).is_empty());
    }

    #[tokio::test]
    async fn catching_up_finds_what_nothing_later_revealed() {
        let (_dir, sequencer, mut inbox, m) = setup(3).await;
        sequencer.follow(ROOM, 0);
        sequencer.deliver(delivery(&m[0]));
        assert_eq!(delivered(&mut inbox), [1]);
        sequencer.catch_up();
        tokio::time::sleep(HOLD).await;
        assert_eq!(delivered(&mut inbox), [2, 3]);
    }

    #[tokio::test]
    async fn a_room_first_seen_starts_where_its_follower_starts() {
        let (_dir, sequencer, mut inbox, m) = setup(3).await;
        // The follower's history went up to 1: 2 is next, 3 waits for it.
        sequencer.follow(ROOM, 1);
        sequencer.deliver(delivery(&m[2]));
        assert!(delivered(&mut inbox).is_empty());
        sequencer.deliver(delivery(&m[1]));
        assert_eq!(delivered(&mut inbox), [2, 3]);
    }

    #[tokio::test]
    async fn a_room_nobody_here_follows_keeps_no_position() {
        let (_dir, sequencer, mut inbox, m) = setup(3).await;
        let topic = Topic::Room(ROOM.into());
        sequencer.hub.unsubscribe(ConnId(1), &topic);
        sequencer.deliver(delivery(&m[0]));
        sequencer.deliver(delivery(&m[2]));
        assert!(lock(&sequencer.rooms).is_empty(), "nothing kept for nobody");
        // Someone follows it again after reading the history up to 2: 3 is next.
        sequencer.hub.subscribe(ConnId(1), topic, 10);
        sequencer.follow(ROOM, 2);
        sequencer.deliver(delivery(&m[2]));
        assert_eq!(delivered(&mut inbox), [3]);
    }
}
