"""What both store backends share: the shape of a trouble, the texts of a silent host and
of an event's timeline entry, and the versioned schema files."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from importlib import resources

from monitord.durations import format_duration
from monitord.errors import StoreError
from monitord.events import Event, Step
from monitord.store.protocol import SERVER_DOWN


@dataclass(frozen=True)
class Trouble:
    """What opens, reopens or updates an incident: a problem event or a silent host."""

    key: str
    host: str
    check: str
    priority: str
    title: str
    summary: str


def server_down(host: str, last: dt.datetime, interval_seconds: float,
                now: dt.datetime) -> tuple[Trouble, str]:
    """The P1 "server down" trouble of a silent host, and its timeline text."""
    silent = format_duration((now - last).total_seconds())
    text = (f"no heartbeat since {last.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC "
            f"({silent} ago); it comes every {format_duration(interval_seconds)}")
    title = f"{host}: server down (no heartbeat for {silent})"
    return Trouble(f"{host}/{SERVER_DOWN}", host, SERVER_DOWN, "P1", title, text), text


def event_text(event: Event, kind: str) -> tuple[str, str]:
    """An event's timeline text and its fix steps as JSON."""
    text = "\n\n".join(part for part in (event.summary, event.reason, event.body) if part)
    steps = json.dumps([step.model_dump(mode="json") for step in event.steps])
    return text or kind, steps


def ran(event: Event) -> list[Step]:
    """The event's fix steps that really ran (a dry run's steps did not: no exit, no
    re-probe); each is one run of its fix in the fix statistics."""
    return [s for s in event.steps if s.exit_code is not None or s.reprobe_status is not None]


def schema_files(backend: str) -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of ``schema/BACKEND/NNN_name.sql``, oldest first."""
    folder = resources.files("monitord.store") / "schema" / backend
    found = []
    for item in folder.iterdir():
        match = re.fullmatch(r"(\d+)_\w+\.sql", item.name)
        if match:
            found.append((int(match[1]), item.name, item.read_text(encoding="utf-8")))
    if not found:
        raise StoreError(f"no schema files in {folder}; the monitord install is incomplete")
    return sorted(found)
