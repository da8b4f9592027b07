//! Who is online: signed-in connections per user on this node, with the profile they signed
//! in with, and the users other nodes report. A user with several tabs, on however many
//! nodes, counts once, and goes offline when their last connection anywhere closes.

use std::{
    borrow::Borrow,
    collections::{BTreeSet, HashMap, HashSet},
    hash::{Hash, Hasher},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use super::model::{Member, Profile};
use crate::lock;

#[derive(Default)]
pub struct Presence {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// This node's users: how many signed-in connections each has here.
    here: HashMap<HereUser, usize>,
    /// Other nodes' users, by node.
    elsewhere: HashMap<String, NodeUsers>,
}

/// How long a departure announced by another node outweighs snapshots of that node: longer
/// than reading a snapshot takes, so one read just before the departure cannot bring the
/// user back.
pub const DEPARTURE_MEMORY: Duration = Duration::from_secs(5);

/// A user with connections on this node, by id: the profile the newest of them signed in
/// with, shared with the hub's entry for that connection. The map is keyed by the profile's
/// own id rather than a copy of it, since every signed-in user has an entry.
struct HereUser(Arc<Profile>);

impl Borrow<str> for HereUser {
    fn borrow(&self) -> &str {
        &self.0.user_id
    }
}

// Hashed and compared as the id alone, as `Borrow<str>` requires.
impl Hash for HereUser {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.user_id.as_str().hash(state);
    }
}

impl PartialEq for HereUser {
    fn eq(&self, other: &Self) -> bool {
        self.0.user_id == other.0.user_id
    }
}

impl Eq for HereUser {}

#[derive(Default)]
struct NodeUsers {
    users: HashMap<String, Profile>,
    /// Users the node's last snapshot lacked. A snapshot read just before an arrival can
    /// reach this node just after the arrival's announcement; a user is dropped only when
    /// two snapshots in a row lack them, so nobody flaps offline and back.
    unseen: HashSet<String>,
    /// Users the node announced gone, and when: a snapshot read before the departure must
    /// not bring them back.
    departed: HashMap<String, Instant>,
}

/// What one connection signing in or out changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// The user's first connection on this node opened, or their last one here closed.
    pub here: bool,
    /// The user came online, or went offline, everywhere.
    pub everywhere: bool,
}

impl Presence {
    /// Counts one more connection here for `profile`'s user (and keeps the newest profile).
    pub fn arrive(&self, profile: &Arc<Profile>) -> Change {
        let mut inner = lock(&self.inner);
        let was_online = inner.is_online(&profile.user_id);
        // Taken out and put back, so that the key is the newest profile.
        let count = inner.here.remove(profile.user_id.as_str()).unwrap_or(0) + 1;
        inner.here.insert(HereUser(Arc::clone(profile)), count);
        Change {
            here: count == 1,
            everywhere: !was_online,
        }
    }

