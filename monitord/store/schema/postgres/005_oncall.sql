-- The incident store, PostgreSQL backend: schema version 5 (the SQLite schema's v5).
-- On call: people's contact methods, schedules (rotations with their members and
-- overrides) and escalation policies (who is told at each step, and after how long).
-- Who is on call at an instant is computed from these (central/notify/rotation.py),
-- never stored.

-- How a person is reached: a mail address, a webhook or Slack URL (a secret: never
-- logged), or the path of a file holding a PagerDuty integration key (not the key).
CREATE TABLE contact (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person    text NOT NULL REFERENCES person (name) ON DELETE CASCADE,
    kind      text NOT NULL CHECK (kind IN ('mail', 'webhook', 'slack', 'pagerduty')),
    address   text NOT NULL,
    added_at  timestamptz NOT NULL,
    UNIQUE (person, kind, address)
);

-- A rotation: its members take turns, one shift each, handing off every day or week at
-- a local time in an IANA zone; the first member's first shift starts on the anchor day.
CREATE TABLE schedule (
    name      text PRIMARY KEY,
    zone      text NOT NULL,                                      -- "Europe/Berlin"
    rotation  text NOT NULL CHECK (rotation IN ('daily', 'weekly')),
    handoff   text NOT NULL,                                      -- "09:00", local
    anchor    text NOT NULL,                                      -- "2026-03-23", local
    added_at  timestamptz NOT NULL
);

CREATE TABLE schedule_member (
    schedule  text NOT NULL REFERENCES schedule (name) ON DELETE CASCADE,
    position  integer NOT NULL,
    person    text NOT NULL REFERENCES person (name),
    PRIMARY KEY (schedule, position)
);

-- Somebody else on call from starts_at to ends_at; of overlapping ones, the newest wins.
CREATE TABLE override (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schedule   text NOT NULL REFERENCES schedule (name) ON DELETE CASCADE,
    person     text NOT NULL REFERENCES person (name),
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    added_by   text NOT NULL,
    added_at   timestamptz NOT NULL,
    CHECK (ends_at > starts_at)
);
CREATE INDEX override_by_schedule ON override (schedule, ends_at);

-- Who is told of an incident of the policy's priorities, step by step: step n starts
-- when after_share of the priority's response target has passed unacknowledged.
CREATE TABLE escalation_policy (
    name      text PRIMARY KEY,
    added_at  timestamptz NOT NULL
);

-- One policy per priority at most; a priority with none is routed by [escalation].
CREATE TABLE policy_priority (
    priority  text COLLATE "C" PRIMARY KEY CHECK (priority IN ('P1', 'P2', 'P3')),
    policy    text NOT NULL REFERENCES escalation_policy (name) ON DELETE CASCADE
);

CREATE TABLE policy_target (
    policy       text NOT NULL REFERENCES escalation_policy (name) ON DELETE CASCADE,
    step         integer NOT NULL,
    after_share  float8 NOT NULL CHECK (after_share >= 0 AND after_share <= 1),
    position     integer NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('person', 'schedule', 'channel')),
    name         text NOT NULL,
    PRIMARY KEY (policy, step, position)
);
