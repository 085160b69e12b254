"""What the store answers and keeps beside the incident rules: reads of incidents, hosts
and fix statistics, people's passwords and tokens, agents, and shared secrets. Scripts
like the rules' (see ``ops``), so every backend runs them the same way."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from monitord.errors import Conflict, NotFound, Taken
from monitord.model import Priority
from monitord.store import records
from monitord.store.model import FixRuns, HostInfo, Incident, IncidentStatus, Maintenance, Period
from monitord.store.ops import Op, Rows, Script, aware
from monitord.store.ops import Statement as S

MAX_ROWS = 2**62       # "no limit", as a number every backend's LIMIT takes

# --- incidents and hosts ---------------------------------------------------------------


def incidents(status: Sequence[IncidentStatus], priority: Sequence[Priority],
              host: str | None, limit: int) -> Script[list[Incident]]:
    """Ordered by due time, then priority, then id; an empty filter means "any"."""
    rows = yield S.INCIDENTS, {
        "statuses": list(status), "priorities": [str(p) for p in priority], "host": host,
        "limit": limit}
    return [records.incident(row) for row in rows]


def read_incident(incident_id: int, with_timeline: bool = True) -> Script[Incident]:
    """The incident (with its timeline, unless told not to); raises NotFound."""
    rows = yield S.ONE_INCIDENT, {"id": incident_id}
    if not rows:
        raise NotFound(f"no incident {incident_id}")
    if not with_timeline:
        return records.incident(rows[0])
    timeline = yield S.TIMELINE, {"id": incident_id}
    return records.incident(rows[0], tuple(records.timeline_entry(row) for row in timeline))


def opened_between(since: dt.datetime, until: dt.datetime) -> Script[list[Incident]]:
    """Every incident opened (or last reopened) in [since, until), oldest first."""
    rows = yield S.OPENED_BETWEEN, {"since": aware(since), "until": aware(until)}
    return [records.incident(row) for row in rows]


def periods_between(since: dt.datetime, until: dt.datetime) -> Script[list[Period]]:
    """Every open period that started in [since, until), oldest first."""
    rows = yield S.PERIODS_BETWEEN, {"since": aware(since), "until": aware(until)}
    return [records.period(row) for row in rows]


def hosts(now: dt.datetime, silence: dict[str, object]) -> Script[list[HostInfo]]:
    """Every host heard of; down if marked so by a sweep or silent for too long."""
    rows = yield S.HOSTS, {"now": aware(now), **silence}
    return [records.host(row) for row in rows]


def host(name: str, now: dt.datetime, silence: dict[str, object]) -> Script[HostInfo | None]:
    """The host ``name`` as ``hosts`` shows it; None if it never reported."""
    rows = yield S.ONE_HOST, {"host": name, "now": aware(now), **silence}
    return records.host(rows[0]) if rows else None


def hosts_page(now: dt.datetime, silence: dict[str, object], limit: int,
               offset: int) -> Script[tuple[list[HostInfo], int]]:
    """``limit`` hosts by name from the ``offset``-th, and how many hosts there are."""
    rows = yield S.HOSTS_PAGE, {"now": aware(now), **silence, "limit": limit,
                                "offset": offset}
    counted = yield S.HOST_COUNT, {}
    return [records.host(row) for row in rows], int(counted[0]["count"])


def healed_counts() -> Script[list[tuple[str, str, str, int]]]:
    rows = yield S.HEALED_COUNTS, {}
    return [(r["host"], r["check_name"], r["fix"], r["count"]) for r in rows]


def fix_runs() -> Script[list[tuple[str, str, str, int, int]]]:
    rows = yield S.FIX_RUNS, {}
    return [(r["host"], r["check_name"], r["fix"], r["runs"], r["worked"]) for r in rows]

def fix_stats(since: dt.datetime, host: str | None = None, check: str | None = None,
              limit: int | None = None) -> Script[list[FixRuns]]:
    """Every host's runs by host, check and fix; filtered or capped, the busiest first."""
    if host is None and check is None and limit is None:
        rows = yield S.FIX_STATS, {"since": aware(since)}
    else:
        params = {"since": aware(since), "host": host, "check": check,
                  "limit": MAX_ROWS if limit is None else limit}
        rows = yield (S.FIX_STATS_CAPPED if host is None else S.HOST_FIX_STATS), params
    return [FixRuns(r["host"], r["check_name"], r["fix"], int(r["runs"]), int(r["worked"]),
                    r["last_at"]) for r in rows]


