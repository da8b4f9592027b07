//! Who is online: signed-in connections per user, with the profile they signed in with. A
//! user with several tabs counts once and goes offline when the last one closes.

use std::{collections::HashMap, sync::Mutex};

use super::model::Profile;

#[derive(Default)]
pub struct Presence {
    online: Mutex<HashMap<String, (usize, Profile)>>,
}

impl Presence {
    /// Counts one more connection for `profile`'s user (and keeps the newest profile);
    /// `true` when the user just came online.
    pub fn arrive(&self, profile: &Profile) -> bool {
        let mut online = self.lock();
        let entry = online
            .entry(profile.user_id.clone())
            .or_insert_with(|| (0, profile.clone()));
        entry.0 += 1;
        entry.1 = profile.clone();
        entry.0 == 1
    }

    /// Counts one connection fewer; `true` when the user just went offline.
    pub fn depart(&self, user_id: &str) -> bool {
        let mut online = self.lock();
        match online.get_mut(user_id) {
            Some((count, _)) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => {
                online.remove(user_id);
                true
            }
            None => false,
        }
    }

    /// Updates an online user's profile (name, avatar); nobody comes or goes.
    pub fn refresh(&self, profile: &Profile) {
        if let Some((_, known)) = self.lock().get_mut(&profile.user_id) {
            *known = profile.clone();
        }
    }

    pub fn is_online(&self, user_id: &str) -> bool {
        self.lock().contains_key(user_id)
    }

    /// Everyone online, by name.
    pub fn online(&self) -> Vec<Profile> {
        let mut users: Vec<Profile> = self
            .lock()
            .values()
            .map(|(_, profile)| profile.clone())
            .collect();
        users.sort_by(|a, b| {
            a.username
                .cmp(&b.username)
                .then_with(|| a.user_id.cmp(&b.user_id))
        });
        users
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (usize, Profile)>> {
        self.online
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(id: &str) -> Profile {
        Profile {
            user_id: id.into(),
            username: id.into(),
            image_url: String::new(),
            email: String::new(),
        }
    }

    #[test]
    fn a_user_with_several_connections_counts_once_until_the_last_goes() {
        let presence = Presence::default();
        assert!(presence.arrive(&profile("ana")));
        assert!(!presence.arrive(&profile("ana")));
        assert!(presence.arrive(&profile("ben")));
        assert_eq!(presence.online().len(), 2);
        assert!(!presence.depart("ana"));
        assert!(presence.is_online("ana"));
        assert!(presence.depart("ana"));
        assert!(!presence.is_online("ana"));
        assert!(!presence.depart("ana"), "departing twice changes nothing");
        assert_eq!(presence.online(), vec![profile("ben")]);
    }
}
