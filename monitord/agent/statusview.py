"""``monitord status``: the running daemon's checks as a table, failing ones first."""

from __future__ import annotations

import datetime as dt
from typing import Any

from monitord.config import Config
from monitord.durations import format_duration
from monitord.errors import MonitordError, NotRunning
from monitord.texts import one_line, printable

ORDER = {"hard": 0, "recovering": 1, "soft": 2, "pending": 3, "ok": 4}


async def show_status(config: Config) -> tuple[str, bool]:
    """The table, and whether any check is failing hard."""
    document = await _fetch(config.status.listen)
    checks = sorted(document["checks"],
                    key=lambda c: (ORDER.get(c["phase"], 5), c["priority"], c["name"]))
    now = dt.datetime.now(dt.UTC)
    rows = [("CHECK", "STATUS", "STATE", "SINCE", "FIXES LEFT", "SUMMARY")]
    for c in checks:
        state = c["phase"] + (", fixing" if c["fixing"] else "") + (
            ", flapping" if c["flapping"] else "") + (
            f", under {c['suppressed_by']}" if c["suppressed_by"] else "")
        rows.append((c["name"], c["status"], state, _age(c["since"], now),
                     str(c["heal_budget_left"]), one_line(c["summary"], 60)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = [f"{document['host']}: {document['summary']}"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True))
              + "  " + r[-1] for r in rows]
    return printable("\n".join(lines)), any(c["hard_failing"] for c in checks)


async def _fetch(listen: str) -> dict[str, Any]:
    import aiohttp

    if not listen:
        raise MonitordError("[status] listen is empty: the daemon serves no status")
    if listen.startswith("unix:"):
        connector: aiohttp.BaseConnector = aiohttp.UnixConnector(path=listen[5:])
        url = "http://localhost/status"
    else:
        connector, url = aiohttp.TCPConnector(), f"http://{listen}/status"
    try:
        async with aiohttp.ClientSession(connector=connector,
                                         timeout=aiohttp.ClientTimeout(total=10)) as session:
            async with session.get(url) as resp:
                data: dict[str, Any] = await resp.json()
                return data
    except aiohttp.ClientConnectorError:
        raise NotRunning(f"no monitord answering on {listen}: is it running?") from None
    except (aiohttp.ClientError, TimeoutError) as e:
        raise MonitordError(f"no daemon answers on {listen} ({e or type(e).__name__}); is "
                            "monitord running?") from None


def _age(since: str | None, now: dt.datetime) -> str:
    if not since:
        return "-"
    at = dt.datetime.fromisoformat(since.replace("Z", "+00:00"))
    return format_duration(max((now - at).total_seconds(), 0))
