"""The PostgreSQL store's SQL: one statement for each of the rules' statement names, written
with ``:name`` parameters, numbered for asyncpg (``$n``) once, when the module loads.
``OWN`` holds the statements that read otherwise here than in SQLite; those that read the
same in both are ``common_sql``'s.
The race-closing devices the module docstring of ``postgres`` lists are here: the batch
claim in id order, the per-key advisory lock, ``FOR UPDATE`` in the sweep's claim and on
the incident a person acts on, ``SKIP LOCKED`` in the notice claim."""

from __future__ import annotations

from collections.abc import Mapping

from monitord.store import people_sql
from monitord.store.common_sql import BUSIEST_FIRST, COMMON, FIX_STEPS, NOTICE_COLUMNS, OPENED
from monitord.store.ops import Query, dialect, numbered
from monitord.store.ops import Statement as S


def query(text: str) -> Query:
    return numbered(text, "$")


# A host is silent when its last heartbeat is older than its allowed silence.
# A stop the agent announced keeps it from being silent until the stop grows too long.
SILENT = """(h.last_heartbeat IS NOT NULL
    AND :now::timestamptz - h.last_heartbeat > make_interval(secs => greatest(
        :min_silence::float8, :missed::float8 * h.interval_seconds))
    AND (h.stopped_at IS NULL
         OR :now::timestamptz - h.stopped_at > make_interval(secs => :stop_limit::float8)))"""
INCIDENT = """SELECT i.*, ARRAY(SELECT a.key FROM attached a WHERE a.incident_id = i.id
        ORDER BY a.key) AS attached_keys FROM incident i"""
# The response target of the incident's priority, from the targets the rules bind.
TARGET = "make_interval(secs => (:targets::jsonb ->> priority)::float8)"
# The share of it at which the incident's next level is reached (NULL past the last).
NEXT_SHARE = "(:shares::jsonb -> priority ->> (escalation_level + 1))::float8"
# The share at which the level its clock restarted from was reached (a window held it).
CLOCK_SHARE = "coalesce((:shares::jsonb -> priority ->> clock_level)::float8, 0)"
# When its levels are counted from: the opening (its due time less the target), or
# where a window's end restarted its clock.
CLOCK_BASE = f"coalesce(clock_from - {CLOCK_SHARE} * {TARGET}, due_at - {TARGET})"
# A window running at :now over the incident ``i``'s host, or its check.
IN_MAINTENANCE = """SELECT 1 FROM maintenance m WHERE m.host = i.host
    AND m.check_name IN ('', i.check_name) AND m.until > :now::timestamptz"""
# One host's row (as HOSTS).
HOST_ROW = f"""SELECT h.host, h.last_heartbeat, h.interval_seconds, h.stopped_at,
            (h.down_since IS NOT NULL OR {SILENT}) AS down,
            (SELECT count(*) FROM incident i WHERE i.host = h.host AND i.status <> 'resolved')
                AS open_incidents
        FROM host h"""