def open_counts() -> Script[dict[tuple[str, str], int]]:
    rows = yield S.OPEN_COUNTS, {}
    return {(str(r["priority"]), str(r["status"])): int(r["count"]) for r in rows}
# --- maintenance -----------------------------------------------------------------------


def maintenance(now: dt.datetime, host: str | None = None) -> Script[list[Maintenance]]:
    if host is None:
        rows = yield S.MAINTENANCE, {"now": aware(now)}
    else:
        rows = yield S.HOST_MAINTENANCE, {"now": aware(now), "host": host}
    return [records.maintenance(row) for row in rows]


def set_maintenance(window: Maintenance) -> Script[None]:
    yield S.SET_MAINTENANCE, {
        "host": window.host, "check": window.check, "until": aware(window.until),
        "owner": window.owner, "reason": window.reason, "now": aware(window.set_at),
        "source": window.source}

# --- people, agents, secrets -----------------------------------------------------------


def set_password(name: str, password_hash: str, now: dt.datetime) -> Script[None]:
    yield S.SET_PASSWORD, {"name": name, "hash": password_hash, "now": aware(now)}


def password_hash(name: str) -> Script[str | None]:
    rows = yield S.PASSWORD_HASH, {"name": name}
    return rows[0]["password_hash"] if rows else None


def session_generation(name: str) -> Script[int]:
    rows = yield S.SESSION_GENERATION, {"name": name}
    return int(rows[0]["session_generation"]) if rows else 0


def end_sessions(name: str) -> Script[None]:
    yield S.END_SESSIONS, {"name": name}


def set_person_token(name: str, token_hash: str, now: dt.datetime) -> Script[None]:
    params = {"name": name, "hash": token_hash, "now": aware(now)}
    yield from _register_token((S.SET_PERSON_TOKEN, params))


def person_for(token_hash: str) -> Script[str | None]:
    rows = yield S.PERSON_FOR, {"hash": token_hash}
    return _first(rows, "name")


def add_agent(host: str, token_hash: str, now: dt.datetime) -> Script[None]:
    params = {"host": host, "token_hash": token_hash, "now": aware(now)}
    yield from _register_token((S.ADD_AGENT, params))


def agent_for(token_hash: str) -> Script[str | None]:
    rows = yield S.AGENT_FOR, {"token_hash": token_hash}
    return _first(rows, "host")


def add_scraper(name: str, token_hash: str, now: dt.datetime) -> Script[None]:
    params = {"name": name, "token_hash": token_hash, "now": aware(now)}
    yield from _register_token((S.ADD_SCRAPER, params))


def scraper_for(token_hash: str) -> Script[str | None]:
    rows = yield S.SCRAPER_FOR, {"token_hash": token_hash}
    return _first(rows, "name")


def secret(name: str, candidate: str) -> Script[str]:
    """The secret ``name``: the first candidate ever offered for it."""
    yield S.OFFER_SECRET, {"name": name, "value": candidate}
    rows = yield S.SECRET, {"name": name}
    return str(rows[0]["value"])


def _register_token(op: Op) -> Script[None]:
    """A token hash belongs to one person or agent; another's is a Conflict."""
    try:
        yield op
    except Taken:
        raise Conflict("that token is already registered to someone else; "
                       "make a new token") from None


def _first(rows: Rows, column: str) -> str | None:
    return str(rows[0][column]) if rows else None
