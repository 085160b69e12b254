-- The incident store, SQLite backend: schema version 9.
-- Maintenance windows that know who set them, and incidents that wait out a window.

-- A window's source: 'agent' (`monitord maintenance` on the host) or 'person' (the
-- console or the API). An agent and a person may each hold a window of the same host or
-- check; the agent's events end only the agent's. Windows from before are taken as the
-- agent's (they end within seven days in any case).
CREATE TABLE maintenance_by_source (
    host        TEXT NOT NULL,
    check_name  TEXT NOT NULL DEFAULT '',
    source      TEXT NOT NULL CHECK (source IN ('agent', 'person')),
    until       REAL NOT NULL,
    owner       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    set_at      REAL NOT NULL,
    PRIMARY KEY (host, check_name, source)
) WITHOUT ROWID;
INSERT INTO maintenance_by_source (host, check_name, source, until, owner, reason, set_at)
    SELECT host, check_name, 'agent', until, owner, reason, set_at FROM maintenance;
DROP TABLE maintenance;
ALTER TABLE maintenance_by_source RENAME TO maintenance;
CREATE INDEX maintenance_by_end ON maintenance (until);

-- announced: people were told of the incident (a notice was made) since it opened or
-- reopened; one held back by a window gets its "opened" notice when the window ends.
ALTER TABLE incident ADD COLUMN announced INTEGER NOT NULL DEFAULT 0;
UPDATE incident SET announced = 1 WHERE EXISTS (
    SELECT 1 FROM notice n WHERE n.incident_id = incident.id
      AND n.created_at >= coalesce(incident.reopened_at, incident.opened_at));
-- The escalation clock of an incident a window held: restarted at clock_from (the
-- window's end) from level clock_level. NULL: counted from the due time, as before.
ALTER TABLE incident ADD COLUMN clock_from REAL;
ALTER TABLE incident ADD COLUMN clock_level INTEGER NOT NULL DEFAULT 0;
