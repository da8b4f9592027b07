//! Notifications (stored, delivered to the user's notification sockets, listed and marked
//! read) and pings (not stored: they reach the sockets open at the time).

use super::{
    events::{Event, Topic},
    model::{Notification, Profile},
    now_ms, Connection, Core, CoreError, CoreResult,
};

/// Notifications sent on connect, or listed, at most.
pub const MAX_BACKLOG: usize = 100;

impl Core {
    /// Stores a notification and then delivers it to the user's notification sockets.
    pub async fn notify(&self, notification: Notification) -> CoreResult<Notification> {
        self.inner.store.insert_notification(&notification).await?;
        self.publish(
            Topic::User(notification.user_id.clone()),
            Event::Notification(notification.clone()),
            None,
        );
        Ok(notification)
    }

    /// Delivers what is addressed to the signed-in user (notifications, pings, where they
    /// have read to) to this connection from now on.
    pub fn watch_user(&self, conn: &Connection) -> CoreResult<()> {
        let user = self.signed_in(conn)?;
        self.watch(conn, Topic::User(user.user_id));
        Ok(())
    }

    /// What a notification socket that opened at `opened_at_ms` sends first, oldest first:
    /// the signed-in user's notifications no socket has been sent yet, and those created
    /// since it opened. A notification published while the socket was opening reached the
    /// user's other sockets live, and may have been marked delivered by one of them before
    /// this one subscribed; the client saw this socket open, so it gets it too.
    pub async fn undelivered_notifications(
        &self,
        conn: &Connection,
        opened_at_ms: i64,
    ) -> CoreResult<Vec<Notification>> {
        let user = self.signed_in(conn)?;
        Ok(self
            .store()
            .undelivered_notifications(&user.user_id, opened_at_ms, MAX_BACKLOG)
            .await?)
    }

    /// Records that a socket is sending notification `id`, before its frame is written, so
    /// that a socket of the user that connects meanwhile does not send it from the backlog
    /// too. `true` when this call marked it; the caller then owes
    /// [`Core::unmark_delivered`] if the write fails.
    pub async fn mark_delivered(&self, id: &str) -> CoreResult<bool> {
        Ok(self.inner.store.mark_delivered(id, now_ms()).await?)
    }

    /// Returns notification `id` to the backlog: its frame was not written.
    pub async fn unmark_delivered(&self, id: &str) -> CoreResult<()> {
        Ok(self.inner.store.unmark_delivered(id).await?)
    }

    /// A user's newest notifications, newest first.
    pub async fn notifications_of(&self, user_id: &str) -> CoreResult<Vec<Notification>> {
        Ok(self.store().notifications_of(user_id, MAX_BACKLOG).await?)
    }

    /// Marks a user's notification read; `NotificationNotFound` when it is not theirs or
    /// does not exist.
    pub async fn mark_read(&self, user_id: &str, id: &str) -> CoreResult<()> {
        if self.inner.store.mark_read(user_id, id, now_ms()).await? {
            Ok(())
        } else {
            Err(CoreError::NotificationNotFound)
        }
    }

    /// Pings everyone online named `username` (not stored). Returns how many users it
    /// reached; 0 when nobody by that name is online.
    pub fn ping(&self, from: &Profile, username: &str, join_url: Option<String>) -> usize {
        let targets: Vec<Profile> = self
            .online_users()
            .into_iter()
            .filter(|user| user.username == username)
            .collect();
        for target in &targets {
            let event = Event::Ping {
                from_username: from.username.clone(),
                join_url: join_url.clone(),
                at_ms: now_ms(),
            };
            self.publish(Topic::User(target.user_id.clone()), event, None);
        }
        targets.len()
    }
}
