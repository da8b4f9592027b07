-- Moderation: closed rooms, banned users and the audit log of moderators' actions.
-- Times are Unix milliseconds.

-- Set when a moderator closes the room: it has no members from then on and takes none.
ALTER TABLE rooms ADD COLUMN closed_at BIGINT;

CREATE TABLE bans (
    user_id   TEXT PRIMARY KEY,
    reason    TEXT NOT NULL,
    moderator TEXT NOT NULL,
    banned_at BIGINT NOT NULL
);

CREATE TABLE audit_log (
    id        TEXT PRIMARY KEY,
    at        BIGINT NOT NULL,
    moderator TEXT NOT NULL,
    action    TEXT NOT NULL,
    -- What the action was taken on: a message id, a room key, a user id, or a room key
    -- and a user id as `room/user`.
    target    TEXT NOT NULL,
    reason    TEXT NOT NULL
);

CREATE INDEX audit_log_by_time ON audit_log (at);
