-- The incident store, PostgreSQL backend: schema version 1 (the SQLite schema's tables).
-- Times are timestamptz; priorities are 'P1' < 'P2' < 'P3' as text (COLLATE "C").
-- Applied once, in one transaction, by postgres_store.migrate, which holds an advisory
-- lock while it runs and records the version in schema_version.

-- Every event id ever applied: the primary key is the dedup (INSERT ... ON CONFLICT (id)
-- DO NOTHING RETURNING id). Payloads live on the timelines, not here.
CREATE TABLE event (
    id           text PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('problem', 'healed', 'recovery', 'heartbeat')),
    host         text NOT NULL,
    check_name   text,
    at           timestamptz NOT NULL,     -- the agent's clock
    received_at  timestamptz NOT NULL      -- the store's clock
);
-- Heartbeat ids are forgotten after a week (re-applying an old heartbeat is harmless).
CREATE INDEX event_heartbeats ON event (received_at) WHERE kind = 'heartbeat';

CREATE TABLE incident (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key              text NOT NULL,        -- host/check
    host             text NOT NULL,
    check_name       text NOT NULL,
    priority         text COLLATE "C" NOT NULL CHECK (priority IN ('P1', 'P2', 'P3')),
    status           text NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
    title            text NOT NULL,
    summary          text NOT NULL,
    opened_at        timestamptz NOT NULL,
    due_at           timestamptz NOT NULL,
    last_seen_at     timestamptz NOT NULL,
    count            integer NOT NULL,
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    resolved_at      timestamptz,
    resolved_by      text,
    reopened         integer NOT NULL DEFAULT 0
);
-- One open (open or acknowledged) incident per key; upserts name this index as their
-- target (ON CONFLICT (key) WHERE status <> 'resolved').
CREATE UNIQUE INDEX incident_open_key ON incident (key) WHERE status <> 'resolved';
CREATE INDEX incident_by_key ON incident (key, id);
CREATE INDEX incident_by_due ON incident (status, due_at, priority, id);
CREATE INDEX incident_by_host ON incident (host, status);

-- Keys of suppressed children attached to a parent's incident.
CREATE TABLE attached (
    incident_id  bigint NOT NULL REFERENCES incident (id) ON DELETE CASCADE,
    key          text NOT NULL,
    PRIMARY KEY (incident_id, key)
);

CREATE TABLE timeline (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id  bigint NOT NULL REFERENCES incident (id) ON DELETE CASCADE,
    at           timestamptz NOT NULL,
    kind         text NOT NULL,
    who          text NOT NULL,
    text         text NOT NULL,
    event_id     text,
    steps        jsonb NOT NULL DEFAULT '[]'   -- the heal transcript, a JSON array
);
CREATE INDEX timeline_by_incident ON timeline (incident_id, id);

-- What the junior tier fixed: one row per host, check and fix (the last step's fix).
CREATE TABLE healed (
    host         text NOT NULL,
    check_name   text NOT NULL,
    fix          text NOT NULL,
    count        integer NOT NULL,
    last_at      timestamptz NOT NULL,
    PRIMARY KEY (host, check_name, fix)
);

-- Every host the store has heard of; heartbeats fill the last two columns. down_since is
-- set by the sweep that opened a "server down" incident and cleared by the next heartbeat,
-- so one outage opens one incident even if a person resolves it while the host is silent.
-- The sweep claims a host by setting it (one UPDATE on rows it locked), so two sweepers
-- in two processes never both open an incident for the same outage.
CREATE TABLE host (
    host              text PRIMARY KEY,
    last_heartbeat    timestamptz,
    interval_seconds  double precision,
    down_since        timestamptz
);

-- Agents allowed to send events: only a hash of each token is kept.
CREATE TABLE agent (
    host        text PRIMARY KEY,
    token_hash  text NOT NULL UNIQUE,
    added_at    timestamptz NOT NULL
);
