-- The incident store, PostgreSQL backend: schema version 3 (the SQLite schema's v3).
-- Priority that follows the current severity (its own check's and its attached
-- children's), flapping incidents that go quiet, maintenance windows and planned stops
-- the store knows of, and every period an incident was open (for the SLA report).

ALTER TABLE event DROP CONSTRAINT event_kind_check;
ALTER TABLE event ADD CONSTRAINT event_kind_check CHECK (kind IN (
    'problem', 'healed', 'recovery', 'heartbeat', 'stopped', 'maintenance'));

ALTER TABLE notice DROP CONSTRAINT notice_kind_check;
ALTER TABLE notice ADD CONSTRAINT notice_kind_check CHECK (kind IN (
    'opened', 'escalated', 'renotify', 'acknowledged', 'resolved', 'flapping'));

-- The priority of the incident's own check's current failure; the incident's priority is
-- the highest of it and its failing attached children's.
ALTER TABLE incident ADD COLUMN own_priority text COLLATE "C"
    CHECK (own_priority IN ('P1', 'P2', 'P3'));
UPDATE incident SET own_priority = priority;
-- Flapping: marked by a problem that says so; flap_at is when the check last changed
-- while flapping, flap_held the last word held back then ('problem' or 'recovery').
ALTER TABLE incident ADD COLUMN flapping boolean NOT NULL DEFAULT false;
ALTER TABLE incident ADD COLUMN flap_at timestamptz;
ALTER TABLE incident ADD COLUMN flap_held text;
CREATE INDEX incident_flapping ON incident (flap_at) WHERE flapping;

-- A child's current priority; NULL once it recovered (it stays listed).
ALTER TABLE attached ADD COLUMN priority text COLLATE "C"
    CHECK (priority IN ('P1', 'P2', 'P3'));
UPDATE attached a SET priority = i.priority FROM incident i WHERE i.id = a.incident_id;
-- A recovery finds the incidents its key is a failing child of.
CREATE INDEX attached_failing ON attached (key) WHERE priority IS NOT NULL;

-- A planned stop: the agent said it was stopped on purpose (its own clock's time).
ALTER TABLE host ADD COLUMN stopped_at timestamptz;

-- Maintenance windows of a host (check_name '') or of one check, from the agents or
-- from people; notices of what is in maintenance are not sent.
CREATE TABLE maintenance (
    host        text NOT NULL,
    check_name  text NOT NULL DEFAULT '',
    until       timestamptz NOT NULL,
    owner       text NOT NULL,
    reason      text NOT NULL,
    set_at      timestamptz NOT NULL,
    PRIMARY KEY (host, check_name)
);

-- Every period an incident was open: from its opening or a reopening to its resolution,
-- with the first acknowledgement of that period. A reopening starts a new one.
CREATE TABLE open_period (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id      bigint NOT NULL REFERENCES incident (id) ON DELETE CASCADE,
    started_at       timestamptz NOT NULL,
    priority         text COLLATE "C" NOT NULL CHECK (priority IN ('P1', 'P2', 'P3')),
    due_at           timestamptz NOT NULL,
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    resolved_at      timestamptz,
    resolved_by      text
);
CREATE INDEX open_period_by_start ON open_period (started_at, id);
CREATE INDEX open_period_current ON open_period (incident_id) WHERE resolved_at IS NULL;
INSERT INTO open_period (incident_id, started_at, priority, due_at, acknowledged_at,
                         acknowledged_by, resolved_at, resolved_by)
    SELECT id, coalesce(reopened_at, opened_at), priority, due_at, acknowledged_at,
           acknowledged_by, resolved_at, resolved_by FROM incident ORDER BY id;
