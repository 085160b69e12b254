"""The records the store returns, made from neutral rows (see ``ops``), and the texts the
rules write: an event's timeline entry, a silent host's "server down"."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypedDict

from monitord.durations import format_duration
from monitord.events import Event, Step
from monitord.model import Priority
from monitord.store.model import (
    SERVER_DOWN,
    HostInfo,
    Incident,
    Maintenance,
    Notice,
    Period,
    TimelineEntry,
)
from monitord.store.ops import Row

MONITORD = "monitord"      # who the store itself is, on timelines and as a resolver


class Trouble(TypedDict):
    """What opens, reopens or updates an incident: a problem event or a silent host. (A
    dict of the upsert's own parameters: one is made for every problem.)"""

    key: str
    host: str
    check: str
    priority: Priority
    title: str
    titles: dict[str, str]     # the title at each priority, when it names the priority
    summary: str
    flapping: bool


def trouble(event: Event) -> Trouble:
    """The trouble a problem event reports."""
    assert event.check is not None and event.priority is not None   # Event validates
    return {"key": event.key, "host": event.host, "check": event.check,
            "priority": event.priority, "title": event.title or event.summary or event.key,
            "titles": {str(p): title for p, title in event.titles.items()},
            "summary": event.summary, "flapping": event.flapping}


def server_down(host: str, last: dt.datetime, interval_seconds: float,
                now: dt.datetime, stopped_at: dt.datetime | None = None
                ) -> tuple[Trouble, str]:
    """The P1 "server down" trouble of a silent host, and its timeline text."""
    silent = format_duration((now - last).total_seconds())
    text = (f"no heartbeat since {last.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC "
            f"({silent} ago); it comes every {format_duration(interval_seconds)}")
    title = f"{host}: server down (no heartbeat for {silent})"
    if stopped_at is not None:
        stopped = format_duration((now - stopped_at).total_seconds())
        text += (f"; its agent was stopped by an admin {stopped} ago and has not come "
                 "back within the stop limit")
        title = f"{host}: server down (stopped by an admin {stopped} ago, not back)"
    return {"key": f"{host}/{SERVER_DOWN}", "host": host, "check": SERVER_DOWN,
            "priority": Priority.P1, "title": title, "titles": {}, "summary": text,
            "flapping": False}, text


class Entry(TypedDict):
    """A timeline entry to write: ADD_ENTRY's parameters but the incident's id. (A dict,
    not a TimelineEntry: most events make one, and a frozen dataclass costs several
    times as much to make, and ``replace`` more again.)"""

    at: dt.datetime
    kind: str
    who: str
    text: str
    event_id: str | None
    steps: list[dict[str, Any]]    # the heal transcript


def entry(at: dt.datetime, kind: str, who: str, text: str,
          event_id: str | None = None) -> Entry:
    """A timeline entry with no fix steps (a person's, the store's own)."""
    return {"at": at, "kind": kind, "who": who, "text": text, "event_id": event_id,
            "steps": []}


def event_entry(event: Event, kind: str) -> Entry:
    """An event's timeline entry: its texts, and its fix steps (the heal transcript)."""
    text = "\n\n".join(part for part in (event.summary, event.reason, event.body) if part)
    return {"at": event.at, "kind": kind, "who": event.host, "text": text or kind,
            "event_id": event.id, "steps": [step.model_dump(mode="json") for step in event.steps]}


def retold(entry: Entry, kind: str) -> Entry:
    """``entry`` as another kind ("reopened", "attached")."""
    return {**entry, "kind": kind}


def ran(event: Event) -> list[Step]:
    """The event's fix steps that really ran (a dry run's steps did not: no exit, no
    re-probe); each is one run of its fix in the fix statistics, which are per check (an
    event of a whole host counts none)."""
    if event.check is None:
        return []
    return [s for s in event.steps if s.exit_code is not None or s.reprobe_status is not None]


def incident(row: Row, timeline: tuple[TimelineEntry, ...] = ()) -> Incident:
    return Incident(
        id=row["id"], key=row["key"], host=row["host"], check=row["check_name"],
        priority=Priority(row["priority"]), status=row["status"], title=row["title"],
        summary=row["summary"], opened_at=row["opened_at"], due_at=row["due_at"],
        last_seen_at=row["last_seen_at"], count=row["count"],
        acknowledged_at=row["acknowledged_at"], acknowledged_by=row["acknowledged_by"],
        resolved_at=row["resolved_at"], resolved_by=row["resolved_by"],
        reopened=row["reopened"], attached=tuple(sorted(row["attached_keys"])),
        timeline=timeline, escalation_level=row["escalation_level"],
        reopened_at=row["reopened_at"], flapping=bool(row["flapping"]))


def notice(row: Row) -> Notice:
    return Notice(id=row["id"], incident_id=row["incident_id"], kind=row["kind"],
                  level=row["level"], created_at=row["created_at"], attempts=row["attempts"],
                  done=tuple(row["done"]))


def timeline_entry(row: Row) -> TimelineEntry:
    return TimelineEntry(at=row["at"], kind=row["kind"], who=row["who"], text=row["text"],
                         event_id=row["event_id"], steps=tuple(row["steps"]))


def host(row: Row) -> HostInfo:
    return HostInfo(host=row["host"], last_heartbeat=row["last_heartbeat"],
                    interval_seconds=row["interval_seconds"],
                    open_incidents=row["open_incidents"], down=bool(row["down"]),
                    stopped_at=row["stopped_at"])


def maintenance(row: Row) -> Maintenance:
    return Maintenance(host=row["host"], check=row["check_name"], until=row["until"],
                       owner=row["owner"], reason=row["reason"], set_at=row["set_at"],
                       source=row["source"])


def period(row: Row) -> Period:
    return Period(incident_id=row["incident_id"], key=row["key"],
                  priority=Priority(row["priority"]), started_at=row["started_at"],
                  due_at=row["due_at"], acknowledged_at=row["acknowledged_at"],
                  acknowledged_by=row["acknowledged_by"], resolved_at=row["resolved_at"],
                  resolved_by=row["resolved_by"])
