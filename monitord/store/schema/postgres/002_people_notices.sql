-- The incident store, PostgreSQL backend: schema version 2 (the SQLite schema's v2).
-- People (console passwords and API tokens), notices to deliver, SLA escalation state,
-- secrets every central process shares, and how every fix did.

-- How far up its escalation chain an incident has gone, and when people were last told
-- about it (the re-notification clock; NULL = at opening, for incidents made before v2).
ALTER TABLE incident ADD COLUMN escalation_level integer NOT NULL DEFAULT 0;
ALTER TABLE incident ADD COLUMN notified_at timestamptz;
-- When it was last reopened: the SLA clock of a reopened incident starts there.
ALTER TABLE incident ADD COLUMN reopened_at timestamptz;
CREATE INDEX incident_by_opened ON incident ((coalesce(reopened_at, opened_at)));

-- The on-call people: a console password (scrypt, self-describing) and an API token
-- (sha256), either of which may be missing.
CREATE TABLE person (
    name           text PRIMARY KEY,
    password_hash  text,
    token_hash     text UNIQUE,
    added_at       timestamptz NOT NULL
);
-- Operators' tokens used to sit in the agent table under "@NAME".
INSERT INTO person (name, token_hash, added_at)
    SELECT substr(host, 2), token_hash, added_at FROM agent WHERE host LIKE '@%';
DELETE FROM agent WHERE host LIKE '@%';

-- What people must be told, made in the transaction of the change it tells of; delivered
-- in id order per incident, each claimed by one process at a time (claimed_until, taken
-- with FOR UPDATE SKIP LOCKED).
CREATE TABLE notice (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id    bigint NOT NULL REFERENCES incident (id) ON DELETE CASCADE,
    kind           text NOT NULL CHECK (kind IN ('opened', 'escalated', 'renotify',
                                                 'acknowledged', 'resolved')),
    level          integer NOT NULL,
    created_at     timestamptz NOT NULL,
    next_at        timestamptz NOT NULL,     -- due for (another) delivery round
    attempts       integer NOT NULL DEFAULT 0,
    claimed_until  timestamptz,
    done           text[] NOT NULL DEFAULT '{}',   -- channels that have it
    finished_at    timestamptz,
    last_error     text NOT NULL DEFAULT ''
);
CREATE INDEX notice_pending ON notice (next_at, id) WHERE finished_at IS NULL;
CREATE INDEX notice_by_incident ON notice (incident_id, id) WHERE finished_at IS NULL;

CREATE TABLE secret (
    name   text PRIMARY KEY,
    value  text NOT NULL
);

-- Every fix run the agents reported (each step of a problem's or a healed event's
-- ladder), per host, check and fix: how often it ran, and how often its check passed
-- again right after it. The fix statistics page reads this.
CREATE TABLE fix_run (
    host         text NOT NULL,
    check_name   text NOT NULL,
    fix          text NOT NULL,
    runs         integer NOT NULL,
    worked       integer NOT NULL,
    last_at      timestamptz NOT NULL,
    PRIMARY KEY (host, check_name, fix)
);
