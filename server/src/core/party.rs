//! Party sessions (contract 003's party mode): players gather by a short code, get ready,
//! and the host starts and moves the party through its phases. The rules live here; the
//! `/qf` dialect renders the events.

use super::{
    events::{Event, Topic},
    model::{AddMember, Party, PartyPhase, PartyPlayer, Profile},
    new_room_code, now_ms, Core, CoreError, CoreResult,
};

/// Players a party needs before the host can start it.
pub const MIN_PARTY_PLAYERS: usize = 2;
/// Players a party holds when created without a size.
pub const DEFAULT_PARTY_SIZE: u32 = 8;
/// The largest party.
pub const MAX_PARTY_SIZE: u32 = 16;
/// Longest phase name, in characters.
pub const MAX_PHASE_CHARS: usize = 64;
/// Largest progress document, in bytes.
pub const MAX_PROGRESS_BYTES: usize = 4096;
/// Longest host-ping message, in characters.
pub const MAX_HOST_PING_CHARS: usize = 280;

/// A party and its players after a change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartyView {
    pub party: Party,
    pub players: Vec<PartyPlayer>,
}

/// What changed in a party; delivered with the [`PartyView`] after it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PartyChange {
    PlayerJoined(PartyPlayer),
    PlayerLeft {
        user_id: String,
    },
    PlayerReady {
        user_id: String,
        ready: bool,
    },
    PhaseTransition {
        from: PartyPhase,
        to: PartyPhase,
    },
    /// An opaque progress document from the host.
    ProgressUpdate(String),
    SessionStarted,
    SessionCompleted,
    HostPing {
        from_username: String,
        message: Option<String>,
    },
}

impl Core {
    /// Creates a party with `host` as its host and first player.
    pub async fn create_party(
        &self,
        host: &Profile,
        max_players: Option<u32>,
    ) -> CoreResult<PartyView> {
        let max_players = max_players.unwrap_or(DEFAULT_PARTY_SIZE);
        if !(MIN_PARTY_PLAYERS as u32..=MAX_PARTY_SIZE).contains(&max_players) {
            return Err(CoreError::invalid(format!(
                "a party holds {MIN_PARTY_PLAYERS} to {MAX_PARTY_SIZE} players"
            )));
        }
        let player = new_player(host);
        for _ in 0..super::rooms::ROOM_CODE_ATTEMPTS {
            let party = Party {
                id: uuid::Uuid::new_v4().to_string(),
                code: new_room_code(),
                host_id: host.user_id.clone(),
                phase: PartyPhase::Lobby,
                max_players,
                created_at_ms: now_ms(),
            };
            if self.store().create_party(&party, &player).await? {
                count_transition(None, &party.phase);
                return self.party_view(&party.id).await;
            }
        }
        Err(CoreError::invalid("no free party code; try again"))
    }

    /// Joins the party with `code` (harmless when a player already). Only lobbies take
    /// new players.
    pub async fn join_party(&self, user: &Profile, code: &str) -> CoreResult<PartyView> {
        let party = self
            .store()
            .party_by_code(code)
            .await?
            .ok_or(CoreError::PartyNotFound)?;
        let player = new_player(user);
        if party.phase != PartyPhase::Lobby
            && !self.is_party_player(&party.id, &user.user_id).await?
        {
            return Err(CoreError::Conflict("the party has already started".into()));
        }
        match self.store().add_party_player(&party.id, &player).await? {
            AddMember::Added => {
                let view = self.party_view(&party.id).await?;
                self.publish_party(&view, PartyChange::PlayerJoined(player));
                Ok(view)
            }
            AddMember::AlreadyMember => self.party_view(&party.id).await,
            AddMember::Full => Err(CoreError::Conflict("the party is full".into())),
            AddMember::NotFound => Err(CoreError::PartyNotFound),
        }
    }

