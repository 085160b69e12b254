-- The incident store, SQLite backend: schema version 2.
-- People (console passwords and API tokens), notices to deliver, SLA escalation state,
-- secrets every central process shares, and how every fix did.

-- How far up its escalation chain an incident has gone, and when people were last told
-- about it (the re-notification clock; NULL = at opening, for incidents made before v2).
ALTER TABLE incident ADD COLUMN escalation_level INTEGER NOT NULL DEFAULT 0;
ALTER TABLE incident ADD COLUMN notified_at REAL;
-- When it was last reopened: the SLA clock of a reopened incident starts there.
ALTER TABLE incident ADD COLUMN reopened_at REAL;
CREATE INDEX incident_by_opened ON incident ((coalesce(reopened_at, opened_at)));

-- The on-call people: a console password (scrypt, self-describing) and an API token
-- (sha256), either of which may be missing.
CREATE TABLE person (
    name           TEXT PRIMARY KEY,
    password_hash  TEXT,
    token_hash     TEXT UNIQUE,
    added_at       REAL NOT NULL
) WITHOUT ROWID;
-- Operators' tokens used to sit in the agent table under "@NAME".
INSERT INTO person (name, token_hash, added_at)
    SELECT substr(host, 2), token_hash, added_at FROM agent WHERE host LIKE '@%';
DELETE FROM agent WHERE host LIKE '@%';

-- What people must be told, made in the transaction of the change it tells of; delivered
-- in id order per incident, each claimed by one process at a time (claimed_until).
CREATE TABLE notice (
    id             INTEGER PRIMARY KEY,
    incident_id    INTEGER NOT NULL REFERENCES incident (id) ON DELETE CASCADE,
    kind           TEXT NOT NULL CHECK (kind IN ('opened', 'escalated', 'renotify',
                                                 'acknowledged', 'resolved')),
    level          INTEGER NOT NULL,
    created_at     REAL NOT NULL,
    next_at        REAL NOT NULL,        -- due for (another) delivery round
    attempts       INTEGER NOT NULL DEFAULT 0,
    claimed_until  REAL,
    done           TEXT NOT NULL DEFAULT '[]',   -- channels that have it, a JSON array
    finished_at    REAL,
    last_error     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX notice_pending ON notice (next_at, id) WHERE finished_at IS NULL;
CREATE INDEX notice_by_incident ON notice (incident_id, id) WHERE finished_at IS NULL;

CREATE TABLE secret (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) WITHOUT ROWID;

-- Every fix run the agents reported (each step of a problem's or a healed event's
-- ladder), per host, check and fix: how often it ran, and how often its check passed
-- again right after it. The fix statistics page reads this.
CREATE TABLE fix_run (
    host         TEXT NOT NULL,
    check_name   TEXT NOT NULL,
    fix          TEXT NOT NULL,
    runs         INTEGER NOT NULL,
    worked       INTEGER NOT NULL,
    last_at      REAL NOT NULL,
    PRIMARY KEY (host, check_name, fix)
) WITHOUT ROWID;
