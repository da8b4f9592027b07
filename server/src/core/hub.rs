//! This node's connections and their subscriptions, and delivery to them.
//!
//! Every connection has a bounded mailbox. Delivery never waits: a full mailbox means the
//! connection cannot keep up, so it is flagged as overflowed and its dialect closes it,
//! rather than memory growing or the room stalling behind it.
//!
//! Three events change subscriptions where they are delivered, on every node alike: a
//! member's removal and a room's closing end the room's subscriptions once delivered (so
//! the removed see why), and a revocation closes every connection of its user.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, RwLock,
    },
};

use super::{
    events::{Delivery, Event, Topic},
    mailbox::{self, End, Refused},
    model::Profile,
};
use crate::{read, write};

/// Identifies a connection on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

struct ConnEntry {
    mailbox: mailbox::Sender,
    /// Shared with presence.
    user: Option<Arc<Profile>>,
    /// The user's id, shared by the connection's subscriptions: delivery compares it with
    /// the audience's for every subscriber, and here it is one hop away, not two.
    user_id: Option<Arc<str>>,
    /// Subscribed topics, each with when it was last used (a counter), for eviction.
    topics: Followed,
    clock: u64,
}

/// A connection's topics, each with when it was last used. A list, not a map: a connection
/// follows a few (at most `MAX_ROOMS_PER_CONNECTION` and one more), and a hash map's
/// smallest table and its hasher are about 200 bytes, which every connection kept.
#[derive(Default)]
struct Followed(Vec<(Topic, u64)>);

impl Followed {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn contains_key(&self, topic: &Topic) -> bool {
        self.0.iter().any(|(followed, _)| followed == topic)
    }

    fn get_mut(&mut self, topic: &Topic) -> Option<&mut u64> {
        self.0
            .iter_mut()
            .find(|(followed, _)| followed == topic)
            .map(|(_, used)| used)
    }

    /// Follows `topic`, which it does not yet.
    fn insert(&mut self, topic: Topic, used: u64) {
        self.0.push((topic, used));
    }

    fn remove(&mut self, topic: &Topic) {
        self.0.retain(|(followed, _)| followed != topic);
    }

    /// Stops following the topic used longest ago, and returns it.
    fn remove_oldest(&mut self) -> Option<Topic> {
        let (oldest, _) = self
            .0
            .iter()
            .enumerate()
            .min_by_key(|(_, (_, used))| *used)?;
        Some(self.0.swap_remove(oldest).0)
    }

    fn into_keys(self) -> impl Iterator<Item = Topic> {
        self.0.into_iter().map(|(topic, _)| topic)
    }
}

#[derive(Default)]
struct Registry {
    /// Boxed: a table keeps a third or more of its slots free, and an entry is 64 bytes.
    conns: HashMap<ConnId, Box<ConnEntry>>,
    /// Topic → its subscribers.
    topics: HashMap<Topic, HashMap<ConnId, Subscriber>>,
}

/// A subscription: the id of the user its connection was signed in as, and its mailbox.
type Subscriber = (Option<Arc<str>>, mailbox::Sender);

#[derive(Default)]
pub struct Hub {
    registry: RwLock<Registry>,
    /// Mailboxes holding announcements that wait for [`Hub::wake_deferred`]; `None`: they
    /// wake their connections at once.
    deferred: Option<Arc<mailbox::DeferredWakes>>,
    /// Set once the server shuts down: every mailbox is ended, and so is any added later.
    closing: AtomicBool,
}

/// The receiving end of a connection's mailbox.
pub struct Inbox {
    pub queue: mailbox::Receiver,
    /// Says when the hub ended the mailbox: a delivery found it full, the connection's user
    /// was banned or the server is shutting down. The dialect closes the connection at once.
    pub ending: mailbox::Ending,
}

impl Hub {
    pub fn add(&self, conn: ConnId, capacity: usize) -> Inbox {
        let (mailbox, receiver) = mailbox::mailbox(capacity, self.deferred.as_ref());
        let mut registry = write(&self.registry);
        // Read under the lock that `close_all` ends the mailboxes under: a connection added
        // as the server shuts down is either ended there or here.
        if self.closing.load(Ordering::Acquire) {
            mailbox.end(End::ShuttingDown);
        }
        registry.conns.insert(
            conn,
            Box::new(ConnEntry {
                mailbox,
                user: None,
                user_id: None,
                topics: Followed::default(),
                clock: 0,
            }),
        );
        Inbox {
            ending: receiver.ending(),
            queue: receiver,
        }
    }

    /// A hub whose announcements ([`Event::may_wait`]) wait for [`Hub::wake_deferred`].
    pub fn deferring_announcements() -> Self {
        Self {
            deferred: Some(Arc::default()),
            ..Self::default()
        }
    }

    /// Wakes the connections whose mailboxes hold announcements that have waited since the
    /// last call.
    pub fn wake_deferred(&self) {
        if let Some(deferred) = &self.deferred {
            deferred.wake_all();
        }
    }