    /// Leaves a party. A leaving host hands the role to the longest-present player; the
    /// last one out ends the party.
    pub async fn leave_party(&self, user: &Profile, id: &str) -> CoreResult<()> {
        self.store()
            .party(id)
            .await?
            .ok_or(CoreError::PartyNotFound)?;
        if !self.store().remove_party_player(id, &user.user_id).await? {
            return Err(CoreError::NotAPlayer);
        }
        let mut view = self.party_view(id).await?;
        match view.players.first() {
            None => {
                self.store()
                    .set_party_state(id, &view.party.host_id, &PartyPhase::Ended)
                    .await?;
                count_transition(Some(&view.party.phase), &PartyPhase::Ended);
                view.party.phase = PartyPhase::Ended;
            }
            Some(next) if !view.players.iter().any(|p| p.user_id == view.party.host_id) => {
                self.store()
                    .set_party_state(id, &next.user_id, &view.party.phase)
                    .await?;
                view.party.host_id = next.user_id.clone();
            }
            Some(_) => {}
        }
        self.publish_party(
            &view,
            PartyChange::PlayerLeft {
                user_id: user.user_id.clone(),
            },
        );
        Ok(())
    }

    pub async fn set_party_ready(
        &self,
        user: &Profile,
        id: &str,
        ready: bool,
    ) -> CoreResult<PartyView> {
        let view = self.player_view(user, id).await?;
        if view.party.phase != PartyPhase::Lobby {
            return Err(CoreError::Conflict("the party has already started".into()));
        }
        self.store()
            .set_party_ready(id, &user.user_id, ready)
            .await?;
        let view = self.party_view(id).await?;
        self.publish_party(
            &view,
            PartyChange::PlayerReady {
                user_id: user.user_id.clone(),
                ready,
            },
        );
        Ok(view)
    }

    /// Starts the party: the host only, with at least [`MIN_PARTY_PLAYERS`], all ready.
    pub async fn start_party(&self, user: &Profile, id: &str) -> CoreResult<PartyView> {
        let view = self.host_view(user, id).await?;
        if view.party.phase != PartyPhase::Lobby {
            return Err(CoreError::Conflict("the party has already started".into()));
        }
        if view.players.len() < MIN_PARTY_PLAYERS {
            return Err(CoreError::Conflict(format!(
                "a party needs at least {MIN_PARTY_PLAYERS} players"
            )));
        }
        if !view.players.iter().all(|p| p.ready) {
            return Err(CoreError::Conflict("not every player is ready".into()));
        }
        let view = self
            .move_phase(view, PartyPhase::InPlay(PartyPhase::PLAYING.into()))
            .await?;
        self.publish_party(&view, PartyChange::SessionStarted);
        Ok(view)
    }

    /// Moves a started party to the phase `phase` (any name but the reserved ones).
    pub async fn advance_party(
        &self,
        user: &Profile,
        id: &str,
        phase: &str,
    ) -> CoreResult<PartyView> {
        let view = self.host_view(user, id).await?;
        require_started(&view)?;
        let phase = phase.trim();
        if !super::is_one_line(phase, MAX_PHASE_CHARS) {
            return Err(CoreError::invalid(format!(
                "phase must be 1 to {MAX_PHASE_CHARS} characters"
            )));
        }
        match PartyPhase::parse(phase) {
            next @ PartyPhase::InPlay(_) => self.move_phase(view, next).await,
            _ => Err(CoreError::invalid(format!("phase {phase:?} is reserved"))),
        }
    }

    /// Completes a started party.
    pub async fn complete_party(&self, user: &Profile, id: &str) -> CoreResult<PartyView> {
        let view = self.host_view(user, id).await?;
        require_started(&view)?;
        let view = self.move_phase(view, PartyPhase::Completed).await?;
        self.publish_party(&view, PartyChange::SessionCompleted);
        Ok(view)
    }

    /// Tells every player of a started party how it is going (an opaque document).
    pub async fn party_progress(&self, user: &Profile, id: &str, progress: &str) -> CoreResult<()> {
        let view = self.host_view(user, id).await?;
        require_started(&view)?;
        if progress.len() > MAX_PROGRESS_BYTES {
            return Err(CoreError::invalid(format!(
                "progress is larger than {MAX_PROGRESS_BYTES} bytes"
            )));
        }
        self.publish_party(&view, PartyChange::ProgressUpdate(progress.to_owned()));
        Ok(())
    }

    /// The host nudges every player.
    pub async fn host_ping(
        &self,
        user: &Profile,
        id: &str,
        message: Option<String>,
    ) -> CoreResult<()> {
        let view = self.host_view(user, id).await?;
        if message
            .as_ref()
            .is_some_and(|m| m.chars().count() > MAX_HOST_PING_CHARS)
        {
            return Err(CoreError::invalid(format!(
                "message is longer than {MAX_HOST_PING_CHARS} characters"
            )));
        }
        self.publish_party(
            &view,
            PartyChange::HostPing {
                from_username: user.username.clone(),
                message,
            },
        );
        Ok(())
    }