    /// Counts one connection fewer here.
    pub fn depart(&self, user_id: &str) -> Change {
        let mut inner = lock(&self.inner);
        let here = match inner.here.get_mut(user_id) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => {
                inner.here.remove(user_id);
                true
            }
            None => false,
        };
        Change {
            here,
            everywhere: here && !inner.is_online(user_id),
        }
    }

    /// Updates an online user's profile (name, avatar); nobody comes or goes.
    pub fn refresh(&self, profile: &Arc<Profile>) {
        let mut inner = lock(&self.inner);
        if let Some(count) = inner.here.remove(profile.user_id.as_str()) {
            inner.here.insert(HereUser(Arc::clone(profile)), count);
        }
    }

    /// Node `node` reports `profile` online there; `true` when the user came online.
    pub fn arrive_elsewhere(&self, node: &str, profile: &Profile) -> bool {
        let mut inner = lock(&self.inner);
        let was_online = inner.is_online(&profile.user_id);
        let there = inner.elsewhere.entry(node.to_owned()).or_default();
        there.unseen.remove(&profile.user_id);
        there.departed.remove(&profile.user_id);
        there.users.insert(profile.user_id.clone(), profile.clone());
        !was_online
    }

    /// Node `node` reports `user_id` gone from there; `true` when the user went offline.
    pub fn depart_elsewhere(&self, node: &str, user_id: &str) -> bool {
        let mut inner = lock(&self.inner);
        let there = inner.elsewhere.entry(node.to_owned()).or_default();
        there.departed.insert(user_id.to_owned(), Instant::now());
        let removed = there.users.remove(user_id).is_some();
        removed && !inner.is_online(user_id)
    }

    /// Takes in a snapshot of node `node`'s users (empty when the node is gone); `true` when
    /// anyone came online or went offline.
    pub fn replace_node(&self, node: &str, snapshot: HashMap<String, Profile>) -> bool {
        let mut inner = lock(&self.inner);
        let before = inner.online_ids_owned();
        let there = inner.elsewhere.entry(node.to_owned()).or_default();
        there
            .departed
            .retain(|_, at| at.elapsed() < DEPARTURE_MEMORY);
        let missing: Vec<String> = there
            .users
            .keys()
            .filter(|id| !snapshot.contains_key(*id))
            .cloned()
            .collect();
        for id in missing {
            if !there.unseen.insert(id.clone()) {
                there.unseen.remove(&id);
                there.users.remove(&id);
            }
        }
        for (id, profile) in snapshot {
            if there.departed.contains_key(&id) {
                continue;
            }
            there.unseen.remove(&id);
            there.users.insert(id, profile);
        }
        if there.users.is_empty() && there.departed.is_empty() {
            inner.elsewhere.remove(node);
        }
        before != inner.online_ids_owned()
    }

    /// Node `node` left: its users are gone at once. `true` when anyone went offline.
    pub fn forget_node(&self, node: &str) -> bool {
        let mut inner = lock(&self.inner);
        let before = inner.online_ids_owned();
        inner.elsewhere.remove(node);
        before != inner.online_ids_owned()
    }

    /// The nodes other than this one that have reported users.
    pub fn other_nodes(&self) -> Vec<String> {
        lock(&self.inner).elsewhere.keys().cloned().collect()
    }

    /// The profile of `user_id` if they have a connection on this node.
    pub fn here_profile(&self, user_id: &str) -> Option<Profile> {
        lock(&self.inner)
            .here
            .get_key_value(user_id)
            .map(|(user, _)| Profile::clone(&user.0))
    }

    /// Whether anyone has a connection on this node.
    pub fn has_here(&self) -> bool {
        !lock(&self.inner).here.is_empty()
    }

    /// This node's users, one profile each.
    pub fn here(&self) -> Vec<Profile> {
        lock(&self.inner)
            .here
            .keys()
            .map(|user| Profile::clone(&user.0))
            .collect()
    }

    pub fn is_online(&self, user_id: &str) -> bool {
        lock(&self.inner).is_online(user_id)
    }

    /// Sets each member's `online`, under one lock: a contract 000 join lists the whole
    /// room.
    pub fn mark_online(&self, members: &mut [Member]) {
        let inner = lock(&self.inner);
        for member in members {
            member.online = inner.is_online(&member.profile.user_id);
        }
    }

    /// Everyone online, on any node, by name.
    pub fn online(&self) -> Vec<Profile> {
        let inner = lock(&self.inner);
        let mut users: HashMap<&str, &Profile> = HashMap::new();
        for there in inner.elsewhere.values() {
            for (id, profile) in &there.users {
                users.insert(id, profile);
            }
        }
        // This node's own profiles win: they are the newest it knows.
        for user in inner.here.keys() {
            users.insert(&user.0.user_id, &user.0);
        }
        let mut users: Vec<Profile> = users.into_values().cloned().collect();
        users.sort_by(|a, b| {
            a.username
                .cmp(&b.username)
                .then_with(|| a.user_id.cmp(&b.user_id))
        });
        users
    }
}

impl Inner {
    fn is_online(&self, user_id: &str) -> bool {
        self.here.contains_key(user_id)
            || self
                .elsewhere
                .values()
                .any(|there| there.users.contains_key(user_id))
    }