    pub fn remove(&self, conn: ConnId) {
        let mut registry = write(&self.registry);
        if let Some(entry) = registry.conns.remove(&conn) {
            for topic in entry.topics.into_keys() {
                registry.unsubscribe_topic(conn, &topic);
            }
        }
    }

    pub fn user(&self, conn: ConnId) -> Option<Profile> {
        read(&self.registry)
            .conns
            .get(&conn)
            .and_then(|entry| entry.user.as_deref().cloned())
    }

    /// Replaces the profile of the connection's signed-in user, keeping its subscriptions.
    pub fn update_user(&self, conn: ConnId, user: Arc<Profile>) {
        if let Some(entry) = write(&self.registry).conns.get_mut(&conn) {
            if entry
                .user
                .as_ref()
                .is_some_and(|u| u.user_id == user.user_id)
            {
                entry.user = Some(user);
            }
        }
    }

    /// Sets who the connection is signed in as, dropping its subscriptions; returns who it
    /// was before.
    pub fn set_user(&self, conn: ConnId, user: Option<Arc<Profile>>) -> Option<Arc<Profile>> {
        let mut registry = write(&self.registry);
        let entry = registry.conns.get_mut(&conn)?;
        entry.user_id = user.as_ref().map(|u| Arc::from(u.user_id.as_str()));
        let previous = std::mem::replace(&mut entry.user, user);
        let topics = std::mem::take(&mut entry.topics);
        for topic in topics.into_keys() {
            registry.unsubscribe_topic(conn, &topic);
        }
        previous
    }

    /// Subscribes the connection to `topic` (or marks it used). A connection holds at most
    /// `limit` topics: past it, the least recently used one is dropped and returned.
    pub fn subscribe(&self, conn: ConnId, topic: Topic, limit: usize) -> Option<Topic> {
        let mut registry = write(&self.registry);
        let entry = registry.conns.get_mut(&conn)?;
        entry.clock += 1;
        let now = entry.clock;
        if let Some(used) = entry.topics.get_mut(&topic) {
            *used = now;
            return None;
        }
        let evicted = if entry.topics.len() >= limit.max(1) {
            entry.topics.remove_oldest()
        } else {
            None
        };
        entry.topics.insert(topic.clone(), now);
        let subscriber = (entry.user_id.clone(), entry.mailbox.clone());
        registry
            .topics
            .entry(topic)
            .or_default()
            .insert(conn, subscriber);
        if let Some(evicted) = &evicted {
            registry.unsubscribe_topic(conn, evicted);
        }
        evicted
    }

    pub fn unsubscribe(&self, conn: ConnId, topic: &Topic) {
        let mut registry = write(&self.registry);
        if let Some(entry) = registry.conns.get_mut(&conn) {
            entry.topics.remove(topic);
        }
        registry.unsubscribe_topic(conn, topic);
    }

    /// Unsubscribes every connection of `user_id` from `topic`.
    pub fn unsubscribe_user(&self, user_id: &str, topic: &Topic) {
        let mut registry = write(&self.registry);
        let conns: Vec<ConnId> = registry
            .topics
            .get(topic)
            .map(|subs| {
                subs.iter()
                    .filter(|(_, (user, _))| user.as_deref() == Some(user_id))
                    .map(|(conn, _)| *conn)
                    .collect()
            })
            .unwrap_or_default();
        for conn in conns {
            if let Some(entry) = registry.conns.get_mut(&conn) {
                entry.topics.remove(topic);
            }
            registry.unsubscribe_topic(conn, topic);
        }
    }

    pub fn is_subscribed(&self, conn: ConnId, topic: &Topic) -> bool {
        read(&self.registry)
            .conns
            .get(&conn)
            .is_some_and(|entry| entry.topics.contains_key(topic))
    }

    /// Every (user, room) pair of a signed-in connection here and a room it follows.
    pub fn room_followers(&self) -> Vec<(String, String)> {
        let registry = read(&self.registry);
        let mut pairs: Vec<(String, String)> = registry
            .topics
            .iter()
            .filter_map(|(topic, subscribers)| match topic {
                Topic::Room(key) => Some((key, subscribers)),
                _ => None,
            })
            .flat_map(|(key, subscribers)| {
                subscribers
                    .values()
                    .filter_map(|(user, _)| Some((user.as_deref()?.to_owned(), key.clone())))
            })
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        pairs
    }

    /// Whether any connection of this node is subscribed to `topic`.
    pub fn has_subscribers(&self, topic: &Topic) -> bool {
        read(&self.registry).topics.contains_key(topic)
    }

