//! Chat messages: posted in two halves, queued for storage and then announced, so that a
//! connection may read its next request while its last message is being stored.

use confab_shared::limits;

use super::{
    events::{Event, Topic},
    model::{Message, MessageKind, NewMessage, Profile},
    now_ms, Connection, Core, CoreError, CoreResult,
};
use crate::store::PendingMessage;

/// A chat message queued for storage ([`Core::queue_message`]).
#[must_use = "a queued message is broadcast only once it is stored and announced"]
pub struct QueuedMessage {
    user: Profile,
    pending: PendingMessage,
}

impl QueuedMessage {
    /// Waits until the message is stored.
    pub async fn stored(self) -> CoreResult<StoredMessage> {
        let message = self.pending.await?.ok_or(CoreError::RoomNotFound)?;
        Ok(StoredMessage {
            user: self.user,
            message,
        })
    }
}

/// A chat message stored and not yet broadcast ([`Core::announce_message`]).
#[must_use = "a stored message reaches the room only once it is announced"]
pub struct StoredMessage {
    user: Profile,
    message: Message,
}

impl Core {
    /// Posting a chat message, first half: validates it and queues it for storage, which
    /// numbers it in the order queued. A connection can then read its next
    /// request while this one is stored, as long as it announces each stored message, with
    /// [`Self::announce_message`], in the order it queued them.
    pub async fn queue_message(
        &self,
        conn: &Connection,
        key: &str,
        text: &str,
        kind: MessageKind,
    ) -> CoreResult<QueuedMessage> {
        let body =
            limits::validate_chat_text(text).map_err(|e| CoreError::invalid(e.to_string()))?;
        let user = self.act_as_member(conn, key).await?;
        let new_message = NewMessage {
            id: uuid::Uuid::new_v4().to_string(),
            room_key: key.to_owned(),
            sender: user.clone(),
            body: body.to_owned(),
            kind,
            created_at_ms: now_ms(),
        };
        let pending = self.inner.store.queue_message(&new_message).await?;
        Ok(QueuedMessage { user, pending })
    }

    /// Broadcasts a stored message to its room; the sender's typing indicator ends with it.
    pub fn announce_message(&self, stored: StoredMessage) {
        let StoredMessage { user, message } = stored;
        let key = message.room_key.clone();
        if self.inner.typing.stop(&key, &user.user_id) {
            self.publish_typing(&key, &user, false);
        }
        self.publish(Topic::Room(key), Event::Message(message), None);
    }
}
