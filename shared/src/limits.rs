//! Limits shared by the server and the app. Each one is documented in `PROTOCOL.md` and
//! tested at its edge by the server's test suite.

/// Longest chat message, in Unicode scalar values, after trimming surrounding white space.
pub const MAX_CHAT_CHARS: usize = 1000;

/// Largest WebSocket frame or message a client may send, in bytes. Larger ones close the
/// connection with 1009 (message too big).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Largest `gameState` a `room:start` may carry, in bytes of JSON.
pub const MAX_GAME_STATE_BYTES: usize = 32 * 1024;

/// Members a room holds when `room:create` names no `maxUsers`.
pub const DEFAULT_MAX_USERS: u32 = 8;

/// The largest `maxUsers` a room may be created with.
pub const MAX_USERS_CAP: u32 = 1000;

/// Members a room created by joining it holds (Socket.IO's `join_room` of contract 004 and
/// `joinRoom` of 002, which name no limit): a discussion of a few thousand is ordinary.
pub const MAX_JOINED_ROOM_MEMBERS: u32 = 10_000;

/// Messages of history sent on joining a room.
pub const HISTORY_LEN: usize = 50;

/// A typing indicator that is not refreshed within this many milliseconds ends by itself.
pub const TYPING_TTL_MS: u64 = 5_000;

/// Longest `roomType`, in characters.
pub const MAX_ROOM_TYPE_CHARS: usize = 64;
/// Longest room display name, in characters.
pub const MAX_ROOM_NAME_CHARS: usize = 100;

/// Display names: 1 to this many characters after trimming, no control characters.
pub const MAX_USERNAME_CHARS: usize = 40;

/// Longest avatar URL, in bytes.
pub const MAX_IMAGE_URL_BYTES: usize = 2048;

/// Length of a room code.
pub const ROOM_CODE_LEN: usize = 6;

/// The characters room codes are made of: upper-case letters and digits without the
/// look-alikes 0/O and 1/I.
pub const ROOM_CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// Trims a chat message and checks its length, exactly as the server does before storing it.
pub fn validate_chat_text(text: &str) -> Result<&str, ChatTextError> {
    let trimmed = text.trim();
    match trimmed.chars().count() {
        0 => Err(ChatTextError::Empty),
        n if n > MAX_CHAT_CHARS => Err(ChatTextError::TooLong { chars: n }),
        _ => Ok(trimmed),
    }
}

/// Why a chat message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatTextError {
    Empty,
    TooLong { chars: usize },
}

impl std::fmt::Display for ChatTextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("message is empty"),
            Self::TooLong { chars } => write!(
                f,
                "message is {chars} characters long; the limit is {MAX_CHAT_CHARS}"
            ),
        }
    }
}

/// Checks a display name: trimmed, 1..=[`MAX_USERNAME_CHARS`] characters, no control
/// characters. Returns the trimmed name.
pub fn validate_username(name: &str) -> Result<&str, &'static str> {
    let trimmed = name.trim();
    let chars = trimmed.chars().count();
    if chars == 0 {
        return Err("username is empty");
    }
    if chars > MAX_USERNAME_CHARS {
        return Err("username is too long");
    }
    if trimmed.chars().any(char::is_control) {
        return Err("username contains control characters");
    }
    Ok(trimmed)
}

/// Is `code` shaped like a room code? (Case matters: codes are upper case.)
pub fn is_room_code(code: &str) -> bool {
    code.len() == ROOM_CODE_LEN && code.bytes().all(|b| ROOM_CODE_ALPHABET.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_text_is_trimmed_and_bounded_at_the_edges() {
        assert_eq!(validate_chat_text("  hi \n"), Ok("hi"));
        assert_eq!(validate_chat_text(" \t "), Err(ChatTextError::Empty));
        let at_limit = "é".repeat(MAX_CHAT_CHARS);
        assert_eq!(validate_chat_text(&at_limit), Ok(at_limit.as_str()));
        let over = "é".repeat(MAX_CHAT_CHARS + 1);
        assert_eq!(
            validate_chat_text(&over),
            Err(ChatTextError::TooLong {
                chars: MAX_CHAT_CHARS + 1
            })
        );
    }

    #[test]
    fn usernames_refuse_empty_long_and_control_characters() {
        assert_eq!(validate_username("  Ana "), Ok("Ana"));
        assert!(validate_username("").is_err());
        assert!(validate_username(&"a".repeat(MAX_USERNAME_CHARS + 1)).is_err());
        assert!(validate_username(&"a".repeat(MAX_USERNAME_CHARS)).is_ok());
        assert!(validate_username("A\u{7}na").is_err());
    }

    #[test]
    fn room_codes_use_the_unambiguous_alphabet() {
        assert!(is_room_code("ABC234"));
        assert!(!is_room_code("ABC23O"));
        assert!(!is_room_code("abc234"));
        assert!(!is_room_code("ABC2345"));
        for ambiguous in [b'0', b'O', b'1', b'I'] {
            assert!(!ROOM_CODE_ALPHABET.contains(&ambiguous));
        }
    }
}
