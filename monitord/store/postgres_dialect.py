"""The PostgreSQL store's SQL: one statement for each of the rules' statement names, written
with ``:name`` parameters, numbered for asyncpg (``$n``) once, when the module loads.
The race-closing devices the module docstring of ``postgres`` lists are here: the batch
claim in id order, the per-key advisory lock, ``FOR UPDATE`` in the sweep's claim and on
the incident a person acts on, ``SKIP LOCKED`` in the notice claim."""

from __future__ import annotations

from collections.abc import Mapping

from monitord.store import people_sql
from monitord.store.ops import Query, dialect, numbered
from monitord.store.ops import Statement as S


def query(text: str) -> Query:
    return numbered(text, "$")


# A host is silent when its last heartbeat is older than its allowed silence.
SILENT = """(h.last_heartbeat IS NOT NULL
    AND :now::timestamptz - h.last_heartbeat > make_interval(secs => greatest(
        :min_silence::float8, :missed::float8 * h.interval_seconds)))"""
INCIDENT = """SELECT i.*, ARRAY(SELECT a.key FROM attached a WHERE a.incident_id = i.id
        ORDER BY a.key) AS attached_keys FROM incident i"""
OPENED = "coalesce(i.reopened_at, i.opened_at)"
NOTICE_COLUMNS = "id, incident_id, kind, level, created_at, attempts, done"
# The response target of the incident's priority, from the targets the rules bind.
TARGET = "make_interval(secs => (:targets::jsonb ->> priority)::float8)"
# The share of it at which the incident's next level is reached (NULL past the last).
NEXT_SHARE = "(:shares::jsonb -> priority ->> (escalation_level + 1))::float8"

