-- The incident store, PostgreSQL backend: schema version 4 (as the SQLite one).
-- Event ids are unique per host: the dedup key is (host, id), so two hosts may use the same
-- id and neither takes the other's event for a duplicate. Every kind of event the wire
-- format has may be recorded. And a person's console sessions can be ended on the server.

ALTER TABLE event DROP CONSTRAINT event_pkey;
ALTER TABLE event ADD PRIMARY KEY (host, id);
ALTER TABLE event DROP CONSTRAINT IF EXISTS event_kind_check;
ALTER TABLE event ADD CONSTRAINT event_kind_check CHECK (kind IN ('problem', 'healed',
    'recovery', 'heartbeat', 'stopped', 'maintenance'));

-- Signing out (or a password change) counts this up; a session cookie carries the count it
-- was made under, and one made under an older count is no longer accepted.
ALTER TABLE person ADD COLUMN session_generation integer NOT NULL DEFAULT 0;
