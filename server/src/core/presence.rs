//! Who is online: signed-in connections per user. A user with several tabs counts once and
//! goes offline when the last one closes.

use std::{collections::HashMap, sync::Mutex};

#[derive(Default)]
pub struct Presence {
    connections: Mutex<HashMap<String, usize>>,
}

impl Presence {
    /// Counts one more connection for `user_id`; `true` when the user just came online.
    pub fn arrive(&self, user_id: &str) -> bool {
        let mut connections = self.lock();
        let count = connections.entry(user_id.to_owned()).or_insert(0);
        *count += 1;
        *count == 1
    }

    /// Counts one connection fewer; `true` when the user just went offline.
    pub fn depart(&self, user_id: &str) -> bool {
        let mut connections = self.lock();
        match connections.get_mut(user_id) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => {
                connections.remove(user_id);
                true
            }
            None => false,
        }
    }

    pub fn is_online(&self, user_id: &str) -> bool {
        self.lock().contains_key(user_id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
