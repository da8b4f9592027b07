-- One schema for SQLite and PostgreSQL: only types and syntax both accept.
-- Times are Unix milliseconds.

CREATE TABLE profiles (
    user_id    TEXT PRIMARY KEY,
    username   TEXT NOT NULL,
    image_url  TEXT NOT NULL,
    email      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE rooms (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    room_type    TEXT NOT NULL,
    max_users    BIGINT NOT NULL,
    -- Kept equal to the number of memberships: a conditional UPDATE of this row is what
    -- makes "join unless full" atomic on both databases.
    member_count BIGINT NOT NULL DEFAULT 0,
    phase        TEXT NOT NULL,
    host_id      TEXT NOT NULL,
    game_state   TEXT,
    created_at   BIGINT NOT NULL,
    -- The sequence number of the newest message: incremented in the transaction that
    -- stores a message, so numbers are per room, from 1, without gaps.
    last_seq     BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE memberships (
    room_id   TEXT NOT NULL REFERENCES rooms (id),
    user_id   TEXT NOT NULL,
    joined_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);

CREATE INDEX memberships_by_user ON memberships (user_id, joined_at);

CREATE TABLE messages (
    id         TEXT PRIMARY KEY,
    room_id    TEXT NOT NULL REFERENCES rooms (id),
    seq        BIGINT NOT NULL,
    user_id    TEXT NOT NULL,
    -- The sender's name and avatar when the message was sent.
    username   TEXT NOT NULL,
    image_url  TEXT NOT NULL,
    body       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (room_id, seq)
);
