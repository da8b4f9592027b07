-- Party sessions (contract 003). Times are Unix ms.
CREATE TABLE party_sessions (
    id           TEXT PRIMARY KEY,
    code         TEXT NOT NULL UNIQUE,
    host_id      TEXT NOT NULL,
    -- lobby, then the phases the host moves through, then completed (or ended when empty).
    phase        TEXT NOT NULL,
    max_players  BIGINT NOT NULL,
    -- Kept equal to the number of players, for an atomic "join unless full".
    player_count BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL
);

CREATE TABLE party_players (
    session_id TEXT NOT NULL REFERENCES party_sessions (id),
    user_id    TEXT NOT NULL,
    username   TEXT NOT NULL,
    ready      BOOLEAN NOT NULL,
    joined_at  BIGINT NOT NULL,
    PRIMARY KEY (session_id, user_id)
);
