//! What a member has read: a read position per user and room (the `seq` of the last message
//! they saw), kept by the server so that every device of theirs shows the same unread
//! counts (and is told at once when another one reads), and the overview of their rooms a
//! sidebar shows.

use super::{
    events::{Event, Topic},
    model::RoomSummary,
    now_ms, Connection, Core, CoreError, CoreResult,
};

impl Core {
    /// The caller's rooms with their newest message and unread count, the most recently
    /// active first (a room's newest message, or its creation when it has none).
    pub async fn rooms_overview(&self, conn: &Connection) -> CoreResult<Vec<RoomSummary>> {
        let user = self.signed_in(conn)?;
        let mut rooms = self.inner.store.room_summaries(&user.user_id).await?;
        rooms.sort_by_key(|summary| {
            let active = summary
                .last_message
                .as_ref()
                .map_or(summary.room.created_at_ms, |m| m.created_at_ms);
            (std::cmp::Reverse(active), summary.room.key.clone())
        });
        Ok(rooms)
    }

    /// Moves the caller's read position in room `key` forward to `seq`, which cannot pass
    /// the room's newest message.
    pub async fn read_up_to(&self, conn: &Connection, key: &str, seq: u64) -> CoreResult<()> {
        let user = self.signed_in(conn)?;
        let room = self.require_member(key, &user.user_id).await?;
        if seq > room.last_seq {
            return Err(CoreError::invalid(format!(
                "seq {seq} is past the room's newest message ({})",
                room.last_seq
            )));
        }
        self.inner
            .store
            .set_read_position(&user.user_id, key, seq, now_ms())
            .await?;
        // The user's other devices update their counts at once.
        let event = Event::ReadUpTo {
            room_key: key.to_owned(),
            seq,
        };
        self.publish(Topic::User(user.user_id), event, None);
        Ok(())
    }
}
