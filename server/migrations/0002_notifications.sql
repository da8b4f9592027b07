-- Notifications to one user, kept with their delivery and read state. Times are Unix ms.
CREATE TABLE notifications (
    id                TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL,
    -- One notification, two shapes: contract 002's level/title/message/data and
    -- contract 003's notification_type/actor_username/action/recipient_role/phrase_text.
    level             TEXT NOT NULL,
    title             TEXT NOT NULL,
    message           TEXT NOT NULL,
    notification_type TEXT NOT NULL,
    actor_username    TEXT NOT NULL,
    action            TEXT NOT NULL,
    recipient_role    TEXT NOT NULL,
    phrase_text       TEXT NOT NULL,
    data              TEXT,
    created_at        BIGINT NOT NULL,
    -- Set when a notification socket of the user has been sent it.
    delivered_at      BIGINT,
    read_at           BIGINT
);

CREATE INDEX notifications_by_user ON notifications (user_id, created_at);
