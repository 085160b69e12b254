"""What the rules and the backends say to each other: named statements, rows, two drivers.

A rule (``rules``, ``queries``) is a generator, a "script": it yields an ``Op``, a
statement's name and its parameters (``rows = yield S.OPEN_FOR_KEY, {"key": key}``), is
sent back the statement's rows, and returns its result. A backend answers each name with
its own dialect's SQL (``dialect`` checks it answers all of them) and runs a script with
``drive`` (SQLite: on its one thread, inside its transaction) or ``drive_async``
(PostgreSQL: on one connection, inside its transaction). An error the backend raises for
a statement is thrown into the script at the ``yield`` that asked for it, so a rule can
handle it where it made the request (``Taken``); any other error ends the script, and the
backend rolls the transaction back.

Values cross in neutral types both ways: times are timezone-aware datetimes, durations
timedeltas, lists and dicts stay lists and dicts (a backend keeps them as JSON or as
arrays), and each row is a mapping from column name to such a value.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

from monitord.store.people_sql import PEOPLE_STATEMENTS

R = TypeVar("R")
Row = Mapping[str, Any]
Rows = Sequence[Row]


class Statement:
    """Every statement a rule may ask for; each backend has SQL (or nothing) for each.

    Names as plain strings, not an Enum: a batch asks for thousands of statements, and in
    Python 3.11 reading an Enum member costs five times a class attribute, and hashing
    it a Python call. mypy still checks each name a rule uses; ``dialect`` checks that a
    backend answers every one.
    """

    # events
    CLAIM_EVENTS = "claim_events"   # record a batch's ids; rows: the ids not seen before
    NOTE_HOST = "note_host"
    COUNT_FIX_RUN = "count_fix_run"
    LOG_FIX_RUN = "log_fix_run"     # one row per run, with its time (the windowed stats)
    COUNT_HEALED = "count_healed"
    HEARTBEAT = "heartbeat"
    # one key's incident
    LOCK_KEY = "lock_key"           # held to the end of the transaction (nothing if the
                                    # backend's transactions already run one at a time)
    REOPEN = "reopen"
    CLEAR_ATTACHED = "clear_attached"   # a reopened incident's children are history
    UPSERT = "upsert"
    OPEN_FOR_KEY = "open_for_key"
    RESOLVE_KEY = "resolve_key"      # unless it flaps and changed within the quiet time
    ATTACH = "attach"
    CHILD_RECOVERED = "child_recovered"   # rows: the open incidents it was attached to
    ADD_ENTRY = "add_entry"
    # priority: the highest of the incident's own and its failing children's
    INCIDENT_STATE = "incident_state"     # priority, wanted, due, flapping; after a lock
    SET_PRIORITY = "set_priority"
    # flapping
    FLAP_MARK = "flap_mark"
    FLAP_HOLD = "flap_hold"          # a word held back while it flaps; rows: the incident
    FLAP_END = "flap_end"
    SETTLE_FLAPS = "settle_flaps"    # flapping incidents steady for the quiet time
    # open periods (the SLA report's)
    START_PERIOD = "start_period"
    ACK_PERIOD = "ack_period"
    END_PERIOD = "end_period"
    PERIOD_PRIORITY = "period_priority"
    PERIODS_BETWEEN = "periods_between"
    # planned stops and maintenance
    STOPPED = "stopped"
    SET_MAINTENANCE = "set_maintenance"
    END_MAINTENANCE = "end_maintenance"
    EXPIRE_MAINTENANCE = "expire_maintenance"   # ends the window only if it ends by :until
    CLAIM_EXPIRED = "claim_expired"  # remove the windows over by :now; rows: those removed
    WINDOW_ENDED = "window_ended"    # restart the clocks of what a window held; rows: them
    MAINTENANCE = "maintenance"
    SILENCED_BY = "silenced_by"      # the window that kept a notice from being made
    # the sweep
    FORGET_HEARTBEATS = "forget_heartbeats"
    FORGET_FIX_RUNS = "forget_fix_runs"
    CLAIM_SILENT = "claim_silent"   # mark silent hosts down; rows: the hosts it marked
    # people's actions
    LOCK_INCIDENT = "lock_incident"  # the incident's status and key, held for the change
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"
    # notices
    ADD_NOTICE = "add_notice"
    ANNOUNCED = "announced"          # people were told of the incident
    ESCALATE = "escalate"
    RENOTIFY = "renotify"
    CLAIM_NOTICES = "claim_notices"
    FINISH_NOTICE = "finish_notice"
    # reads
    INCIDENTS = "incidents"
    ONE_INCIDENT = "one_incident"
    TIMELINE = "timeline"
    OPENED_BETWEEN = "opened_between"
    HOSTS = "hosts"
    HEALED_COUNTS = "healed_counts"
    FIX_RUNS = "fix_runs"
    FIX_STATS = "fix_stats"         # runs per host, check and fix since a time
    OPEN_COUNTS = "open_counts"     # unresolved incidents per priority and status
    # people, agents, secrets
    SET_PASSWORD = "set_password"
    PASSWORD_HASH = "password_hash"
    SESSION_GENERATION = "session_generation"
    END_SESSIONS = "end_sessions"
    SET_PERSON_TOKEN = "set_person_token"
    PERSON_FOR = "person_for"
    ADD_AGENT = "add_agent"
    AGENT_FOR = "agent_for"
    OFFER_SECRET = "offer_secret"
    SECRET = "secret"
    # bounded reads: one host, a page of hosts, filtered and capped fix statistics
    ONE_HOST = "one_host"
    HOSTS_PAGE = "hosts_page"       # by name, :limit from :offset
    HOST_COUNT = "host_count"
    HOST_MAINTENANCE = "host_maintenance"   # the windows of one host running at :now
    HOST_FIX_STATS = "host_fix_stats"       # one host's runs (an index on host, at)
    FIX_STATS_CAPPED = "fix_stats_capped"   # every host's, the busiest :limit
    # scrapers: read-only tokens for /metrics
    ADD_SCRAPER = "add_scraper"
    SCRAPER_FOR = "scraper_for"


Params = Mapping[str, object]
# One statement a rule asks for, with its named parameters: ``yield S.NOTE_HOST, {...}``.
# (A plain tuple: a batch makes thousands, and any class costs a call to make each one.)
Op = tuple[str, Params]
STATEMENTS = frozenset(value for name, value in vars(Statement).items() if name.isupper())
STATEMENTS |= PEOPLE_STATEMENTS     # on call: people, schedules, policies (people_sql)
Script = Generator[Op, Rows, R]


class Query(NamedTuple):
    """A dialect's statement, its ``:name`` parameters numbered (``$1``, ``?1``) once, when
    its module loads: binding by position is what the drivers do fastest."""

    sql: str
    names: tuple[str, ...]     # the parameter each number stands for, in number order


_PARAMETER = re.compile(r"(?<![:\w]):([a-z_]+)\b")    # not a PostgreSQL cast's "::type"


def numbered(text: str, mark: str) -> Query:
    """``text`` with each ``:name`` replaced by ``mark`` and the name's number."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"{mark}{names.index(match[1]) + 1}"

    return Query(_PARAMETER.sub(number, text), tuple(names))


