-- The incident store, SQLite backend: schema version 6.
-- Every fix run the agents reported, one row each with when it ran (the agent's time, never
-- later than the store's), so that fix statistics can be read over a window
-- (GET /api/v1/fix-stats?since=7d). fix_run keeps the totals since the beginning; these
-- rows are forgotten after 90 days by the sweep.
CREATE TABLE fix_step (
    id           INTEGER PRIMARY KEY,
    at           REAL NOT NULL,
    host         TEXT NOT NULL,
    check_name   TEXT NOT NULL,
    fix          TEXT NOT NULL,
    worked       INTEGER NOT NULL      -- 1: the re-probe right after it passed
);
CREATE INDEX fix_step_by_at ON fix_step (at);
