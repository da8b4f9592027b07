//! Chat messages: queued for storage, and broadcast by the store's writer the moment they
//! are committed, so that a connection may read its next request while its last message is
//! being stored, and a stored message reaches its room without waiting for its sender's
//! connection to be scheduled again.

use confab_shared::limits;
use tokio::sync::oneshot;

use super::{
    events::{Event, Topic},
    model::{Message, MessageKind, NewMessage, Profile},
    now_ms, Connection, Core, CoreError, CoreResult,
};
use crate::store::{OnStored, StoreError, StoreResult};

/// A chat message queued for storage ([`Core::queue_message`]). It is broadcast once
/// stored whether or not anyone waits for it.
pub struct QueuedMessage(oneshot::Receiver<CoreResult<()>>);

impl QueuedMessage {
    /// Waits until the message is stored and broadcast, or has failed.
    pub async fn announced(self) -> CoreResult<()> {
        self.0
            .await
            .unwrap_or_else(|_| Err(StoreError::writer_gone().into()))
    }
}

impl Core {
    /// Posts a chat message: validates it, checks membership and queues it for storage,
    /// which numbers it in the order queued. Once it is committed, the store's writer
    /// broadcasts it to the room, in that same order, and only then does
    /// [`QueuedMessage::announced`] finish; so a connection can read its next request while
    /// this one is stored, and whatever it answers after `announced` comes after the
    /// message's broadcast.
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
        let (told, announced) = oneshot::channel();
        let core = self.clone();
        let on_stored: OnStored = Box::new(move |stored: StoreResult<Option<Message>>| {
            let outcome = match stored {
                Ok(Some(message)) => {
                    core.announce_message(&user, message);
                    Ok(())
                }
                // The membership ended (on any node) after it was checked.
                Ok(None) => Err(CoreError::NotAMember),
                Err(err) => Err(err.into()),
            };
            let _ = told.send(outcome);
        });
        self.store().queue_message(new_message, on_stored).await?;
        Ok(QueuedMessage(announced))
    }

    /// Broadcasts a stored message to its room; the sender's typing indicator ends with it.
    fn announce_message(&self, user: &Profile, message: Message) {
        let key = message.room_key.clone();
        if self.inner.typing.stop(&key, &user.user_id) {
            self.publish_typing(&key, user, false);
        }
        self.publish(Topic::Room(key), Event::Message(message), None);
    }
}