    fn online_ids_owned(&self) -> BTreeSet<String> {
        let here = self.here.keys().map(|user| &user.0.user_id);
        here.chain(self.elsewhere.values().flat_map(|there| there.users.keys()))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(id: &str) -> Profile {
        Profile::known_by_id(id)
    }

    /// A profile signing in on this node, as the core shares it.
    fn here(id: &str) -> Arc<Profile> {
        Arc::new(profile(id))
    }

    const BOTH: Change = Change {
        here: true,
        everywhere: true,
    };
    const NEITHER: Change = Change {
        here: false,
        everywhere: false,
    };
    const HERE_ONLY: Change = Change {
        here: true,
        everywhere: false,
    };

    #[test]
    fn a_user_with_several_connections_counts_once_until_the_last_goes() {
        let presence = Presence::default();
        assert_eq!(presence.arrive(&here("ana")), BOTH);
        assert_eq!(presence.arrive(&here("ana")), NEITHER);
        assert_eq!(presence.arrive(&here("ben")), BOTH);
        assert_eq!(presence.online().len(), 2);
        assert_eq!(presence.depart("ana"), NEITHER);
        assert!(presence.is_online("ana"));
        assert_eq!(presence.depart("ana"), BOTH);
        assert!(!presence.is_online("ana"));
        assert_eq!(
            presence.depart("ana"),
            NEITHER,
            "departing twice changes nothing"
        );
        assert_eq!(presence.online(), vec![profile("ben")]);
    }

    #[test]
    fn this_node_keeps_the_profile_its_newest_connection_or_update_gave() {
        let presence = Presence::default();
        let renamed = |name: &str| {
            Arc::new(Profile {
                username: name.into(),
                ..profile("ana")
            })
        };
        presence.arrive(&renamed("Ana"));
        presence.arrive(&renamed("Ana B"));
        assert_eq!(presence.here_profile("ana").unwrap().username, "Ana B");
        presence.refresh(&renamed("Ana C"));
        assert_eq!(presence.here()[0].username, "Ana C");
        assert_eq!(presence.depart("ana"), NEITHER, "still two connections");
        presence.refresh(&here("ben"));
        assert!(!presence.is_online("ben"), "a refresh brings nobody online");
        assert_eq!(presence.depart("ana"), BOTH);
        assert_eq!(presence.here_profile("ana"), None);
    }

    #[test]
    fn a_user_on_two_nodes_stays_online_until_both_are_gone() {
        let presence = Presence::default();
        assert!(presence.arrive_elsewhere("n2", &profile("ana")));
        assert_eq!(presence.arrive(&here("ana")), HERE_ONLY);
        assert_eq!(presence.online(), vec![profile("ana")], "counted once");
        assert_eq!(presence.depart("ana"), HERE_ONLY);
        assert!(presence.is_online("ana"), "still on n2");
        assert!(presence.depart_elsewhere("n2", "ana"));
        assert!(!presence.is_online("ana"));
    }

    #[test]
    fn a_node_that_is_gone_takes_only_its_own_users_offline() {
        let presence = Presence::default();
        presence.arrive(&here("ana"));
        let n2 = HashMap::from([
            ("ana".to_owned(), profile("ana")),
            ("ben".to_owned(), profile("ben")),
        ]);
        assert!(presence.replace_node("n2", n2.clone()));
        assert!(!presence.replace_node("n2", n2), "nothing changed");
        assert!(
            !presence.replace_node("n2", HashMap::new()),
            "gone once: not yet"
        );
        assert!(
            presence.replace_node("n2", HashMap::new()),
            "gone twice: offline"
        );
        assert_eq!(presence.online(), vec![profile("ana")]);
        assert!(presence.other_nodes().is_empty());
    }

    #[test]
    fn a_user_is_dropped_by_snapshots_only_when_two_in_a_row_lack_them() {
        let presence = Presence::default();
        // The announcement arrives before a snapshot read just before the arrival.
        assert!(presence.arrive_elsewhere("n2", &profile("ben")));
        assert!(!presence.replace_node("n2", HashMap::new()));
        assert!(
            presence.is_online("ben"),
            "one stale snapshot does not drop ben"
        );
        let with_ben = HashMap::from([("ben".to_owned(), profile("ben"))]);
        assert!(!presence.replace_node("n2", with_ben));
        assert!(!presence.replace_node("n2", HashMap::new()));
        assert!(
            presence.replace_node("n2", HashMap::new()),
            "gone twice: offline"
        );
        assert!(!presence.is_online("ben"));
    }

    #[test]
    fn a_snapshot_read_before_a_departure_does_not_bring_the_user_back() {
        let presence = Presence::default();
        let with_ben = HashMap::from([("ben".to_owned(), profile("ben"))]);
        assert!(presence.replace_node("n2", with_ben.clone()));
        assert!(presence.depart_elsewhere("n2", "ben"));
        assert!(
            !presence.replace_node("n2", with_ben),
            "the stale snapshot is ignored"
        );
        assert!(!presence.is_online("ben"));
        assert!(
            presence.arrive_elsewhere("n2", &profile("ben")),
            "a new arrival counts"
        );
    }
}
