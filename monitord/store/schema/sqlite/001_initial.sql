-- The incident store, SQLite backend: schema version 1.
-- Times are UTC seconds since the epoch (REAL); priorities are 'P1' < 'P2' < 'P3' as text.
-- Applied once, in one transaction, by SQLiteStore; PRAGMA user_version records it.

-- Every event id ever applied: the primary key is the dedup (INSERT ... ON CONFLICT DO
-- NOTHING, then rowcount). Payloads live on the timelines, not here.
CREATE TABLE event (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('problem', 'healed', 'recovery', 'heartbeat')),
    host         TEXT NOT NULL,
    check_name   TEXT,
    at           REAL NOT NULL,            -- the agent's clock
    received_at  REAL NOT NULL             -- the store's clock
) WITHOUT ROWID;
-- Heartbeat ids are forgotten after a week (re-applying an old heartbeat is harmless).
CREATE INDEX event_heartbeats ON event (received_at) WHERE kind = 'heartbeat';

CREATE TABLE incident (
    id               INTEGER PRIMARY KEY,
    key              TEXT NOT NULL,        -- host/check
    host             TEXT NOT NULL,
    check_name       TEXT NOT NULL,
    priority         TEXT NOT NULL CHECK (priority IN ('P1', 'P2', 'P3')),
    status           TEXT NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
    title            TEXT NOT NULL,
    summary          TEXT NOT NULL,
    opened_at        REAL NOT NULL,
    due_at           REAL NOT NULL,
    last_seen_at     REAL NOT NULL,
    count            INTEGER NOT NULL,
    acknowledged_at  REAL,
    acknowledged_by  TEXT,
    resolved_at      REAL,
    resolved_by      TEXT,
    reopened         INTEGER NOT NULL DEFAULT 0
);
-- One open (open or acknowledged) incident per key; upserts name this index as their target.
CREATE UNIQUE INDEX incident_open_key ON incident (key) WHERE status != 'resolved';
CREATE INDEX incident_by_key ON incident (key, id);
CREATE INDEX incident_by_due ON incident (status, due_at, priority, id);
CREATE INDEX incident_by_host ON incident (host, status);

-- Keys of suppressed children attached to a parent's incident.
CREATE TABLE attached (
    incident_id  INTEGER NOT NULL REFERENCES incident (id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    PRIMARY KEY (incident_id, key)
) WITHOUT ROWID;

CREATE TABLE timeline (
    id           INTEGER PRIMARY KEY,
    incident_id  INTEGER NOT NULL REFERENCES incident (id) ON DELETE CASCADE,
    at           REAL NOT NULL,
    kind         TEXT NOT NULL,
    who          TEXT NOT NULL,
    text         TEXT NOT NULL,
    event_id     TEXT,
    steps        TEXT NOT NULL DEFAULT '[]'   -- the heal transcript, a JSON array
);
CREATE INDEX timeline_by_incident ON timeline (incident_id, id);

-- What the junior tier fixed: one row per host, check and fix (the last step's fix).
CREATE TABLE healed (
    host         TEXT NOT NULL,
    check_name   TEXT NOT NULL,
    fix          TEXT NOT NULL,
    count        INTEGER NOT NULL,
    last_at      REAL NOT NULL,
    PRIMARY KEY (host, check_name, fix)
) WITHOUT ROWID;

-- Every host the store has heard of; heartbeats fill the last two columns. down_since is
-- set by the sweep that opened a "server down" incident and cleared by the next heartbeat,
-- so one outage opens one incident even if a person resolves it while the host is silent.
CREATE TABLE host (
    host              TEXT PRIMARY KEY,
    last_heartbeat    REAL,
    interval_seconds  REAL,
    down_since        REAL
) WITHOUT ROWID;

-- Agents allowed to send events: only a hash of each token is kept.
CREATE TABLE agent (
    host        TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    added_at    REAL NOT NULL
) WITHOUT ROWID;
