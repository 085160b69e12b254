"""The SQLite store's SQL and types: one statement (or nothing) for each of the rules'
statement names, plain, with ``:name`` parameters, numbered (``?n``) once, when the module
loads; and how the rules' values are kept: times as epoch seconds, durations as seconds,
lists and dicts as JSON text. ``OWN`` holds the statements that read otherwise here than
in PostgreSQL; those that read the same in both are ``common_sql``'s.

Which parameters are converted is decided by name, once per statement, not by looking
at each value's type as it is bound: a batch binds some hundred thousand values, and a
Python step for each of them is a cost an ingest feels. Every name a statement uses must
be in one of the classes below, or the module does not load.
"""

from __future__ import annotations

import datetime as dt
import json
import operator
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from monitord.store import people_sql
from monitord.store.common_sql import BUSIEST_FIRST, COMMON, FIX_STEPS, NOTICE_COLUMNS, OPENED
from monitord.store.ops import Statement as S
from monitord.store.ops import dialect, numbered

TIME_PARAMS = frozenset({"now", "at", "due_at", "since", "until", "before", "retry_at",
                         "quiet_since"})
DURATION_PARAMS = frozenset({"every"})
JSON_PARAMS = frozenset({"steps", "done", "statuses", "priorities", "targets", "shares",
                         "titles"})
PLAIN_PARAMS = frozenset({
    "id", "key", "host", "check", "kind", "priority", "title", "summary", "who", "text",
    "event_id", "fix", "worked", "interval", "min_silence", "missed", "share", "max_level",
    "limit", "attempts", "error", "name", "hash", "token_hash", "value", "stop_limit",
    "raised", "held", "owner", "reason", "source"})
# Columns that come back as times and as JSON.
TIME_COLUMNS = frozenset({"at", "opened_at", "due_at", "last_seen_at", "acknowledged_at",
                          "resolved_at", "reopened_at", "notified_at", "created_at",
                          "last_heartbeat", "last_at", "stopped_at", "flap_at",
                          "answer_from", "started_at", "set_at", "until"})
JSON_COLUMNS = frozenset({"attached_keys", "done", "steps"})
# The on-call statements' own (people_sql).
TIME_PARAMS |= people_sql.TIME_PARAMS
PLAIN_PARAMS |= people_sql.PLAIN_PARAMS
TIME_COLUMNS |= people_sql.TIME_COLUMNS
PLAIN_PARAMS |= {"offset"}          # a page of hosts


class Bound:
    """A statement, how to bind the rules' parameters to it, and how to read its rows."""

    def __init__(self, text: str) -> None:
        query = numbered(text, "?")
        unknown = set(query.names) - TIME_PARAMS - DURATION_PARAMS - JSON_PARAMS - PLAIN_PARAMS
        if unknown:
            raise ImportError(f"the SQLite store does not know how to keep {sorted(unknown)}")
        self.sql = query.sql
        # The parameters, in number order, as SQLite keeps them.
        self.args: Callable[[Mapping[str, Any]], Sequence[Any]] = _binder(query.names)
        self._columns: _Columns | None = None    # learnt from the first result

    def rows(self, cursor: sqlite3.Cursor, found: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        """The rows ``cursor`` gave (as plain tuples, SQLite's fastest way out) as the rules
        read them: times as aware datetimes, JSON as lists."""
        columns = self._columns
        if columns is None or len(columns.names) != len(found[0]):   # a newer schema's
            columns = self._learn(cursor)                              # i.* has more
        rows = [dict(zip(columns.names, values, strict=True)) for values in found]
        for row in rows:
            for name in columns.times:
                if row[name] is not None:
                    row[name] = dt.datetime.fromtimestamp(row[name], dt.UTC)
            for name in columns.json:
                row[name] = json.loads(row[name])
        return rows

    def _learn(self, cursor: sqlite3.Cursor) -> _Columns:
        """The statement's columns, learnt from its first result (and again if a newer
        monitord added columns to the file since); two threads learning at once learn
        the same thing."""
        names = tuple(column[0] for column in cursor.description)
        self._columns = _Columns(names, TIME_COLUMNS.intersection(names),
                                 JSON_COLUMNS.intersection(names))
        return self._columns


@dataclass(frozen=True)
class _Columns:
    names: tuple[str, ...]
    times: frozenset[str]
    json: frozenset[str]


def epoch(moment: dt.datetime) -> float:
    if moment.tzinfo is None:
        raise ValueError(f"expected a timezone-aware time, got {moment.isoformat()}")
    return moment.timestamp()


def _binder(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], Sequence[Any]]:
    """What takes a statement's parameters from the rules' dict, converting the times,
    durations and JSON among them; made once per statement, for what it converts."""
    values = _getter(names)
    times, durations = _slots(names, TIME_PARAMS), _slots(names, DURATION_PARAMS)
    jsons = _slots(names, JSON_PARAMS)
    if not (times or durations or jsons):
        return values

    def bind(params: Mapping[str, Any]) -> list[Any]:
        args = list(values(params))
        for i in times:
            if (moment := args[i]) is not None:
                if moment.tzinfo is None:      # epoch() inline: one call fewer per time
                    raise ValueError(f"expected a timezone-aware time, got {moment}")
                args[i] = moment.timestamp()
        for i in durations:
            args[i] = args[i].total_seconds()
        for i in jsons:
            args[i] = json.dumps(args[i])
        return args

    return bind


