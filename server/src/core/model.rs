//! The core's data: what rooms, members and messages are, independent of any wire format.

/// A user as the core knows them. Filled from token claims, kept in storage.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    pub user_id: String,
    pub username: String,
    /// Empty when unknown.
    pub image_url: String,
    /// Empty when unknown.
    pub email: String,
}

impl Profile {
    /// A user known only by their id, which stands in for their name.
    pub fn known_by_id(user_id: &str) -> Self {
        Self {
            user_id: user_id.to_owned(),
            username: user_id.to_owned(),
            image_url: String::new(),
            email: String::new(),
        }
    }
}

/// Whether a room waits for players or is in a game.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Phase {
    Lobby,
    Playing,
}

impl Phase {
    pub const ALL: [Self; 2] = [Self::Lobby, Self::Playing];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lobby => "lobby",
            Self::Playing => "playing",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|phase| phase.as_str() == text)
    }
}

/// A stored room. `key` is the identity every dialect uses: a game-room code, a UUID or a
/// free-form name, all in one namespace.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Room {
    pub key: String,
    /// A display name; empty for rooms created without one.
    pub name: String,
    pub room_type: String,
    pub max_users: u32,
    pub member_count: u32,
    pub phase: Phase,
    pub host_id: String,
    /// The game state `start` stored: an opaque document the core does not read.
    pub game_state: Option<String>,
    pub created_at_ms: i64,
    /// The sequence number of the newest message, 0 when there is none.
    pub last_seq: u64,
    /// Closed by a moderator: no members, and no joins.
    pub closed: bool,
}

/// A room to create.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewRoom {
    pub key: String,
    pub name: String,
    pub room_type: String,
    pub max_users: u32,
    pub host_id: String,
    pub created_at_ms: i64,
}

/// A room member, with whether they have a connection open now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    pub profile: Profile,
    pub joined_at_ms: i64,
    pub online: bool,
}

/// What kind of content a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MessageKind {
    Text,
    /// The body is an image URL.
    Image,
}

impl MessageKind {
    pub const ALL: [Self; 2] = [Self::Text, Self::Image];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Image => "image",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// A message to store; the store gives it its sequence number.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewMessage {
    pub id: String,
    pub room_key: String,
    pub sender: Profile,
    pub body: String,
    pub kind: MessageKind,
    pub created_at_ms: i64,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    pub id: String,
    pub room_key: String,
    /// Position in the room, from 1, without gaps.
    pub seq: u64,
    /// The sender as they were when they sent it (email is not kept per message).
    pub sender: Profile,
    pub body: String,
    pub kind: MessageKind,
    pub created_at_ms: i64,
}

/// How a notification presents itself (contract 002's `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Level {
    Info,
    Success,
    Warning,
    Error,
}

impl Level {
    pub const ALL: [Self; 4] = [Self::Info, Self::Success, Self::Warning, Self::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Success => "success",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|level| level.as_str() == text)
    }
}

/// A notification to one user, carrying what every dialect shows of one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Notification {
    pub id: String,
    pub user_id: String,
    pub level: Level,
    pub title: String,
    pub message: String,
    pub notification_type: String,
    pub actor_username: String,
    pub action: String,
    pub recipient_role: String,
    pub phrase_text: String,
    /// Extra data for the receiving app: an opaque document the core does not read.
    pub data: Option<String>,
    pub created_at_ms: i64,
    pub read: bool,
}

/// A party session (contract 003): players gathered by a short code, led by a host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Party {
    pub id: String,
    pub code: String,
    pub host_id: String,
    pub phase: PartyPhase,
    pub max_players: u32,
    pub created_at_ms: i64,
}

/// Where a party is: gathering in the lobby, in play in a phase the host names, or over.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PartyPhase {
    Lobby,
    /// Started: [`PartyPhase::PLAYING`] first, then the phases the host moves through.
    InPlay(String),
    Completed,
    /// Everyone left.
    Ended,
}

impl PartyPhase {
    /// The name of the phase a started party enters first.
    pub const PLAYING: &str = "playing";

    pub fn as_str(&self) -> &str {
        match self {
            Self::Lobby => "lobby",
            Self::InPlay(name) => name,
            Self::Completed => "completed",
            Self::Ended => "ended",
        }
    }

    /// Every name is a phase: the reserved ones are the lobby and the ends, any other is a
    /// phase in play.
    pub fn parse(name: &str) -> Self {
        match name {
            "lobby" => Self::Lobby,
            "completed" => Self::Completed,
            "ended" => Self::Ended,
            other => Self::InPlay(other.to_owned()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartyPlayer {
    pub user_id: String,
    pub username: String,
    pub ready: bool,
    pub joined_at_ms: i64,
}

/// A room as a member's list shows it: the room, its newest message and how far the member
/// has read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSummary {
    pub room: Room,
    pub last_message: Option<Message>,
    /// The `seq` of the last message the member read; 0 before any.
    pub read_seq: u64,
}

impl RoomSummary {
    /// Messages numbered after the read position (a message deleted since still counts).
    pub fn unread(&self) -> u64 {
        self.room.last_seq.saturating_sub(self.read_seq)
    }
}

/// A chat message a moderator deleted: where it was.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeletedMessage {
    pub id: String,
    pub room_key: String,
    pub seq: u64,
}

/// A user whose tokens are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub user_id: String,
    pub reason: String,
    pub moderator: String,
    pub banned_at_ms: i64,
}

/// What a moderator did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModerationAction {
    DeleteMessage,
    RemoveMember,
    CloseRoom,
    Ban,
    Unban,
}

impl ModerationAction {
    pub const ALL: [Self; 5] = [
        Self::DeleteMessage,
        Self::RemoveMember,
        Self::CloseRoom,
        Self::Ban,
        Self::Unban,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeleteMessage => "delete_message",
            Self::RemoveMember => "remove_member",
            Self::CloseRoom => "close_room",
            Self::Ban => "ban",
            Self::Unban => "unban",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.as_str() == text)
    }
}

/// One line of the audit log: a moderator's action, kept when it succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: String,
    pub at_ms: i64,
    /// Who acted, as the caller named themselves (the service key has no names).
    pub moderator: String,
    pub action: ModerationAction,
    /// What it was taken on: a message id, a room key, a user id, or `room/user`.
    pub target: String,
    pub reason: String,
}

/// What signing a user in reads, in one snapshot of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub banned: bool,
    /// The profile as stored, if the user has signed in before.
    pub profile: Option<Profile>,
    /// The keys of the rooms they are a member of, most recently joined first, when asked
    /// for.
    pub rooms: Option<Vec<String>>,
}

/// What a connection reads on joining a room, in one snapshot of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomOnJoin {
    pub room: Room,
    /// Whether the joining user is (still) a member.
    pub is_member: bool,
    /// How many rooms the joining user is a member of, this one included.
    pub rooms_joined: usize,
    /// The newest messages, oldest first.
    pub history: Vec<Message>,
    /// The members in the order they joined, when asked for (`online` always false).
    pub members: Option<Vec<Member>>,
}

/// The outcome of adding a member to a room, or a player to a party.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddMember {
    Added,
    AlreadyMember,
    Full,
    /// No such room, or no such party.
    NotFound,
}