_SQL: dict[str, str] = {
    # The batch's (host, id) in that order, so two batches sharing ids wait for each other
    # instead of deadlocking; the loser of a race waits for the winner's commit, then sees
    # them. Ids are unique per host: another host's event with the same id is another event.
    S.CLAIM_EVENTS: """INSERT INTO event (id, kind, host, check_name, at, received_at)
        SELECT e.id, e.kind, e.host, e.check_name, e.at, :now
        FROM unnest(:ids::text[], :kinds::text[], :hosts::text[], :checks::text[],
                    :ats::timestamptz[]) AS e (id, kind, host, check_name, at)
        ORDER BY e.host, e.id
        ON CONFLICT (host, id) DO NOTHING RETURNING host, id""",
    S.NOTE_HOST: "INSERT INTO host (host) VALUES (:host) ON CONFLICT (host) DO NOTHING",
    S.COUNT_FIX_RUN: """INSERT INTO fix_run (host, check_name, fix, runs, worked, last_at)
        VALUES (:host, :check, :fix, 1, :worked, :now)
        ON CONFLICT (host, check_name, fix) DO UPDATE SET runs = fix_run.runs + 1,
            worked = fix_run.worked + excluded.worked, last_at = excluded.last_at""",
    S.LOG_FIX_RUN: """INSERT INTO fix_step (at, host, check_name, fix, worked)
        VALUES (:at, :host, :check, :fix, :worked)""",
    S.COUNT_HEALED: """INSERT INTO healed (host, check_name, fix, count, last_at)
        VALUES (:host, :check, :fix, 1, :now) ON CONFLICT (host, check_name, fix)
        DO UPDATE SET count = healed.count + 1, last_at = excluded.last_at""",
    S.HEARTBEAT: """UPDATE host SET last_heartbeat = :now, interval_seconds = :interval,
        down_since = NULL WHERE host = :host""",
    # Held to the end of the transaction: two processes never both reopen an incident, or
    # one reopen it while the other opens a new one.
    S.LOCK_KEY: "SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))",
    S.REOPEN: """UPDATE incident SET status = 'open', priority = :priority,
            due_at = :due_at, acknowledged_at = NULL, acknowledged_by = NULL,
            resolved_at = NULL, resolved_by = NULL, reopened = reopened + 1,
            escalation_level = 0, notified_at = :now, reopened_at = :now
        WHERE id = (SELECT max(id) FROM incident WHERE key = :key)
          AND status = 'resolved' AND resolved_at > :since RETURNING id""",
    S.RAISE_PRIORITY: """UPDATE incident SET priority = :priority,
            due_at = least(due_at, :due_at), notified_at = :now
        WHERE key = :key AND status <> 'resolved' AND priority > :priority
        RETURNING due_at""",
    # One open incident per key: the partial unique index is the upsert's target.
    S.UPSERT: """INSERT INTO incident (key, host, check_name, priority, status, title,
            summary, opened_at, due_at, last_seen_at, count, notified_at)
        VALUES (:key, :host, :check, :priority, 'open', :title, :summary, :now, :due_at,
                :now, 1, :now)
        ON CONFLICT (key) WHERE status <> 'resolved' DO UPDATE SET count = incident.count + 1,
            last_seen_at = excluded.last_seen_at, summary = excluded.summary
        RETURNING id, count""",
    S.OPEN_FOR_KEY: "SELECT id FROM incident WHERE key = :key AND status <> 'resolved'",
    S.RESOLVE_KEY: """UPDATE incident SET status = 'resolved', resolved_at = :now,
            resolved_by = :who
        WHERE key = :key AND status <> 'resolved' RETURNING id""",
    S.ATTACH: """INSERT INTO attached (incident_id, key) VALUES (:id, :key)
        ON CONFLICT (incident_id, key) DO NOTHING""",
    S.ADD_ENTRY: """INSERT INTO timeline (incident_id, at, kind, who, text, event_id, steps)
        VALUES (:id, :at, :kind, :who, :text, :event_id, :steps::jsonb)""",
    S.FORGET_FIX_RUNS: "DELETE FROM fix_step WHERE at < :before",
    S.FORGET_HEARTBEATS: """DELETE FROM event
        WHERE kind = 'heartbeat' AND received_at < :before""",
    # Rows locked in host order; a row another sweep changed meanwhile is checked again
    # after the wait (READ COMMITTED), and then no longer matches.
    S.CLAIM_SILENT: f"""WITH silent AS (
            SELECT h.host FROM host h WHERE h.down_since IS NULL AND {SILENT}
            ORDER BY h.host FOR UPDATE)
        UPDATE host h SET down_since = :now FROM silent WHERE h.host = silent.host
        RETURNING h.host, h.last_heartbeat, h.interval_seconds""",
    S.LOCK_INCIDENT: "SELECT status, key FROM incident WHERE id = :id FOR UPDATE",
    # A second acknowledgement keeps the first one's time and name (the SLA counts the
    # first).
    S.ACKNOWLEDGE: """UPDATE incident SET status = 'acknowledged',
            acknowledged_at = coalesce(acknowledged_at, :now),
            acknowledged_by = coalesce(acknowledged_by, :who)
        WHERE id = :id AND status <> 'resolved' RETURNING id""",
    S.RESOLVE: """UPDATE incident SET status = 'resolved', resolved_at = :now,
        resolved_by = :who WHERE id = :id AND status <> 'resolved' RETURNING id""",
    # Notices: made beside the change they tell of, at the incident's current level.
    S.ADD_NOTICE: f"""INSERT INTO notice (incident_id, kind, level, created_at, next_at)
        SELECT id, :kind, escalation_level, :now, :now FROM incident WHERE id = :id
        RETURNING {NOTICE_COLUMNS}""",
    # Under READ COMMITTED a second process's UPDATE waits for the first and re-checks
    # the row, so a level is reached (and told) once.
    S.ESCALATE: f"""UPDATE incident SET escalation_level = escalation_level + 1,
            notified_at = :now
        WHERE status = 'open'
          AND :now >= due_at - (1.0 - {NEXT_SHARE}) * {TARGET}
        RETURNING id""",
    S.RENOTIFY: """UPDATE incident SET notified_at = :now
        WHERE status = 'open' AND priority = :priority
          AND coalesce(notified_at, opened_at) <= :now::timestamptz - :every::interval
          AND NOT EXISTS (SELECT 1 FROM notice n WHERE n.incident_id = incident.id
                          AND n.kind = 'renotify' AND n.finished_at IS NULL)
        RETURNING id""",
    # Due, not leased to anyone, and not behind an older notice of its incident that is on
    # its first round (people hear of an incident's changes in the order they happened;
    # one that waits for a retry holds back nothing). SKIP LOCKED: two processes claiming
    # at once take different notices.
    S.CLAIM_NOTICES: f"""UPDATE notice SET claimed_until = :until,
            attempts = attempts + 1
        WHERE id IN (SELECT n.id FROM notice n
            WHERE n.finished_at IS NULL AND n.next_at <= :now
              AND (n.claimed_until IS NULL OR n.claimed_until <= :now)
              AND NOT EXISTS (SELECT 1 FROM notice o WHERE o.incident_id = n.incident_id
                              AND o.finished_at IS NULL AND o.id < n.id
                              AND (o.attempts = 0 OR o.claimed_until > :now))
            ORDER BY n.id LIMIT :limit FOR UPDATE OF n SKIP LOCKED)
        RETURNING {NOTICE_COLUMNS}""",
    S.FINISH_NOTICE: """UPDATE notice SET done = :done::text[], claimed_until = NULL,
            last_error = :error, next_at = coalesce(:retry_at::timestamptz, next_at),
            finished_at = CASE WHEN :retry_at::timestamptz IS NULL
                               THEN :now::timestamptz END
        WHERE id = :id AND attempts = :attempts AND finished_at IS NULL
        RETURNING incident_id""",
    S.INCIDENTS: f"""{INCIDENT}
        WHERE (cardinality(:statuses::text[]) = 0 OR i.status = ANY (:statuses::text[]))
          AND (cardinality(:priorities::text[]) = 0
               OR i.priority = ANY (:priorities::text[]))
          AND (:host::text IS NULL OR i.host = :host::text)
        ORDER BY i.due_at, i.priority, i.id LIMIT :limit""",
    S.ONE_INCIDENT: f"{INCIDENT} WHERE i.id = :id",
    S.TIMELINE: """SELECT at, kind, who, text, event_id, steps
        FROM timeline WHERE incident_id = :id ORDER BY id""",
    S.OPENED_BETWEEN: f"""{INCIDENT} WHERE {OPENED} >= :since AND {OPENED} < :until
        ORDER BY {OPENED}, i.id""",
    S.HOSTS: f"""SELECT h.host, h.last_heartbeat, h.interval_seconds,
            (h.down_since IS NOT NULL OR {SILENT}) AS down,
            (SELECT count(*) FROM incident i WHERE i.host = h.host AND i.status <> 'resolved')
                AS open_incidents
        FROM host h ORDER BY h.host""",
    S.HEALED_COUNTS: """SELECT host, check_name, fix, count FROM healed
        ORDER BY host, check_name, fix""",
    S.FIX_RUNS: """SELECT host, check_name, fix, runs, worked FROM fix_run
        ORDER BY host, check_name, fix""",
    S.FIX_STATS: """SELECT host, check_name, fix, count(*) AS runs, sum(worked) AS worked,
            max(at) AS last_at
        FROM fix_step WHERE at >= :since
        GROUP BY host, check_name, fix ORDER BY host, check_name, fix""",
    S.OPEN_COUNTS: """SELECT priority, status, count(*) AS count FROM incident
        WHERE status <> 'resolved' GROUP BY priority, status""",
    S.SET_PASSWORD: """INSERT INTO person (name, password_hash, added_at)
        VALUES (:name, :hash, :now)
        ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash""",
    S.PASSWORD_HASH: "SELECT password_hash FROM person WHERE name = :name",
    S.SESSION_GENERATION: "SELECT session_generation FROM person WHERE name = :name",
    S.END_SESSIONS: """UPDATE person SET session_generation = session_generation + 1
        WHERE name = :name""",
    S.SET_PERSON_TOKEN: """INSERT INTO person (name, token_hash, added_at)
        VALUES (:name, :hash, :now)
        ON CONFLICT (name) DO UPDATE SET token_hash = excluded.token_hash""",
    S.PERSON_FOR: "SELECT name FROM person WHERE token_hash = :hash",
    S.ADD_AGENT: """INSERT INTO agent (host, token_hash, added_at)
        VALUES (:host, :token_hash, :now)
        ON CONFLICT (host) DO UPDATE SET token_hash = excluded.token_hash,
            added_at = excluded.added_at""",
    S.AGENT_FOR: "SELECT host FROM agent WHERE token_hash = :token_hash",
    S.OFFER_SECRET: """INSERT INTO secret (name, value) VALUES (:name, :value)
        ON CONFLICT (name) DO NOTHING""",
    S.SECRET: "SELECT value FROM secret WHERE name = :name",
}
SQL: Mapping[str, Query] = dialect("PostgreSQL", {
    name: query(text) for name, text in {**_SQL, **people_sql.POSTGRES}.items()})

# Migrations: the lock makes a second process wait, then find the work done.
LOCK_MIGRATIONS = query("SELECT pg_advisory_xact_lock(:lock)")
VERSION_TABLE = query("""CREATE TABLE IF NOT EXISTS schema_version (
    version integer PRIMARY KEY, name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now())""")
CURRENT_VERSION = query("SELECT coalesce(max(version), 0) FROM schema_version")
RECORD_VERSION = query("INSERT INTO schema_version (version, name) VALUES (:version, :name)")
