//! Why the core refused a request. The `Display` text is safe to send to a client, except
//! for `Internal`, which says only "internal error" (the cause is logged).

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("not authenticated")]
    NotSignedIn,
    #[error("room not found")]
    RoomNotFound,
    #[error("session not found")]
    PartyNotFound,
    #[error("notification not found")]
    NotificationNotFound,
    #[error("message not found")]
    MessageNotFound,
    #[error("user is not banned")]
    NotBanned,
    #[error("this account is banned")]
    Banned,
    #[error("room is closed")]
    RoomClosed,
    #[error("only the host can do that")]
    NotHost,
    #[error("{0}")]
    Conflict(String),
    #[error("room is full")]
    RoomFull,
    #[error("not a member of this room")]
    NotAMember,
    #[error("not a player in this session")]
    NotAPlayer,
    #[error("the session has ended")]
    PartyEnded,
    #[error("the game has already started")]
    AlreadyPlaying,
    #[error("too many rooms: the limit is {0}")]
    TooManyRooms(usize),
    #[error("creating rooms too fast; try again in a minute")]
    CreatingTooFast,
    #[error("{0}")]
    Invalid(String),
    #[error("internal error")]
    Internal(#[from] StoreError),
}

pub type CoreResult<T> = Result<T, CoreError>;

impl CoreError {
    pub fn invalid(text: impl Into<String>) -> Self {
        Self::Invalid(text.into())
    }

    /// Logs the cause of an internal error; dialects call this before rendering one.
    pub fn log_if_internal(&self) {
        if let Self::Internal(cause) = self {
            tracing::error!(error = %cause.0, "storage failed");
        }
    }
}

/// The value of `result`; `None` for an error, whose cause is logged if it is internal.
pub fn logged<T>(result: CoreResult<T>) -> Option<T> {
    result.inspect_err(CoreError::log_if_internal).ok()
}