def dialect(name: str, table: Mapping[str, R]) -> Mapping[str, R]:
    """``table`` after checking that it answers every statement, and only those (when its
    module loads, not in the middle of a batch)."""
    if table.keys() != STATEMENTS:
        wrong = sorted(STATEMENTS.symmetric_difference(table))
        raise ImportError(f"the {name} store's SQL does not match the statements: {wrong}")
    return table


def drive(script: Script[R], execute: Callable[[Op], Rows]) -> R:
    """Run ``script`` to its end, ``execute`` answering each of its statements."""
    try:
        op = next(script)
        while True:
            try:
                rows = execute(op)
            except Exception as e:       # the rule decides; unhandled, it ends the script
                op = script.throw(e)
            else:
                op = script.send(rows)
    except StopIteration as end:
        result: R = end.value
        return result


async def drive_async(script: Script[R], execute: Callable[[Op], Awaitable[Rows]]) -> R:
    """``drive`` for a backend whose statements are awaited."""
    try:
        op = next(script)
        while True:
            try:
                rows = await execute(op)
            except Exception as e:       # the rule decides; unhandled, it ends the script
                op = script.throw(e)
            else:
                op = script.send(rows)
    except StopIteration as end:
        result: R = end.value
        return result


def aware(moment: dt.datetime) -> dt.datetime:
    """``moment``, refused when it has no timezone (the store would misread it)."""
    if moment.tzinfo is None:
        raise ValueError(f"expected a timezone-aware time, got {moment.isoformat()}")
    return moment
