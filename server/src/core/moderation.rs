//! Moderation: deleting a message, removing a member, closing a room, banning a user. Each
//! action tells every connection that can be told, in its own dialect and on every node
//! (its event goes through the fan-out like any other), and is written to the audit log
//! once it has taken effect.

use super::{
    events::{Event, Topic},
    model::{AuditEntry, Ban, DeletedMessage, ModerationAction, Profile},
    now_ms, Core, CoreError, CoreResult,
};

/// Longest reason a moderator may give, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// Longest moderator name, in characters.
pub const MAX_MODERATOR_CHARS: usize = 128;
/// Longest user id a ban takes, in characters (as the notification API's `userId`).
pub const MAX_USER_ID_CHARS: usize = 128;
/// Most entries one listing of bans or of the audit log returns.
pub const MAX_MODERATION_LIST: usize = 500;
/// The moderator named in the audit log when the caller names none.
const UNNAMED_MODERATOR: &str = "service key";

/// Who acts, and why: what the audit log records with the action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moderator {
    name: String,
    reason: String,
}

impl Moderator {
    /// A moderator as the caller names themselves (trimmed; unnamed is "service key"), with
    /// an optional reason.
    pub fn new(name: Option<&str>, reason: Option<&str>) -> CoreResult<Self> {
        let name = name.map(str::trim).filter(|name| !name.is_empty());
        let reason = reason.map(str::trim).unwrap_or_default();
        if name.is_some_and(|name| name.chars().count() > MAX_MODERATOR_CHARS) {
            return Err(CoreError::invalid(format!(
                "moderator is longer than {MAX_MODERATOR_CHARS} characters"
            )));
        }
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(CoreError::invalid(format!(
                "reason is longer than {MAX_REASON_CHARS} characters"
            )));
        }
        if name
            .into_iter()
            .chain([reason])
            .any(|text| text.chars().any(char::is_control))
        {
            return Err(CoreError::invalid(
                "moderator and reason must not contain control characters",
            ));
        }
        Ok(Self {
            name: name.unwrap_or(UNNAMED_MODERATOR).to_owned(),
            reason: reason.to_owned(),
        })
    }
}

impl Core {
    /// Deletes a stored chat message: history no longer has it, and the room's members are
    /// told.
    pub async fn delete_message(&self, by: &Moderator, id: &str) -> CoreResult<DeletedMessage> {
        let deleted = self
            .store()
            .delete_message(id)
            .await?
            .ok_or(CoreError::MessageNotFound)?;
        self.publish(
            Topic::Room(deleted.room_key.clone()),
            Event::MessageDeleted(deleted.clone()),
            None,
        );
        self.audit(by, ModerationAction::DeleteMessage, id).await?;
        Ok(deleted)
    }

    /// Removes `user_id` from room `key`. Everyone in the room is told, the removed user
    /// included, whose connections then stop receiving it. They may join again; a ban keeps
    /// them out.
    pub async fn remove_member(&self, by: &Moderator, key: &str, user_id: &str) -> CoreResult<()> {
        let store = &self.inner.store;
        if !store.remove_member(key, user_id).await? {
            return Err(if store.room(key).await?.is_some() {
                CoreError::NotAMember
            } else {
                CoreError::RoomNotFound
            });
        }
        let user = store
            .profile(user_id)
            .await?
            .unwrap_or_else(|| Profile::known_by_id(user_id));
        if self.inner.typing.stop(key, user_id) {
            self.publish_typing(key, &user, false);
        }
        self.publish(
            Topic::Room(key.to_owned()),
            Event::MemberRemoved {
                room_key: key.to_owned(),
                user,
            },
            None,
        );
        self.audit(
            by,
            ModerationAction::RemoveMember,
            &format!("{key}/{user_id}"),
        )
        .await
    }

