"""``monitord incidents``: the on-call view of the store, embedded file or central service.

    monitord incidents list [--all] [--priority P1] [--host web1]
    monitord incidents show ID
    monitord incidents ack ID [--note TEXT]
    monitord incidents resolve ID [--note TEXT]
    monitord incidents comment ID TEXT

Without ``--url`` it opens the embedded store the agent's config points at; with
``--url`` (or ``$MONITORD_CENTRAL_URL``) it talks to a central service with an operator
token (``--token-file``, or ``$MONITORD_TOKEN``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import getpass
import os
from collections.abc import Sequence
from typing import Any, Protocol

from monitord.errors import Conflict, MonitordError, NotFound, SecretError
from monitord.model import Priority
from monitord.schema import read_secret_file
from monitord.store.protocol import (
    Incident,
    IncidentStatus,
    Store,
    TimelineEntry,
)
from monitord.texts import age_text, due_text, one_line, printable

OPEN: tuple[IncidentStatus, ...] = ("open", "acknowledged")
EVERY: tuple[IncidentStatus, ...] = ("open", "acknowledged", "resolved")


class Desk(Protocol):
    """What the on-call commands need, from either store."""

    async def incidents(self, status: Sequence[IncidentStatus], priority: Sequence[Priority],
                        host: str | None) -> list[Incident]: ...

    async def incident(self, incident_id: int) -> Incident: ...

    async def act(self, incident_id: int, action: str, who: str, text: str) -> Incident: ...

    async def close(self) -> None: ...


def who() -> str:
    return os.environ.get("SUDO_USER") or getpass.getuser()


def table(incidents: list[Incident], now: dt.datetime) -> str:
    if not incidents:
        return "no incidents"
    rows = [("ID", "PRI", "STATUS", "HOST", "CHECK", "AGE", "DUE", "SUMMARY")]
    for i in incidents:
        status = "ack" if i.status == "acknowledged" else i.status
        due = due_text(i.due_at, now, i.status == "resolved")
        rows.append((str(i.id), i.priority, status, i.host, i.check, age_text(i.opened_at, now),
                     due.replace("overdue", "OVERDUE") if i.overdue(now) else due,
                     one_line(i.summary, 70)))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)) + "  "
             + r[-1] for r in rows]
    overdue = sum(i.overdue(now) for i in incidents)
    if overdue:
        lines.append(f"{overdue} OVERDUE: past the due time and nobody has acknowledged "
                     f"{'it' if overdue == 1 else 'them'}")
    return "\n".join(lines)


def details(incident: Incident, now: dt.datetime) -> str:
    i = incident
    due = due_text(i.due_at, now, i.status == "resolved")
    lines = [
        f"#{i.id} {i.priority} {i.status}: {i.title or i.key}",
        f"  host {i.host}, check {i.check}, opened {_when(i.opened_at)} "
        f"({age_text(i.opened_at, now)} ago), {due}, seen {i.count} "
        f"time{'s' if i.count != 1 else ''}",
    ]
    if i.acknowledged_by:
        lines.append(f"  acknowledged by {i.acknowledged_by} at {_when(i.acknowledged_at)}")
    if i.resolved_at:
        lines.append(f"  resolved by {i.resolved_by} at {_when(i.resolved_at)}")
    if i.attached:
        lines.append(f"  also affected: {', '.join(i.attached)}")
    lines.append(f"  last: {i.summary}")
    lines.append("timeline:")
    for entry in i.timeline:
        first, *rest = entry.text.strip().splitlines() or [""]
        lines.append(f"  {_when(entry.at)}  {entry.kind:<12} {entry.who}: {first}")
        lines.extend(f"      {line}" if line else "" for line in rest)
        for n, step in enumerate(entry.steps, start=1):
            argv = step.get("argv")
            shown = " ".join(str(a) for a in argv) if isinstance(argv, list) else ""
            if shown and shown in entry.text:
                continue          # the entry's text tells this fix already
            lines.append(f"      fix {n}: {shown}: {step.get('ended', '')}")
            output = str(step.get("output", "")).rstrip()
            lines.extend(f"        | {line}" for line in output.splitlines()[-10:])
    return "\n".join(lines)


async def run(desk: Desk, action: str, incident_id: int | None, text: str, show_all: bool,
              priority: Sequence[Priority], host: str | None) -> str:
    now = dt.datetime.now(dt.UTC)
    try:
        if action == "list":
            found = await desk.incidents(EVERY if show_all else OPEN, priority, host)
            return printable(table(found, now))
        if incident_id is None:
            raise MonitordError(f"{action}: give the incident's ID")
        if action == "show":
            return printable(details(await desk.incident(incident_id), now))
        done = await desk.act(incident_id, action, who(), text)
        verb = {"ack": "acknowledged", "resolve": "resolved", "comment": "commented on"}[action]
        return f"#{done.id} {verb} ({done.priority} {done.host}/{done.check}, now {done.status})"
    except NotFound:
        raise MonitordError(f"no incident #{incident_id}") from None


class StoreDesk:
    """The on-call commands against a store in this process (the embedded SQLite file)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def incidents(self, status: Sequence[IncidentStatus], priority: Sequence[Priority],
                        host: str | None) -> list[Incident]:
        return await self.store.incidents(status, priority, host)

    async def incident(self, incident_id: int) -> Incident:
        return await self.store.incident(incident_id)

    async def act(self, incident_id: int, action: str, who: str, text: str) -> Incident:
        now = dt.datetime.now(dt.UTC)
        try:
            if action == "ack":
                return await self.store.acknowledge(incident_id, who, text, now)
            if action == "resolve":
                return await self.store.resolve(incident_id, who, text, now)
            if not text.strip():
                raise MonitordError("comment: the text is empty")
            return await self.store.comment(incident_id, who, text, now)
        except Conflict as e:
            raise MonitordError(f"#{incident_id}: {e}") from None

    async def close(self) -> None:
        await self.store.close()


