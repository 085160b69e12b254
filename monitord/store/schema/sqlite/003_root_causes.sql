-- The incident store, SQLite backend: schema version 3.
-- Priority that follows the current severity (its own check's and its attached
-- children's), flapping incidents that go quiet, maintenance windows and planned stops
-- the store knows of, and every period an incident was open (for the SLA report).

-- Events of the kinds "stopped" and "maintenance": SQLite cannot change a CHECK, so the
-- table is made again with the wider one.
CREATE TABLE event_v3 (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('problem', 'healed', 'recovery', 'heartbeat',
                                              'stopped', 'maintenance')),
    host         TEXT NOT NULL,
    check_name   TEXT,
    at           REAL NOT NULL,
    received_at  REAL NOT NULL
) WITHOUT ROWID;
INSERT INTO event_v3 SELECT id, kind, host, check_name, at, received_at FROM event;
DROP TABLE event;
ALTER TABLE event_v3 RENAME TO event;
CREATE INDEX event_heartbeats ON event (received_at) WHERE kind = 'heartbeat';

-- Notices of the kind "flapping" (the one notice a flapping check makes).
CREATE TABLE notice_v3 (
    id             INTEGER PRIMARY KEY,
    incident_id    INTEGER NOT NULL REFERENCES incident (id) ON DELETE CASCADE,
    kind           TEXT NOT NULL CHECK (kind IN ('opened', 'escalated', 'renotify',
                                                 'acknowledged', 'resolved', 'flapping')),
    level          INTEGER NOT NULL,
    created_at     REAL NOT NULL,
    next_at        REAL NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    claimed_until  REAL,
    done           TEXT NOT NULL DEFAULT '[]',
    finished_at    REAL,
    last_error     TEXT NOT NULL DEFAULT ''
);
INSERT INTO notice_v3 SELECT id, incident_id, kind, level, created_at, next_at, attempts,
    claimed_until, done, finished_at, last_error FROM notice;
DROP TABLE notice;
ALTER TABLE notice_v3 RENAME TO notice;
CREATE INDEX notice_pending ON notice (next_at, id) WHERE finished_at IS NULL;
CREATE INDEX notice_by_incident ON notice (incident_id, id) WHERE finished_at IS NULL;

-- The priority of the incident's own check's current failure; the incident's priority is
-- the highest of it and its failing attached children's.
ALTER TABLE incident ADD COLUMN own_priority TEXT
    CHECK (own_priority IN ('P1', 'P2', 'P3'));
UPDATE incident SET own_priority = priority;
-- Flapping: marked by a problem that says so; flap_at is when the check last changed
-- while flapping, flap_held the last word held back then ('problem' or 'recovery').
ALTER TABLE incident ADD COLUMN flapping INTEGER NOT NULL DEFAULT 0;
ALTER TABLE incident ADD COLUMN flap_at REAL;
ALTER TABLE incident ADD COLUMN flap_held TEXT;
CREATE INDEX incident_flapping ON incident (flap_at) WHERE flapping = 1;

-- A child's current priority; NULL once it recovered (it stays listed).
ALTER TABLE attached ADD COLUMN priority TEXT CHECK (priority IN ('P1', 'P2', 'P3'));
UPDATE attached SET priority = (SELECT i.priority FROM incident i
                                WHERE i.id = attached.incident_id);
-- A recovery finds the incidents its key is a failing child of.
CREATE INDEX attached_failing ON attached (key) WHERE priority IS NOT NULL;

-- A planned stop: the agent said it was stopped on purpose (its own clock's time).
ALTER TABLE host ADD COLUMN stopped_at REAL;

-- Maintenance windows of a host (check_name '') or of one check, from the agents or
-- from people; notices of what is in maintenance are not sent.
CREATE TABLE maintenance (
    host        TEXT NOT NULL,
    check_name  TEXT NOT NULL DEFAULT '',
    until       REAL NOT NULL,
    owner       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    set_at      REAL NOT NULL,
    PRIMARY KEY (host, check_name)
) WITHOUT ROWID;

-- Every period an incident was open: from its opening or a reopening to its resolution,
-- with the first acknowledgement of that period. A reopening starts a new one.
CREATE TABLE open_period (
    id               INTEGER PRIMARY KEY,
    incident_id      INTEGER NOT NULL REFERENCES incident (id) ON DELETE CASCADE,
    started_at       REAL NOT NULL,
    priority         TEXT NOT NULL CHECK (priority IN ('P1', 'P2', 'P3')),
    due_at           REAL NOT NULL,
    acknowledged_at  REAL,
    acknowledged_by  TEXT,
    resolved_at      REAL,
    resolved_by      TEXT
);
CREATE INDEX open_period_by_start ON open_period (started_at, id);
CREATE INDEX open_period_current ON open_period (incident_id) WHERE resolved_at IS NULL;
INSERT INTO open_period (incident_id, started_at, priority, due_at, acknowledged_at,
                         acknowledged_by, resolved_at, resolved_by)
    SELECT id, coalesce(reopened_at, opened_at), priority, due_at, acknowledged_at,
           acknowledged_by, resolved_at, resolved_by FROM incident ORDER BY id;
