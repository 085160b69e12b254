-- The incident store, PostgreSQL backend: schema version 6.
-- Every fix run the agents reported, one row each with when it ran (the agent's time, never
-- later than the store's), so that fix statistics can be read over a window
-- (GET /api/v1/fix-stats?since=7d). fix_run keeps the totals since the beginning; these
-- rows are forgotten after 90 days by the sweep.
CREATE TABLE fix_step (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL,
    host         text NOT NULL,
    check_name   text NOT NULL,
    fix          text NOT NULL,
    worked       integer NOT NULL      -- 1: the re-probe right after it passed
);
CREATE INDEX fix_step_by_at ON fix_step (at);
