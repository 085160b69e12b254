-- The incident store, PostgreSQL backend: schema version 9 (the SQLite schema's v9).
-- Maintenance windows that know who set them, and incidents that wait out a window.

-- A window's source: 'agent' (`monitord maintenance` on the host) or 'person' (the
-- console or the API). An agent and a person may each hold a window of the same host or
-- check; the agent's events end only the agent's. Windows from before are taken as the
-- agent's (they end within seven days in any case).
ALTER TABLE maintenance ADD COLUMN source text NOT NULL DEFAULT 'agent'
    CHECK (source IN ('agent', 'person'));
ALTER TABLE maintenance ALTER COLUMN source DROP DEFAULT;
ALTER TABLE maintenance DROP CONSTRAINT maintenance_pkey;
ALTER TABLE maintenance ADD PRIMARY KEY (host, check_name, source);
CREATE INDEX maintenance_by_end ON maintenance (until);

-- announced: people were told of the incident (a notice was made) since it opened or
-- reopened; one held back by a window gets its "opened" notice when the window ends.
ALTER TABLE incident ADD COLUMN announced boolean NOT NULL DEFAULT false;
UPDATE incident SET announced = true WHERE EXISTS (
    SELECT 1 FROM notice n WHERE n.incident_id = incident.id
      AND n.created_at >= coalesce(incident.reopened_at, incident.opened_at));
-- The escalation clock of an incident a window held: restarted at clock_from (the
-- window's end) from level clock_level. NULL: counted from the due time, as before.
ALTER TABLE incident ADD COLUMN clock_from timestamptz;
ALTER TABLE incident ADD COLUMN clock_level integer NOT NULL DEFAULT 0;