    /// Closes room `key`: every member is removed and told, and joining is refused from then
    /// on. Its history stays stored, readable by no one.
    pub async fn close_room(&self, by: &Moderator, key: &str) -> CoreResult<()> {
        let store = &self.inner.store;
        let Some(members) = store.close_room(key, now_ms()).await? else {
            return Err(match store.room(key).await? {
                Some(room) if room.closed => CoreError::RoomClosed,
                _ => CoreError::RoomNotFound,
            });
        };
        for user_id in &members {
            self.inner.typing.stop(key, user_id);
        }
        self.publish(
            Topic::Room(key.to_owned()),
            Event::RoomClosed {
                room_key: key.to_owned(),
            },
            None,
        );
        self.audit(by, ModerationAction::CloseRoom, key).await
    }

    /// Bans `user_id`: their tokens are refused from now on, at every door, and their open
    /// connections, of every dialect on every node, are closed. Their memberships stay, for
    /// when the ban is lifted.
    pub async fn ban(&self, by: &Moderator, user_id: &str) -> CoreResult<Ban> {
        validate_user_id(user_id)?;
        let ban = Ban {
            user_id: user_id.to_owned(),
            reason: by.reason.clone(),
            moderator: by.name.clone(),
            banned_at_ms: now_ms(),
        };
        // Stored first: a connection signing in from here on is refused, and one that
        // signed in before is found by the revocation (see `sign_in_reading`).
        self.inner.store.ban(&ban).await?;
        self.publish(Topic::User(user_id.to_owned()), Event::AccessRevoked, None);
        self.audit(by, ModerationAction::Ban, user_id).await?;
        Ok(ban)
    }

    /// Lifts the ban on `user_id`.
    pub async fn unban(&self, by: &Moderator, user_id: &str) -> CoreResult<()> {
        if !self.inner.store.unban(user_id).await? {
            return Err(CoreError::NotBanned);
        }
        self.audit(by, ModerationAction::Unban, user_id).await
    }

    /// The newest bans, newest first, at most [`MAX_MODERATION_LIST`].
    pub async fn bans(&self, limit: usize) -> CoreResult<Vec<Ban>> {
        Ok(self.store().bans(limit.min(MAX_MODERATION_LIST)).await?)
    }

    /// The newest audit entries, newest first, at most [`MAX_MODERATION_LIST`].
    pub async fn audit_log(&self, limit: usize) -> CoreResult<Vec<AuditEntry>> {
        let limit = limit.min(MAX_MODERATION_LIST);
        Ok(self.store().audit_log(limit).await?)
    }

    /// Refuses a banned user.
    pub async fn check_not_banned(&self, user_id: &str) -> CoreResult<()> {
        if self.inner.store.is_banned(user_id).await? {
            return Err(CoreError::Banned);
        }
        Ok(())
    }

    /// Records an action that took effect, in the log (target `confab::audit`) and in the
    /// stored audit log.
    async fn audit(
        &self,
        by: &Moderator,
        action: ModerationAction,
        target: &str,
    ) -> CoreResult<()> {
        let entry = AuditEntry {
            id: uuid::Uuid::now_v7().to_string(),
            at_ms: now_ms(),
            moderator: by.name.clone(),
            action,
            target: target.to_owned(),
            reason: by.reason.clone(),
        };
        tracing::info!(
            target: "confab::audit",
            moderator = %entry.moderator,
            action = action.as_str(),
            subject = %entry.target,
            reason = %entry.reason,
            "moderation"
        );
        metrics::counter!(crate::metrics::MODERATION_ACTIONS, "action" => action.as_str())
            .increment(1);
        self.inner.store.record_audit(&entry).await?;
        Ok(())
    }
}

/// A user id a backend or moderator names: 1 to [`MAX_USER_ID_CHARS`] characters, none of
/// them control characters.
pub(super) fn validate_user_id(user_id: &str) -> CoreResult<()> {
    super::check_one_line("user id", user_id, MAX_USER_ID_CHARS)
}