OWN: dict[str, str] = {
    # The batch's (host, id) in that order, so two batches sharing ids wait for each other
    # instead of deadlocking; the loser of a race waits for the winner's commit, then sees
    # them. Ids are unique per host: another host's event with the same id is another event.
    S.CLAIM_EVENTS: """INSERT INTO event (id, kind, host, check_name, at, received_at)
        SELECT e.id, e.kind, e.host, e.check_name, e.at, :now
        FROM unnest(:ids::text[], :kinds::text[], :hosts::text[], :checks::text[],
                    :ats::timestamptz[]) AS e (id, kind, host, check_name, at)
        ORDER BY e.host, e.id
        ON CONFLICT (host, id) DO NOTHING RETURNING host, id""",
    S.COUNT_FIX_RUN: """INSERT INTO fix_run (host, check_name, fix, runs, worked, last_at)
        VALUES (:host, :check, :fix, 1, :worked, :now)
        ON CONFLICT (host, check_name, fix) DO UPDATE SET runs = fix_run.runs + 1,
            worked = fix_run.worked + excluded.worked, last_at = excluded.last_at""",
    S.COUNT_HEALED: """INSERT INTO healed (host, check_name, fix, count, last_at)
        VALUES (:host, :check, :fix, 1, :now) ON CONFLICT (host, check_name, fix)
        DO UPDATE SET count = healed.count + 1, last_at = excluded.last_at""",
    # A heartbeat the agent made after it announced a stop ends the stop (both times of
    # the agent's clock).
    S.HEARTBEAT: """UPDATE host SET last_heartbeat = :now, interval_seconds = :interval,
        down_since = NULL,
        stopped_at = CASE WHEN stop_made_at >= :at::timestamptz THEN stopped_at END,
        stop_made_at = CASE WHEN stop_made_at >= :at::timestamptz THEN stop_made_at END
        WHERE host = :host""",
    # Held to the end of the transaction: two processes never both reopen an incident, or
    # one reopen it while the other opens a new one.
    S.LOCK_KEY: "SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))",
    S.REOPEN: """UPDATE incident SET status = 'open', priority = :priority,
            due_at = :due_at, acknowledged_at = NULL, acknowledged_by = NULL,
            resolved_at = NULL, resolved_by = NULL, reopened = reopened + 1,
            escalation_level = 0, notified_at = :now, reopened_at = :now,
            own_priority = :priority, title = :title, titles = :titles::jsonb,
            flapping = false, flap_at = NULL, flap_held = NULL, announced = false,
            clock_from = NULL, clock_level = 0
        WHERE id = (SELECT max(id) FROM incident WHERE key = :key)
          AND status = 'resolved' AND resolved_at > :since RETURNING id""",
    # One open incident per key: the partial unique index is the upsert's target. The
    # title changes with the check's own priority, and is the new one's at the
    # incident's priority (which SET_PRIORITY moves on with it).
    S.UPSERT: """INSERT INTO incident (key, host, check_name, priority, own_priority, status,
            title, titles, summary, opened_at, due_at, last_seen_at, count, notified_at)
        VALUES (:key, :host, :check, :priority, :priority, 'open', :title, :titles::jsonb,
                :summary, :now, :due_at, :now, 1, :now)
        ON CONFLICT (key) WHERE status <> 'resolved' DO UPDATE SET count = incident.count + 1,
            last_seen_at = excluded.last_seen_at, summary = excluded.summary,
            title = CASE WHEN incident.own_priority IS NOT DISTINCT FROM excluded.own_priority
                         THEN incident.title
                         ELSE coalesce(excluded.titles ->> incident.priority::text,
                                       excluded.title) END,
            titles = CASE WHEN incident.own_priority IS NOT DISTINCT FROM excluded.own_priority
                          THEN incident.titles ELSE excluded.titles END,
            own_priority = excluded.own_priority
        RETURNING id, count, priority, flapping, flap_at""",
    S.OPEN_FOR_KEY: "SELECT id FROM incident WHERE key = :key AND status <> 'resolved'",
    S.RESOLVE_KEY: """UPDATE incident SET status = 'resolved', resolved_at = :now,
            resolved_by = :who, flapping = false, flap_at = NULL, flap_held = NULL
        WHERE key = :key AND status <> 'resolved'
          AND NOT (flapping AND flap_at > :quiet_since::timestamptz) RETURNING id""",
    S.CHILD_RECOVERED: """UPDATE attached SET priority = NULL
        WHERE key = :key AND priority IS NOT NULL AND incident_id IN (
            SELECT id FROM incident WHERE status <> 'resolved')
        RETURNING incident_id AS id""",
    # Read after the incident's row is locked (by the upsert or LOCK_INCIDENT): a fresh
    # statement, so it sees every child attached by transactions committed meanwhile.
    S.INCIDENT_STATE: """SELECT i.priority, i.due_at,
            coalesce(i.reopened_at, i.opened_at) AS answer_from, i.flapping, i.flap_at,
            least(i.own_priority, (SELECT min(a.priority) FROM attached a
                                   WHERE a.incident_id = i.id)) AS wanted
        FROM incident i WHERE i.id = :id""",
    # The title moves with the priority, when the check's title names it.
    S.SET_PRIORITY: """UPDATE incident SET priority = :priority::text, due_at = :due_at,
            title = coalesce(titles ->> :priority::text, title),
            notified_at = CASE WHEN :raised::boolean THEN :now::timestamptz
                               ELSE notified_at END
        WHERE id = :id""",
    S.FLAP_MARK: """UPDATE incident SET flapping = true, flap_at = :now, flap_held = NULL
        WHERE id = :id""",
    S.FLAP_HOLD: """UPDATE incident SET flap_at = :now, flap_held = :held
        WHERE key = :key AND status <> 'resolved' AND flapping RETURNING id""",
    S.FLAP_END: """UPDATE incident SET flapping = false, flap_at = NULL, flap_held = NULL
        WHERE id = :id""",
    S.SETTLE_FLAPS: """SELECT id, flap_held FROM incident
        WHERE flapping AND flap_at <= :quiet_since AND flap_held IS NOT NULL
          AND status <> 'resolved' ORDER BY id FOR UPDATE SKIP LOCKED""",
    # A period keeps the most urgent priority it had and the earliest due time.
    S.PERIOD_PRIORITY: """UPDATE open_period SET priority = least(priority, :priority::text),
            due_at = least(due_at, :due_at::timestamptz)
        WHERE incident_id = :id AND resolved_at IS NULL""",
    # stopped_at: when the store heard of the latest stop the agent made (an older stop
    # delivered late changes nothing).
    S.STOPPED: """UPDATE host
        SET stopped_at = CASE WHEN stop_made_at >= :at::timestamptz THEN stopped_at
                              ELSE :now::timestamptz END,
            stop_made_at = greatest(:at::timestamptz, stop_made_at)
        WHERE host = :host""",
    # The same window told again (an agent that starts says its windows) keeps its set_at.
    S.SET_MAINTENANCE: """INSERT INTO maintenance (host, check_name, source, until, owner,
            reason, set_at) VALUES (:host, :check, :source, :until, :owner, :reason, :now)
        ON CONFLICT (host, check_name, source) DO UPDATE SET until = excluded.until,
            owner = excluded.owner, reason = excluded.reason,
            set_at = CASE WHEN maintenance.until = excluded.until
                          AND maintenance.owner = excluded.owner
                          AND maintenance.reason = excluded.reason THEN maintenance.set_at
                          ELSE excluded.set_at END""",
    # A source's window, or (no source: a person ending it) every source's.
    S.END_MAINTENANCE: """DELETE FROM maintenance WHERE host = :host AND check_name = :check
        AND (:source::text IS NULL OR source = :source::text)
        RETURNING host, check_name, until""",
    # A window the agent says has expired: not one set again since with a later end.
    S.EXPIRE_MAINTENANCE: """DELETE FROM maintenance WHERE host = :host AND check_name = :check
        AND source = :source AND until <= :until::timestamptz
        RETURNING host, check_name, until""",
    # Locked in key order, so two sweeps wait for each other rather than deadlock; the
    # second finds them gone.
    S.CLAIM_EXPIRED: """WITH over AS (
            SELECT host, check_name, source FROM maintenance WHERE until <= :now
            ORDER BY host, check_name, source FOR UPDATE)
        DELETE FROM maintenance m USING over WHERE m.host = over.host
            AND m.check_name = over.check_name AND m.source = over.source
        RETURNING m.host, m.check_name, m.until""",
    # What a window that ended at :until held (opened before its end, and in no other
    # window now): its escalation clock restarts from there, at its current level.
    S.WINDOW_ENDED: f"""UPDATE incident AS i SET clock_from = :until,
            clock_level = escalation_level, notified_at = :until
        WHERE i.host = :host AND (:check::text = '' OR i.check_name = :check::text)
          AND i.status <> 'resolved'
          AND coalesce(i.reopened_at, i.opened_at) < :until::timestamptz
          AND NOT EXISTS ({IN_MAINTENANCE})
        RETURNING id, status, announced""",
    S.ADD_ENTRY: """INSERT INTO timeline (incident_id, at, kind, who, text, event_id, steps)
        VALUES (:id, :at, :kind, :who, :text, :event_id, :steps::jsonb)""",
    # Rows locked in host order; a row another sweep changed meanwhile is checked again
    # after the wait (READ COMMITTED), and then no longer matches.
    S.CLAIM_SILENT: f"""WITH silent AS (
            SELECT h.host FROM host h WHERE h.down_since IS NULL AND {SILENT}
            ORDER BY h.host FOR UPDATE)
        UPDATE host h SET down_since = :now FROM silent WHERE h.host = silent.host
        RETURNING h.host, h.last_heartbeat, h.interval_seconds, h.stopped_at""",
    S.LOCK_INCIDENT: "SELECT status, key FROM incident WHERE id = :id FOR UPDATE",
    # A second acknowledgement keeps the first one's time and name (the SLA counts the
    # first).
    S.ACKNOWLEDGE: """UPDATE incident SET status = 'acknowledged',
            acknowledged_at = coalesce(acknowledged_at, :now),
            acknowledged_by = coalesce(acknowledged_by, :who)
        WHERE id = :id AND status <> 'resolved' RETURNING id""",
    S.RESOLVE: """UPDATE incident SET status = 'resolved', resolved_at = :now,
        resolved_by = :who, flapping = false, flap_at = NULL, flap_held = NULL
        WHERE id = :id AND status <> 'resolved' RETURNING id""",
    # Notices: made beside the change they tell of, at the incident's current level;
    # none for what is in maintenance.
    S.ADD_NOTICE: f"""INSERT INTO notice (incident_id, kind, level, created_at, next_at)
        SELECT i.id, :kind, i.escalation_level, :now, :now FROM incident i
        WHERE i.id = :id AND (NOT EXISTS ({IN_MAINTENANCE})
              OR (i.announced AND :kind::text IN ('acknowledged', 'resolved')))
        RETURNING {NOTICE_COLUMNS}""",
    S.ANNOUNCED: "UPDATE incident SET announced = true WHERE id = :id AND NOT announced",
    # Under READ COMMITTED a second process's UPDATE waits for the first and re-checks
    # the row, so a level is reached (and told) once.
    # In maintenance, the clock waits: no level is reached, no reminder made.
    S.ESCALATE: f"""UPDATE incident AS i SET escalation_level = escalation_level + 1,
            notified_at = :now
        WHERE status = 'open'
          AND :now::timestamptz >= {CLOCK_BASE} + {NEXT_SHARE} * {TARGET}
          AND NOT EXISTS ({IN_MAINTENANCE})
        RETURNING id""",
    S.RENOTIFY: f"""UPDATE incident AS i SET notified_at = :now
        WHERE status = 'open' AND priority = :priority
          AND coalesce(notified_at, opened_at) <= :now::timestamptz - :every::interval
          AND NOT EXISTS (SELECT 1 FROM notice n WHERE n.incident_id = i.id
                          AND n.kind = 'renotify' AND n.finished_at IS NULL)
          AND NOT EXISTS ({IN_MAINTENANCE})
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
    S.OPENED_BETWEEN: f"""{INCIDENT} WHERE {OPENED} >= :since AND {OPENED} < :until
        ORDER BY {OPENED}, i.id""",
    S.HOSTS: f"""SELECT h.host, h.last_heartbeat, h.interval_seconds, h.stopped_at,
            (h.down_since IS NOT NULL OR {SILENT}) AS down,
            (SELECT count(*) FROM incident i WHERE i.host = h.host AND i.status <> 'resolved')
                AS open_incidents
        FROM host h ORDER BY h.host""",
    # Bounded reads: one host, a page of hosts, one host's windows, fix statistics
    # filtered by host (the fix_step_by_host index) or check, the busiest :limit of them.
    S.ONE_HOST: f"{HOST_ROW} WHERE h.host = :host",
    S.HOSTS_PAGE: f"{HOST_ROW} ORDER BY h.host LIMIT :limit OFFSET :offset",
    S.HOST_MAINTENANCE: """SELECT host, check_name, until, owner, reason, set_at, source
        FROM maintenance WHERE host = :host AND until > :now::timestamptz
        ORDER BY check_name, source""",
    S.HOST_FIX_STATS: f"""{FIX_STEPS} WHERE host = :host AND at >= :since
            AND (:check::text IS NULL OR check_name = :check::text)
        {BUSIEST_FIRST}""",
    S.FIX_STATS_CAPPED: f"""{FIX_STEPS} WHERE at >= :since
            AND (:check::text IS NULL OR check_name = :check::text)
        {BUSIEST_FIRST}""",
}
SQL: Mapping[str, Query] = dialect("PostgreSQL", {
    name: query(text) for name, text in {**COMMON, **OWN, **people_sql.POSTGRES}.items()})

# Migrations: the lock makes a second process wait, then find the work done.
LOCK_MIGRATIONS = query("SELECT pg_advisory_xact_lock(:lock)")
VERSION_TABLE = query("""CREATE TABLE IF NOT EXISTS schema_version (
    version integer PRIMARY KEY, name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now())""")
CURRENT_VERSION = query("SELECT coalesce(max(version), 0) FROM schema_version")
RECORD_VERSION = query("INSERT INTO schema_version (version, name) VALUES (:version, :name)")