def _getter(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """The values of ``names`` as a tuple, taken in C (itemgetter of one name gives the
    value itself, of none is not allowed)."""
    if len(names) > 1:
        return operator.itemgetter(*names)
    if names:
        [name] = names
        return lambda params: (params[name],)
    return lambda params: ()


def _slots(names: tuple[str, ...], kind: frozenset[str]) -> tuple[int, ...]:
    return tuple(i for i, name in enumerate(names) if name in kind)


# One event's host and id; CLAIM_EVENTS runs it for each event of the batch (one writer at a time,
# so the order does not matter here), binding each event's values in CLAIM_COLUMNS order.
CLAIM_EVENT = numbered("""INSERT INTO event (id, kind, host, check_name, at, received_at)
    VALUES (:id, :kind, :host, :check, :at, :now) ON CONFLICT (host, id) DO NOTHING""", "?")
CLAIM_COLUMNS = ("id", "kind", "host", "check", "at", "now")
if CLAIM_EVENT.names != CLAIM_COLUMNS:
    raise ImportError(f"CLAIM_EVENT binds {CLAIM_EVENT.names}, not {CLAIM_COLUMNS}")
# A host is silent when its last heartbeat is older than its allowed silence.
# A stop the agent announced keeps it from being silent until the stop grows too long.
SILENT = """(h.last_heartbeat IS NOT NULL
    AND :now - h.last_heartbeat > max(:min_silence, :missed * h.interval_seconds)
    AND (h.stopped_at IS NULL OR :now - h.stopped_at > :stop_limit))"""
INCIDENT = """SELECT i.*, (SELECT json_group_array(a.key) FROM attached a
        WHERE a.incident_id = i.id) AS attached_keys FROM incident i"""
# The response target of the incident's priority, from the targets the rules bind.
TARGET = "json_extract(:targets, '$.' || priority)"
# The share of it at which the incident's next level is reached (NULL past the last).
NEXT_SHARE = "json_extract(:shares, '$.' || priority || '[' || (escalation_level + 1) || ']')"
# The share at which the level its clock restarted from was reached (a window held it).
CLOCK_SHARE = "coalesce(json_extract(:shares, '$.' || priority || '[' || clock_level || ']'), 0)"
# When its levels are counted from: the opening (its due time less the target), or
# where a window's end restarted its clock.
CLOCK_BASE = f"coalesce(clock_from - {CLOCK_SHARE} * {TARGET}, due_at - {TARGET})"
# A window running at :now over the incident ``i``'s host, or its check.
IN_MAINTENANCE = """SELECT 1 FROM maintenance m WHERE m.host = i.host
    AND m.check_name IN ('', i.check_name) AND m.until > :now"""
# One host's row (as HOSTS).
HOST_ROW = f"""SELECT h.host, h.last_heartbeat, h.interval_seconds, h.stopped_at,
            (h.down_since IS NOT NULL OR {SILENT}) AS down,
            (SELECT count(*) FROM incident i WHERE i.host = h.host AND i.status <> 'resolved')
                AS open_incidents
        FROM host h"""

OWN: dict[str, str | None] = {
    S.CLAIM_EVENTS: None,                  # the store runs CLAIM_EVENT for each event
    S.COUNT_FIX_RUN: """INSERT INTO fix_run (host, check_name, fix, runs, worked, last_at)
        VALUES (:host, :check, :fix, 1, :worked, :now) ON CONFLICT (host, check_name, fix)
        DO UPDATE SET runs = runs + 1, worked = worked + excluded.worked,
            last_at = excluded.last_at""",
    S.COUNT_HEALED: """INSERT INTO healed (host, check_name, fix, count, last_at)
        VALUES (:host, :check, :fix, 1, :now) ON CONFLICT (host, check_name, fix)
        DO UPDATE SET count = count + 1, last_at = excluded.last_at""",
    # A heartbeat the agent made after it announced a stop ends the stop (both times of
    # the agent's clock).
    S.HEARTBEAT: """UPDATE host SET last_heartbeat = :now, interval_seconds = :interval,
        down_since = NULL, stopped_at = CASE WHEN stop_made_at >= :at THEN stopped_at END,
        stop_made_at = CASE WHEN stop_made_at >= :at THEN stop_made_at END
        WHERE host = :host""",
    S.LOCK_KEY: None,                      # BEGIN IMMEDIATE holds the one write lock
    S.REOPEN: """UPDATE incident SET status = 'open', priority = :priority, due_at = :due_at,
            acknowledged_at = NULL, acknowledged_by = NULL, resolved_at = NULL,
            resolved_by = NULL, reopened = reopened + 1, escalation_level = 0,
            notified_at = :now, reopened_at = :now, own_priority = :priority,
            title = :title, titles = :titles, flapping = 0, flap_at = NULL,
            flap_held = NULL, announced = 0, clock_from = NULL, clock_level = 0
        WHERE id = (SELECT max(id) FROM incident WHERE key = :key)
          AND status = 'resolved' AND resolved_at > :since RETURNING id""",
    # One open incident per key: the partial unique index is the upsert's target. The
    # title changes with the check's own priority, and is the new one's at the
    # incident's priority (which SET_PRIORITY moves on with it).
    S.UPSERT: """INSERT INTO incident (key, host, check_name, priority, own_priority, status,
            title, titles, summary, opened_at, due_at, last_seen_at, count, notified_at)
        VALUES (:key, :host, :check, :priority, :priority, 'open', :title, :titles,
                :summary, :now, :due_at, :now, 1, :now)
        ON CONFLICT (key) WHERE status != 'resolved' DO UPDATE SET count = count + 1,
            last_seen_at = excluded.last_seen_at, summary = excluded.summary,
            title = CASE WHEN own_priority IS excluded.own_priority THEN title
                         ELSE coalesce(json_extract(excluded.titles, '$.' || priority),
                                       excluded.title) END,
            titles = CASE WHEN own_priority IS excluded.own_priority THEN titles
                          ELSE excluded.titles END,
            own_priority = excluded.own_priority
        RETURNING id, count, priority, flapping, flap_at""",
    S.OPEN_FOR_KEY: "SELECT id FROM incident WHERE key = :key AND status != 'resolved'",
    S.RESOLVE_KEY: """UPDATE incident SET status = 'resolved', resolved_at = :now,
            resolved_by = :who, flapping = 0, flap_at = NULL, flap_held = NULL
        WHERE key = :key AND status != 'resolved'
          AND NOT (flapping = 1 AND flap_at > :quiet_since) RETURNING id""",
    S.CHILD_RECOVERED: """UPDATE attached SET priority = NULL
        WHERE key = :key AND priority IS NOT NULL AND incident_id IN (
            SELECT id FROM incident WHERE status != 'resolved')
        RETURNING incident_id AS id""",
    S.INCIDENT_STATE: """SELECT i.priority, i.due_at,
            coalesce(i.reopened_at, i.opened_at) AS answer_from, i.flapping, i.flap_at,
            min(i.own_priority, coalesce((SELECT min(a.priority) FROM attached a
                                          WHERE a.incident_id = i.id), i.own_priority))
                AS wanted
        FROM incident i WHERE i.id = :id""",
    # The title moves with the priority, when the check's title names it.
    S.SET_PRIORITY: """UPDATE incident SET priority = :priority, due_at = :due_at,
            title = coalesce(json_extract(titles, '$.' || :priority), title),
            notified_at = CASE WHEN :raised THEN :now ELSE notified_at END
        WHERE id = :id""",
    S.FLAP_MARK: """UPDATE incident SET flapping = 1, flap_at = :now, flap_held = NULL
        WHERE id = :id""",
    S.FLAP_HOLD: """UPDATE incident SET flap_at = :now, flap_held = :held
        WHERE key = :key AND status != 'resolved' AND flapping = 1 RETURNING id""",
    S.FLAP_END: """UPDATE incident SET flapping = 0, flap_at = NULL, flap_held = NULL
        WHERE id = :id""",
    S.SETTLE_FLAPS: """SELECT id, flap_held FROM incident
        WHERE flapping = 1 AND flap_at <= :quiet_since AND flap_held IS NOT NULL
          AND status != 'resolved' ORDER BY id""",
    # A period keeps the most urgent priority it had and the earliest due time.
    S.PERIOD_PRIORITY: """UPDATE open_period SET priority = min(priority, :priority),
            due_at = min(due_at, :due_at)
        WHERE incident_id = :id AND resolved_at IS NULL""",
    # stopped_at: when the store heard of the latest stop the agent made (an older stop
    # delivered late changes nothing).
    S.STOPPED: """UPDATE host
        SET stopped_at = CASE WHEN stop_made_at >= :at THEN stopped_at ELSE :now END,
            stop_made_at = max(:at, coalesce(stop_made_at, :at))
        WHERE host = :host""",
    # The same window told again (an agent that starts says its windows) keeps its set_at.
    S.SET_MAINTENANCE: """INSERT INTO maintenance (host, check_name, source, until, owner,
            reason, set_at) VALUES (:host, :check, :source, :until, :owner, :reason, :now)
        ON CONFLICT (host, check_name, source) DO UPDATE SET until = excluded.until,
            owner = excluded.owner, reason = excluded.reason,
            set_at = CASE WHEN until = excluded.until AND owner = excluded.owner
                          AND reason = excluded.reason THEN set_at
                          ELSE excluded.set_at END""",
    # A source's window, or (no source: a person ending it) every source's.
    S.END_MAINTENANCE: """DELETE FROM maintenance WHERE host = :host AND check_name = :check
        AND (:source IS NULL OR source = :source) RETURNING host, check_name, until""",
    # A window the agent says has expired: not one set again since with a later end.
    S.EXPIRE_MAINTENANCE: """DELETE FROM maintenance WHERE host = :host AND check_name = :check
        AND source = :source AND until <= :until RETURNING host, check_name, until""",
    S.CLAIM_EXPIRED: """DELETE FROM maintenance WHERE until <= :now
        RETURNING host, check_name, until""",
    # What a window that ended at :until held (opened before its end, and in no other
    # window now): its escalation clock restarts from there, at its current level.
    S.WINDOW_ENDED: f"""UPDATE incident AS i SET clock_from = :until,
            clock_level = escalation_level, notified_at = :until
        WHERE i.host = :host AND (:check = '' OR i.check_name = :check)
          AND i.status != 'resolved' AND coalesce(i.reopened_at, i.opened_at) < :until
          AND NOT EXISTS ({IN_MAINTENANCE})
        RETURNING id, status, announced""",
    S.ADD_ENTRY: """INSERT INTO timeline (incident_id, at, kind, who, text, event_id, steps)
        VALUES (:id, :at, :kind, :who, :text, :event_id, :steps)""",
    S.CLAIM_SILENT: f"""UPDATE host AS h SET down_since = :now
        WHERE h.down_since IS NULL AND {SILENT}
        RETURNING host, last_heartbeat, interval_seconds, stopped_at""",
    S.LOCK_INCIDENT: "SELECT status, key FROM incident WHERE id = :id",
    # A second acknowledgement keeps the first one's time and name (the SLA counts the
    # first).
    S.ACKNOWLEDGE: """UPDATE incident SET status = 'acknowledged',
            acknowledged_at = coalesce(acknowledged_at, :now),
            acknowledged_by = coalesce(acknowledged_by, :who)
        WHERE id = :id AND status != 'resolved' RETURNING id""",
    S.RESOLVE: """UPDATE incident SET status = 'resolved', resolved_at = :now,
            resolved_by = :who, flapping = 0, flap_at = NULL, flap_held = NULL
        WHERE id = :id AND status != 'resolved' RETURNING id""",
    # Notices: made beside the change they tell of, at the incident's current level;
    # none for what is in maintenance, but the end of what people were told of.
    S.ADD_NOTICE: f"""INSERT INTO notice (incident_id, kind, level, created_at, next_at)
        SELECT i.id, :kind, i.escalation_level, :now, :now FROM incident i
        WHERE i.id = :id AND (NOT EXISTS ({IN_MAINTENANCE})
              OR (i.announced = 1 AND :kind IN ('acknowledged', 'resolved')))
        RETURNING {NOTICE_COLUMNS}""",
    S.ANNOUNCED: "UPDATE incident SET announced = 1 WHERE id = :id AND announced = 0",
    # In maintenance, the clock waits: no level is reached, no reminder made.
    S.ESCALATE: f"""UPDATE incident AS i SET escalation_level = escalation_level + 1,
            notified_at = :now
        WHERE status = 'open'
          AND :now >= {CLOCK_BASE} + {NEXT_SHARE} * {TARGET}
          AND NOT EXISTS ({IN_MAINTENANCE})
        RETURNING id""",
    S.RENOTIFY: f"""UPDATE incident AS i SET notified_at = :now
        WHERE status = 'open' AND priority = :priority
          AND coalesce(notified_at, opened_at) <= :now - :every
          AND NOT EXISTS (SELECT 1 FROM notice n WHERE n.incident_id = i.id
                          AND n.kind = 'renotify' AND n.finished_at IS NULL)
          AND NOT EXISTS ({IN_MAINTENANCE})
        RETURNING id""",
    # Due, not leased to anyone, and not behind an older notice of its incident that is on
    # its first round (people hear of an incident's changes in the order they happened;
    # one that waits for a retry holds back nothing).
    S.CLAIM_NOTICES: f"""UPDATE notice SET claimed_until = :until, attempts = attempts + 1
        WHERE id IN (SELECT n.id FROM notice n
            WHERE n.finished_at IS NULL AND n.next_at <= :now
              AND (n.claimed_until IS NULL OR n.claimed_until <= :now)
              AND NOT EXISTS (SELECT 1 FROM notice o WHERE o.incident_id = n.incident_id
                              AND o.finished_at IS NULL AND o.id < n.id
                              AND (o.attempts = 0 OR o.claimed_until > :now))
            ORDER BY n.id LIMIT :limit)
        RETURNING {NOTICE_COLUMNS}""",
    S.FINISH_NOTICE: """UPDATE notice SET done = :done, claimed_until = NULL,
            last_error = :error, next_at = coalesce(:retry_at, next_at),
            finished_at = CASE WHEN :retry_at IS NULL THEN :now END
        WHERE id = :id AND attempts = :attempts AND finished_at IS NULL
        RETURNING incident_id""",
    # json_each keeps the statement fixed whatever the number of values filtered on.
    S.INCIDENTS: f"""{INCIDENT}
        WHERE (json_array_length(:statuses) = 0
               OR i.status IN (SELECT value FROM json_each(:statuses)))
          AND (json_array_length(:priorities) = 0
               OR i.priority IN (SELECT value FROM json_each(:priorities)))
          AND (:host IS NULL OR i.host = :host)
        ORDER BY i.due_at, i.priority, i.id LIMIT :limit""",
    S.ONE_INCIDENT: f"{INCIDENT} WHERE i.id = :id",
    S.OPENED_BETWEEN: f"""{INCIDENT} WHERE {OPENED} >= :since AND {OPENED} < :until
        ORDER BY {OPENED}, i.id""",
    S.HOSTS: f"""SELECT h.host, h.last_heartbeat, h.interval_seconds, h.stopped_at,
            (h.down_since IS NOT NULL OR {SILENT}) AS down,
            (SELECT count(*) FROM incident i WHERE i.host = h.host AND i.status != 'resolved')
                AS open_incidents
        FROM host h ORDER BY h.host""",
    # Bounded reads: one host, a page of hosts, one host's windows, fix statistics
    # filtered by host (the fix_step_by_host index) or check, the busiest :limit of them.
    S.ONE_HOST: f"{HOST_ROW} WHERE h.host = :host",
    S.HOSTS_PAGE: f"{HOST_ROW} ORDER BY h.host LIMIT :limit OFFSET :offset",
    S.HOST_MAINTENANCE: """SELECT host, check_name, until, owner, reason, set_at, source
        FROM maintenance WHERE host = :host AND until > :now
        ORDER BY check_name, source""",
    S.HOST_FIX_STATS: f"""{FIX_STEPS} WHERE host = :host AND at >= :since
            AND (:check IS NULL OR check_name = :check)
        {BUSIEST_FIRST}""",
    S.FIX_STATS_CAPPED: f"""{FIX_STEPS} WHERE at >= :since
            AND (:check IS NULL OR check_name = :check)
        {BUSIEST_FIRST}""",
}
SQL: Mapping[str, Bound | None] = dialect("SQLite", {
    name: None if text is None else Bound(text)
    for name, text in {**COMMON, **OWN, **people_sql.SQLITE}.items()})