class HttpDesk:
    """The on-call commands against a central service, with an operator token."""

    ACTIONS = {"ack": ("acknowledge", "note"), "resolve": ("resolve", "note"),
               "comment": ("comment", "text")}

    def __init__(self, url: str, token: str) -> None:
        import aiohttp

        self.base = url.rstrip("/") + "/api/v1"
        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {token}"},
            timeout=aiohttp.ClientTimeout(total=30))

    async def incidents(self, status: Sequence[IncidentStatus], priority: Sequence[Priority],
                        host: str | None) -> list[Incident]:
        query: list[tuple[str, str]] = [("status", s) for s in status]
        query += [("priority", p) for p in priority]
        if host:
            query.append(("host", host))
        data = await self._call("GET", "/incidents", params=query)
        return [incident_from_json(i) for i in data["incidents"]]

    async def incident(self, incident_id: int) -> Incident:
        data = await self._call("GET", f"/incidents/{incident_id}")
        return incident_from_json(data["incident"])

    async def act(self, incident_id: int, action: str, who: str, text: str) -> Incident:
        path, field = self.ACTIONS[action]
        body: dict[str, str] = {field: text} if text or field == "text" else {}
        data = await self._call("POST", f"/incidents/{incident_id}/{path}", json=body)
        return incident_from_json(data["incident"])

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        import aiohttp

        url = self.base + path
        try:
            async with self._session.request(method, url, **kwargs) as resp:
                data = await resp.json(content_type=None)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            raise MonitordError(f"cannot reach {url}: {e or type(e).__name__}") from None
        if status == 404 and "/incidents/" in path:
            raise NotFound(path)
        if status >= 400:
            message = data.get("message") if isinstance(data, dict) else None
            raise MonitordError(f"{url}: {status}: {message or 'error'}")
        if not isinstance(data, dict):
            raise MonitordError(f"{url}: unexpected answer")
        return data

    async def close(self) -> None:
        await self._session.close()


def incident_from_json(data: dict[str, Any]) -> Incident:
    timeline = tuple(
        TimelineEntry(_time(e["at"]) or dt.datetime.now(dt.UTC), e["kind"], e["who"],
                      e["text"], e.get("event_id"), tuple(e.get("steps") or ()))
        for e in data.get("timeline", [])
    )
    return Incident(
        id=data["id"], key=data["key"], host=data["host"], check=data["check"],
        priority=Priority(data["priority"]), status=data["status"], title=data["title"],
        summary=data["summary"], opened_at=_required_time(data["opened_at"]),
        due_at=_required_time(data["due_at"]), last_seen_at=_required_time(data["last_seen_at"]),
        count=data["count"], acknowledged_at=_time(data.get("acknowledged_at")),
        acknowledged_by=data.get("acknowledged_by"), resolved_at=_time(data.get("resolved_at")),
        resolved_by=data.get("resolved_by"), reopened=data.get("reopened", 0),
        attached=tuple(data.get("attached", ())), timeline=timeline,
    )


def _time(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _required_time(text: str) -> dt.datetime:
    found = _time(text)
    if found is None:
        raise MonitordError("the central service sent an incident without its times")
    return found


async def open_desk(config_path: str, url: str | None, token_file: str | None,
                    state_dir: str | None = None) -> Desk:
    """The central service at ``url`` (or $MONITORD_CENTRAL_URL), else the embedded store."""
    url = url or os.environ.get("MONITORD_CENTRAL_URL")
    if url:
        return HttpDesk(url, _operator_token(token_file))
    from monitord.config import load_config
    from monitord.store.backends import sqlite_path
    from monitord.store.policy import Policy
    from monitord.store.sqlite import SQLiteStore

    config = load_config(config_path, state_dir=state_dir)
    store_url = config.store_url
    path = sqlite_path(store_url)
    if path is None:
        raise MonitordError(f"this agent sends incidents to {store_url}; use --url {store_url} "
                            "with an operator token")
    if not await asyncio.to_thread(path.exists):
        raise MonitordError(f"no incident store at {path} yet: the agent makes it when it "
                            "first starts")
    return StoreDesk(await SQLiteStore.open(path, Policy.from_config(config.policy)))


def _operator_token(token_file: str | None) -> str:
    if token_file:
        try:
            return read_secret_file(token_file, "--token-file", required=True)
        except SecretError as e:
            raise MonitordError(str(e)) from None
    token = os.environ.get("MONITORD_TOKEN", "").strip()
    if not token:
        raise MonitordError("a central service needs an operator token: --token-file FILE or "
                            "$MONITORD_TOKEN (from `monitord central add-operator NAME`)")
    return token


def _when(at: dt.datetime | None) -> str:
    return at.astimezone().strftime("%Y-%m-%d %H:%M") if at else "-"
