"""Data out of the central service: ``/metrics`` (Prometheus) and the fix statistics API
(``GET /api/v1/fix-stats?since=7d&host=web1``), beside the console's fix statistics page.
``/metrics`` takes a scraper's read-only token (``monitord central add-scraper NAME``;
Prometheus: ``authorization`` with a ``credentials_file``) or an operator's; the fix
statistics take an operator token like the rest of the API.

The fix statistics hold at most ``limit`` (default 500, at most 5000) host, check and fix
rows, the busiest (most runs, then the latest); ``truncated`` says that there were more,
and then the totals and groups add up only the rows shown: narrow the answer with
``host`` or ``check`` (or a shorter ``since``) to see all of it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import MultiMapping
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from monitord.central.auth import require_operator, require_reader
from monitord.central.keys import CLOCK, STORE
from monitord.central.metrics import METRICS
from monitord.central.payloads import Json, invalid, timestamp
from monitord.durations import format_duration, parse_duration
from monitord.events import is_name
from monitord.schema import suggest
from monitord.store.protocol import FixRuns

DEFAULT_SINCE = "7d"
MIN_WINDOW_SECONDS = 60.0
MAX_WINDOW_SECONDS = 90 * 86400.0      # the store keeps fix runs this long
DEFAULT_LIMIT = 500                    # (host, check, fix) rows an answer holds at most
MAX_LIMIT = 5000
FIX_STATS_QUERY = ("since", "host", "check", "limit")


@dataclass(frozen=True)
class FixStatsQuery:
    seconds: float
    host: str | None
    check: str | None
    limit: int


async def metrics(request: web.Request) -> web.Response:
    await require_reader(request)
    body = await request.app[METRICS].exposition(request.app[STORE])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})


async def fix_stats(request: web.Request) -> web.Response:
    await require_operator(request)
    wanted = _query(request)
    until = request.app[CLOCK]()
    since = until - dt.timedelta(seconds=wanted.seconds)
    # One more than the limit: whether there was more to say.
    runs = await request.app[STORE].fix_stats(since, host=wanted.host, check=wanted.check,
                                              limit=wanted.limit + 1)
    shown = runs[:wanted.limit]
    return web.json_response({**fix_stats_json(shown, since, until),
                              "limit": wanted.limit, "truncated": len(runs) > len(shown)})


def _query(request: web.Request) -> FixStatsQuery:
    """What the query asks for; a 400 naming every problem of it."""
    query = request.query
    problems = [f"{name}: unknown query parameter{suggest(name, list(FIX_STATS_QUERY))}"
                for name in query if name not in FIX_STATS_QUERY]
    seconds = _window(query, problems)
    host = _name(query, "host", problems)
    check = _name(query, "check", problems)
    limit = _limit(query, problems)
    if problems:
        raise invalid(problems)
    return FixStatsQuery(seconds, host, check, limit)


def _window(query: MultiMapping[str], problems: list[str]) -> float:
    """The ``since`` window in seconds."""
    given = query.getall("since", [DEFAULT_SINCE])
    try:
        seconds = parse_duration(given[0])
    except ValueError:
        seconds = -1.0
    got = f"got {json.dumps(given[0])}"
    if len(given) > 1:
        problems.append("since: give it at most once")
    elif seconds < 0:
        problems.append(f'since: expected a duration like "7d", "24h" or "30m", {got}')
    elif not MIN_WINDOW_SECONDS <= seconds <= MAX_WINDOW_SECONDS:
        problems.append(f"since: expected from {format_duration(MIN_WINDOW_SECONDS)} to "
                        f"{format_duration(MAX_WINDOW_SECONDS)}, {got}")
    return seconds


def _name(query: MultiMapping[str], field: str, problems: list[str]) -> str | None:
    """Only this host's or check's runs; None for all of them."""
    given = query.getall(field, [])
    if len(given) > 1:
        problems.append(f"{field}: give it at most once")
    elif given and not is_name(given[0]):
        problems.append(f'{field}: expected a {field} name (letters, digits, ".", "_", ":" '
                        f'or "-", starting with a letter or digit), got {_shown(given[0])}')
    else:
        return given[0] if given else None
    return None


def _limit(query: MultiMapping[str], problems: list[str]) -> int:
    given = query.getall("limit", [])
    text = given[0] if given else str(DEFAULT_LIMIT)
    if len(given) > 1:
        problems.append("limit: give it at most once")
    elif (not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_LIMIT))
            or not 1 <= int(text) <= MAX_LIMIT):
        problems.append(f"limit: expected a whole number from 1 to {MAX_LIMIT}, "
                        f"got {_shown(text)}")
    else:
        return int(text)
    return DEFAULT_LIMIT


def _shown(value: str) -> str:
    """A query value as a JSON string, shortened: what a problem says it got."""
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def fix_stats_json(runs: Sequence[FixRuns], since: dt.datetime, until: dt.datetime) -> Json:
    """The runs added up per fix, per check and per host, and as they are (per host,
    check and fix); the busiest first. (Cut to a limit, they add up what is shown.)"""
    return {
        "since": timestamp(since), "until": timestamp(until),
        "totals": _stats({}, runs),
        "by_fix": _group(runs, lambda r: (("fix", r.fix),)),
        "by_check": _group(runs, lambda r: (("check", r.check),)),
        "by_host": _group(runs, lambda r: (("host", r.host),)),
        "runs": _group(runs, lambda r: (("host", r.host), ("check", r.check),
                                        ("fix", r.fix))),
    }


Key = tuple[tuple[str, str], ...]


def _group(runs: Sequence[FixRuns], key: Callable[[FixRuns], Key]) -> list[Json]:
    groups: dict[Key, list[FixRuns]] = {}
    for run in runs:
        groups.setdefault(key(run), []).append(run)
    rows = [_stats(dict(k), group) for k, group in groups.items()]
    return sorted(rows, key=lambda row: (-row["runs"], [str(v) for v in row.values()]))


def _stats(names: dict[str, Any], runs: Sequence[FixRuns]) -> Json:
    total = sum(r.runs for r in runs)
    worked = sum(r.worked for r in runs)
    return {**names, "runs": total, "worked": worked,
            "success_ratio": round(worked / total, 4) if total else None,
            "last_at": timestamp(max(r.last_at for r in runs)) if runs else None}
