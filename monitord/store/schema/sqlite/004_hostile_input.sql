-- The incident store, SQLite backend: schema version 4.
-- Event ids are unique per host: the dedup key is (host, id), so two hosts may use the same
-- id and neither takes the other's event for a duplicate. Every kind of event the wire
-- format has may be recorded. And a person's console sessions can be ended on the server.

CREATE TABLE event_by_host (
    host         TEXT NOT NULL,
    id           TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('problem', 'healed', 'recovery', 'heartbeat',
                                               'stopped', 'maintenance')),
    check_name   TEXT,
    at           REAL NOT NULL,            -- the agent's clock
    received_at  REAL NOT NULL,            -- the store's clock
    PRIMARY KEY (host, id)
) WITHOUT ROWID;
INSERT INTO event_by_host (host, id, kind, check_name, at, received_at)
    SELECT host, id, kind, check_name, at, received_at FROM event;
DROP TABLE event;
ALTER TABLE event_by_host RENAME TO event;
CREATE INDEX event_heartbeats ON event (received_at) WHERE kind = 'heartbeat';

-- Signing out (or a password change) counts this up; a session cookie carries the count it
-- was made under, and one made under an older count is no longer accepted.
ALTER TABLE person ADD COLUMN session_generation INTEGER NOT NULL DEFAULT 0;