    /// Hands `delivery` to every local subscriber of its topic, without waiting, and makes
    /// the changes to subscriptions that moderation events call for.
    pub fn deliver(&self, delivery: &Arc<Delivery>) {
        match (&delivery.event, &delivery.topic) {
            (Event::AccessRevoked, Topic::User(user_id)) => self.revoke_user(user_id),
            (Event::MemberRemoved { user, .. }, topic) => {
                self.hand_out(delivery);
                self.unsubscribe_user(&user.user_id, topic);
            }
            (Event::RoomClosed { .. }, topic) => {
                self.hand_out(delivery);
                self.unsubscribe_all(topic);
            }
            _ => self.hand_out(delivery),
        }
    }

    /// Tells this node's presence watchers that the online list changed. Every node tells
    /// its own, so this is not published to the others.
    pub fn presence_changed(&self) {
        let delivery = Delivery::new(Topic::Presence, Event::PresenceChanged, None);
        self.deliver(&Arc::new(delivery));
    }

    /// Ends every connection's mailbox, and any added from now on, for the server's shutdown.
    pub fn close_all(&self) {
        let registry = write(&self.registry);
        self.closing.store(true, Ordering::Release);
        for entry in registry.conns.values() {
            entry.mailbox.end(End::ShuttingDown);
        }
    }

    /// Closes every connection signed in as `user_id` here (the dialects see
    /// [`End::Revoked`]).
    fn revoke_user(&self, user_id: &str) {
        let registry = read(&self.registry);
        for entry in registry.conns.values() {
            if entry.user.as_ref().is_some_and(|u| u.user_id == user_id) {
                entry.mailbox.end(End::Revoked);
            }
        }
    }

    /// Ends every subscription to `topic`.
    fn unsubscribe_all(&self, topic: &Topic) {
        let mut registry = write(&self.registry);
        let Some(subscribers) = registry.topics.remove(topic) else {
            return;
        };
        for conn in subscribers.keys() {
            if let Some(entry) = registry.conns.get_mut(conn) {
                entry.topics.remove(topic);
            }
        }
    }

    fn hand_out(&self, delivery: &Arc<Delivery>) {
        let registry = read(&self.registry);
        let Some(subscribers) = registry.topics.get(&delivery.topic) else {
            return;
        };
        for (user, mailbox) in subscribers.values() {
            if !delivery.audience.includes(user.as_deref()) {
                continue;
            }
            match mailbox.try_send(Arc::clone(delivery)) {
                Ok(()) | Err(Refused::Closed) => {}
                Err(Refused::Full) => {
                    if mailbox.end(End::Overflowed) {
                        metrics::counter!(crate::metrics::OUTBOUND_OVERFLOWS).increment(1);
                    }
                }
            }
        }
    }
}

impl Registry {
    fn unsubscribe_topic(&mut self, conn: ConnId, topic: &Topic) {
        if let Some(subscribers) = self.topics.get_mut(topic) {
            subscribers.remove(&conn);
            if subscribers.is_empty() {
                self.topics.remove(topic);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    fn profile(user_id: &str) -> Profile {
        Profile::known_by_id(user_id)
    }

    #[test]
    fn past_its_limit_a_connection_drops_the_topic_used_longest_ago() {
        let hub = Hub::default();
        let _inbox = hub.add(ConnId(1), 4);
        let room = |key: &str| Topic::Room(key.into());
        assert_eq!(hub.subscribe(ConnId(1), room("a"), 2), None);
        assert_eq!(hub.subscribe(ConnId(1), room("b"), 2), None);
        assert_eq!(hub.subscribe(ConnId(1), room("a"), 2), None, "used again");
        assert_eq!(hub.subscribe(ConnId(1), room("c"), 2), Some(room("b")));
        assert!(hub.is_subscribed(ConnId(1), &room("a")));
        assert!(!hub.is_subscribed(ConnId(1), &room("b")));
        assert!(!hub.has_subscribers(&room("b")), "nobody else followed it");
        hub.unsubscribe(ConnId(1), &room("a"));
        assert!(!hub.is_subscribed(ConnId(1), &room("a")));
        assert!(hub.is_subscribed(ConnId(1), &room("c")));
    }

    #[test]
    fn closing_ends_every_mailbox_and_any_added_later() {
        let hub = Hub::default();
        let before = hub.add(ConnId(1), 4);
        assert_eq!(before.ending.wait().now_or_never(), None);
        hub.close_all();
        assert_eq!(before.ending.wait().now_or_never(), Some(End::ShuttingDown));
        let after = hub.add(ConnId(2), 4);
        assert_eq!(after.ending.wait().now_or_never(), Some(End::ShuttingDown));
    }

    #[test]
    fn a_revocation_ends_only_its_users_mailboxes() {
        let hub = Hub::default();
        let ana = hub.add(ConnId(1), 4);
        let ben = hub.add(ConnId(2), 4);
        hub.set_user(ConnId(1), Some(Arc::new(profile("ana"))));
        hub.set_user(ConnId(2), Some(Arc::new(profile("ben"))));
        hub.revoke_user("ana");
        assert_eq!(ana.ending.wait().now_or_never(), Some(End::Revoked));
        assert_eq!(ben.ending.wait().now_or_never(), None);
    }
}
