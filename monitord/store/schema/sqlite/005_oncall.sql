-- The incident store, SQLite backend: schema version 5.
-- On call: people's contact methods, schedules (rotations with their members and
-- overrides) and escalation policies (who is told at each step, and after how long).
-- Who is on call at an instant is computed from these (central/notify/rotation.py),
-- never stored.

-- How a person is reached: a mail address, a webhook or Slack URL (a secret: never
-- logged), or the path of a file holding a PagerDuty integration key (not the key).
CREATE TABLE contact (
    id        INTEGER PRIMARY KEY,
    person    TEXT NOT NULL REFERENCES person (name) ON DELETE CASCADE,
    kind      TEXT NOT NULL CHECK (kind IN ('mail', 'webhook', 'slack', 'pagerduty')),
    address   TEXT NOT NULL,
    added_at  REAL NOT NULL,
    UNIQUE (person, kind, address)
);

-- A rotation: its members take turns, one shift each, handing off every day or week at
-- a local time in an IANA zone; the first member's first shift starts on the anchor day.
CREATE TABLE schedule (
    name      TEXT PRIMARY KEY,
    zone      TEXT NOT NULL,                                      -- "Europe/Berlin"
    rotation  TEXT NOT NULL CHECK (rotation IN ('daily', 'weekly')),
    handoff   TEXT NOT NULL,                                      -- "09:00", local
    anchor    TEXT NOT NULL,                                      -- "2026-03-23", local
    added_at  REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE schedule_member (
    schedule  TEXT NOT NULL REFERENCES schedule (name) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    person    TEXT NOT NULL REFERENCES person (name),
    PRIMARY KEY (schedule, position)
) WITHOUT ROWID;

-- Somebody else on call from starts_at to ends_at; of overlapping ones, the newest wins.
CREATE TABLE override (
    id         INTEGER PRIMARY KEY,
    schedule   TEXT NOT NULL REFERENCES schedule (name) ON DELETE CASCADE,
    person     TEXT NOT NULL REFERENCES person (name),
    starts_at  REAL NOT NULL,
    ends_at    REAL NOT NULL,
    added_by   TEXT NOT NULL,
    added_at   REAL NOT NULL,
    CHECK (ends_at > starts_at)
);
CREATE INDEX override_by_schedule ON override (schedule, ends_at);

-- Who is told of an incident of the policy's priorities, step by step: step n starts
-- when after_share of the priority's response target has passed unacknowledged.
CREATE TABLE escalation_policy (
    name      TEXT PRIMARY KEY,
    added_at  REAL NOT NULL
) WITHOUT ROWID;

-- One policy per priority at most; a priority with none is routed by [escalation].
CREATE TABLE policy_priority (
    priority  TEXT PRIMARY KEY CHECK (priority IN ('P1', 'P2', 'P3')),
    policy    TEXT NOT NULL REFERENCES escalation_policy (name) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE TABLE policy_target (
    policy       TEXT NOT NULL REFERENCES escalation_policy (name) ON DELETE CASCADE,
    step         INTEGER NOT NULL,
    after_share  REAL NOT NULL CHECK (after_share >= 0 AND after_share <= 1),
    position     INTEGER NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('person', 'schedule', 'channel')),
    name         TEXT NOT NULL,
    PRIMARY KEY (policy, step, position)
) WITHOUT ROWID;