    /// A party as one of its players sees it.
    pub async fn player_view(&self, user: &Profile, id: &str) -> CoreResult<PartyView> {
        let view = self.party_view(id).await?;
        require_player(&view, &user.user_id)?;
        Ok(view)
    }

    /// The party `id` if `user_id` may follow it on a socket: `PartyNotFound`,
    /// `PartyEnded` or `NotAPlayer` otherwise.
    pub async fn party_for_socket(&self, user_id: &str, id: &str) -> CoreResult<PartyView> {
        let view = self.party_view(id).await?;
        // An ended party has no players left: say it ended, not that the user is not one.
        if view.party.phase == PartyPhase::Ended {
            return Err(CoreError::PartyEnded);
        }
        require_player(&view, user_id)?;
        Ok(view)
    }

    /// Delivers the party's events to this connection from now on.
    pub fn watch_party(&self, conn: &super::Connection, id: &str) {
        self.watch(conn, Topic::Party(id.to_owned()));
    }

    async fn party_view(&self, id: &str) -> CoreResult<PartyView> {
        let party = self
            .store()
            .party(id)
            .await?
            .ok_or(CoreError::PartyNotFound)?;
        let players = self.store().party_players(id).await?;
        Ok(PartyView { party, players })
    }

    async fn is_party_player(&self, id: &str, user_id: &str) -> CoreResult<bool> {
        Ok(self
            .store()
            .party_players(id)
            .await?
            .iter()
            .any(|p| p.user_id == user_id))
    }

    async fn host_view(&self, user: &Profile, id: &str) -> CoreResult<PartyView> {
        let view = self.player_view(user, id).await?;
        if view.party.host_id != user.user_id {
            return Err(CoreError::NotHost);
        }
        Ok(view)
    }

    async fn move_phase(&self, mut view: PartyView, to: PartyPhase) -> CoreResult<PartyView> {
        self.store()
            .set_party_state(&view.party.id, &view.party.host_id, &to)
            .await?;
        count_transition(Some(&view.party.phase), &to);
        let from = std::mem::replace(&mut view.party.phase, to.clone());
        self.publish_party(&view, PartyChange::PhaseTransition { from, to });
        Ok(view)
    }

    fn publish_party(&self, view: &PartyView, change: PartyChange) {
        let event = Event::Party {
            view: view.clone(),
            change,
        };
        self.publish(Topic::Party(view.party.id.clone()), event, None);
    }
}

/// `user` as a player who just joined, not yet ready.
fn new_player(user: &Profile) -> PartyPlayer {
    PartyPlayer {
        user_id: user.user_id.clone(),
        username: user.username.clone(),
        ready: false,
        joined_at_ms: now_ms(),
    }
}

fn require_player(view: &PartyView, user_id: &str) -> CoreResult<()> {
    if view.players.iter().any(|p| p.user_id == user_id) {
        Ok(())
    } else {
        Err(CoreError::NotAPlayer)
    }
}

fn require_started(view: &PartyView) -> CoreResult<()> {
    match view.party.phase {
        PartyPhase::Lobby => Err(CoreError::Conflict("the party has not started".into())),
        PartyPhase::Completed | PartyPhase::Ended => {
            Err(CoreError::Conflict("the party is over".into()))
        }
        PartyPhase::InPlay(_) => Ok(()),
    }
}

/// Counts a party's move from `from` (`None`: created) to `to` in
/// `confab_party_transitions_total`. Phases the host names are all `in_play`, so the labels
/// stay few.
fn count_transition(from: Option<&PartyPhase>, to: &PartyPhase) {
    let label = |phase: Option<&PartyPhase>| match phase {
        None => "none",
        Some(PartyPhase::Lobby) => "lobby",
        Some(PartyPhase::InPlay(_)) => "in_play",
        Some(PartyPhase::Completed) => "completed",
        Some(PartyPhase::Ended) => "ended",
    };
    metrics::counter!(crate::metrics::PARTY_TRANSITIONS, "from" => label(from), "to" => label(Some(to)))
        .increment(1);
}
