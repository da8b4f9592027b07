//! Transient signals other backends publish through the core: media-job progress for the
//! job's subscribers, and named events for a room. Unlike chat messages they are not stored:
//! they reach whoever is subscribed when they are published.

use super::{
    events::{Audience, Delivery, Event, Topic},
    Connection, Core, CoreError, CoreResult,
};

/// Media jobs one connection follows at once; past it, the least recently followed is dropped.
pub const MAX_MEDIA_PER_CONNECTION: usize = 100;
/// Longest media id, in characters.
pub const MAX_MEDIA_ID_CHARS: usize = 128;
/// Longest short text field of a signal (stage, status message, error, code, event name).
pub const MAX_SIGNAL_TEXT_CHARS: usize = 1000;
/// Longest URL in a media update, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// Largest opaque document (metadata, event data), in bytes.
pub const MAX_SIGNAL_DATA_BYTES: usize = 16 * 1024;
/// Longest name of a room event, in characters.
pub const MAX_EVENT_NAME_CHARS: usize = 64;

/// What a media job reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MediaUpdate {
    Progress {
        media_id: String,
        /// 0 to 100.
        progress: u8,
        stage: String,
        message: Option<String>,
    },
    Complete {
        media_id: String,
        url: String,
        thumbnail_url: Option<String>,
        /// An opaque JSON document.
        metadata: Option<String>,
    },
    Failed {
        media_id: String,
        error: String,
        code: Option<String>,
    },
}

impl MediaUpdate {
    pub fn media_id(&self) -> &str {
        match self {
            Self::Progress { media_id, .. }
            | Self::Complete { media_id, .. }
            | Self::Failed { media_id, .. } => media_id,
        }
    }

    fn validate(&self) -> CoreResult<()> {
        validate_media_id(self.media_id())?;
        match self {
            Self::Progress {
                progress,
                stage,
                message,
                ..
            } => {
                if *progress > 100 {
                    return Err(CoreError::invalid("progress must be between 0 and 100"));
                }
                text("stage", stage, false)?;
                if let Some(message) = message {
                    text("message", message, true)?;
                }
            }
            Self::Complete {
                url,
                thumbnail_url,
                metadata,
                ..
            } => {
                self::url("url", url)?;
                if let Some(thumbnail_url) = thumbnail_url {
                    self::url("thumbnailUrl", thumbnail_url)?;
                }
                data("metadata", metadata.as_deref())?;
            }
            Self::Failed { error, code, .. } => {
                text("error", error, false)?;
                if let Some(code) = code {
                    text("code", code, false)?;
                }
            }
        }
        Ok(())
    }
}

impl Core {
    /// Delivers a media job's updates to this signed-in connection from now on.
    pub fn watch_media(&self, conn: &Connection, media_id: &str) -> CoreResult<()> {
        self.user(conn).ok_or(CoreError::NotSignedIn)?;
        validate_media_id(media_id)?;
        self.inner.hub.subscribe(
            conn.id,
            Topic::Media(media_id.to_owned()),
            MAX_MEDIA_PER_CONNECTION,
        );
        Ok(())
    }

    pub fn unwatch_media(&self, conn: &Connection, media_id: &str) {
        self.inner
            .hub
            .unsubscribe(conn.id, &Topic::Media(media_id.to_owned()));
    }

    /// Tells a media job's subscribers how it is going: those signed in as `owner` when the
    /// publisher names the job's owner, else every subscriber (the media id is then all a
    /// subscriber needs, so it must be hard to guess).
    pub fn publish_media(&self, update: MediaUpdate, owner: Option<&str>) -> CoreResult<()> {
        update.validate()?;
        if let Some(owner) = owner {
            super::moderation::validate_user_id(owner)?;
        }
        let audience = owner.map_or(Audience::Everyone, |owner| Audience::Only(owner.to_owned()));
        self.publish_delivery(Delivery::for_audience(
            Topic::Media(update.media_id().to_owned()),
            Event::Media(update),
            audience,
        ));
        Ok(())
    }

    /// Sends a named event with an opaque JSON document to everyone receiving room `key`.
    pub fn publish_room_event(
        &self,
        key: &str,
        name: &str,
        data: Option<String>,
    ) -> CoreResult<()> {
        super::rooms::validate_room_key(key)?;
        if !super::is_one_line(name, MAX_EVENT_NAME_CHARS) {
            return Err(CoreError::invalid(format!(
                "event must be 1 to {MAX_EVENT_NAME_CHARS} characters"
            )));
        }
        self::data("data", data.as_deref())?;
        let event = Event::RoomEvent {
            room_key: key.to_owned(),
            name: name.to_owned(),
            data,
        };
        self.publish(Topic::Room(key.to_owned()), event, None);
        Ok(())
    }
}

fn validate_media_id(media_id: &str) -> CoreResult<()> {
    super::check_one_line("media id", media_id, MAX_MEDIA_ID_CHARS)
}

fn text(field: &str, value: &str, may_be_empty: bool) -> CoreResult<()> {
    let chars = value.chars().count();
    if (chars == 0 && !may_be_empty) || chars > MAX_SIGNAL_TEXT_CHARS {
        return Err(CoreError::invalid(format!(
            "{field} must be {} to {MAX_SIGNAL_TEXT_CHARS} characters",
            usize::from(!may_be_empty)
        )));
    }
    Ok(())
}

fn url(field: &str, value: &str) -> CoreResult<()> {
    let scheme_ok =
        value.starts_with("https://") || value.starts_with("http://") || value.starts_with('/');
    if !scheme_ok || value.len() > MAX_URL_BYTES || value.chars().any(char::is_control) {
        return Err(CoreError::invalid(format!(
            "{field} must be an http(s) URL or a path of at most {MAX_URL_BYTES} bytes"
        )));
    }
    Ok(())
}

fn data(field: &str, value: Option<&str>) -> CoreResult<()> {
    if value.is_some_and(|value| value.len() > MAX_SIGNAL_DATA_BYTES) {
        return Err(CoreError::invalid(format!(
            "{field} is larger than {MAX_SIGNAL_DATA_BYTES} bytes"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(progress: u8, stage: &str) -> MediaUpdate {
        MediaUpdate::Progress {
            media_id: "m1".into(),
            progress,
            stage: stage.into(),
            message: None,
        }
    }

    #[test]
    fn media_updates_are_validated_at_their_edges() {
        assert!(progress(0, "queued").validate().is_ok());
        assert!(progress(100, "done").validate().is_ok());
        assert!(progress(101, "done").validate().is_err());
        assert!(progress(50, "").validate().is_err());
        assert!(progress(50, &"s".repeat(MAX_SIGNAL_TEXT_CHARS))
            .validate()
            .is_ok());
        assert!(progress(50, &"s".repeat(MAX_SIGNAL_TEXT_CHARS + 1))
            .validate()
            .is_err());
        let complete = |url: &str| MediaUpdate::Complete {
            media_id: "m1".into(),
            url: url.into(),
            thumbnail_url: None,
            metadata: None,
        };
        assert!(complete("https://cdn.example/m1.png").validate().is_ok());
        assert!(complete("javascript:alert(1)").validate().is_err());
    }
}
