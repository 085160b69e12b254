-- The incident store, PostgreSQL backend: schema version 7 (the SQLite schema's v7).
-- Titles that follow the priority, and planned stops measured by the store's clock.

-- The incident's own check's title at each priority ({"P1": ..., "P3": ...}), as its
-- latest problem rendered it; '{}' when its title does not name the priority (the
-- title then stays as it is when the priority moves).
ALTER TABLE incident ADD COLUMN titles jsonb NOT NULL DEFAULT '{}';

-- A planned stop: stopped_at is now when the store heard of it (its own clock, so an
-- agent's clock cannot stretch or shorten stop_limit), stop_made_at when the agent
-- made it (its own clock: a heartbeat it made later ends the stop).
ALTER TABLE host ADD COLUMN stop_made_at timestamptz;
UPDATE host SET stop_made_at = stopped_at WHERE stopped_at IS NOT NULL;
