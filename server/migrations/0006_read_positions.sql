-- How far each member has read each room: the `seq` of the last message they saw. Kept
-- per user, not per device, so every device shows the same unread count.
CREATE TABLE read_positions (
    user_id    TEXT NOT NULL,
    room_id    TEXT NOT NULL REFERENCES rooms (id),
    seq        BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id)
);
