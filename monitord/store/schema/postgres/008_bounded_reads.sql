-- The incident store, PostgreSQL backend: schema version 8.
-- One host's fix statistics (a host's console page, GET /api/v1/fix-stats?host=) read
-- through an index on the host and the time, not the whole window of every host.
CREATE INDEX fix_step_by_host ON fix_step (host, at);

-- Scrapers: read-only tokens that may only GET /metrics (monitord central add-scraper);
-- only a hash of each token is kept, as for agents.
CREATE TABLE scraper (
    name        text PRIMARY KEY,
    token_hash  text NOT NULL UNIQUE,
    added_at    timestamptz NOT NULL
);
