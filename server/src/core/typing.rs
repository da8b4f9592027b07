//! Typing indicators that end by themselves: an indicator not refreshed within the TTL is
//! swept and reported as stopped.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use super::model::Profile;
use crate::lock;

pub struct Typing {
    ttl: Duration,
    active: Mutex<HashMap<(String, String), (Instant, Profile)>>,
}

impl Typing {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            active: Mutex::default(),
        }
    }

    /// Records that `user` types in `room_key`; `true` when they were not typing before.
    pub fn start(&self, room_key: &str, user: &Profile, now: Instant) -> bool {
        let key = (room_key.to_owned(), user.user_id.clone());
        lock(&self.active)
            .insert(key, (now + self.ttl, user.clone()))
            .is_none()
    }

    /// `true` when `user_id` was typing in `room_key`.
    pub fn stop(&self, room_key: &str, user_id: &str) -> bool {
        lock(&self.active)
            .remove(&(room_key.to_owned(), user_id.to_owned()))
            .is_some()
    }

    /// Removes and returns the indicators whose time ran out: (room key, user).
    pub fn expire(&self, now: Instant) -> Vec<(String, Profile)> {
        let mut active = lock(&self.active);
        let expired: Vec<(String, String)> = active
            .iter()
            .filter(|(_, (deadline, _))| *deadline <= now)
            .map(|(key, _)| key.clone())
            .collect();
        expired
            .into_iter()
            .filter_map(|key| active.remove(&key).map(|(_, user)| (key.0, user)))
            .collect()
    }
}
