"""The SLA report: per priority, how many times incidents opened, how fast people answered
them, and how many missed their response target (``monitord central sla-report --since
7d``).

It counts open periods (the store's ``periods_between``): every opening of an incident,
and every reopening of one that came back after it was resolved, is a period of its own,
with the first acknowledgement made in it; a reopening never wipes the answer (or the
breach) of the period before it.

A period is answered when a person acknowledges the incident, or resolves it without
acknowledging it first. The time to answer runs from the start of the period: that is
when people were called. It breached its target when the answer came after its due time,
or when it is still unanswered and its due time has passed. One that monitord resolved
itself (a recovery) before its due time needed nobody and counts as neither answered nor
breached.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from monitord.central.config import CentralConfig
from monitord.durations import format_duration
from monitord.model import Priority
from monitord.store.protocol import IncidentStatus

PRIORITIES = tuple(Priority)
MONITORD = "monitord"


@dataclass(frozen=True)
class Row:
    priority: Priority
    opened: int
    answered: int
    median_seconds: float | None      # time to answer; None when nothing was answered
    worst_seconds: float | None
    breached: int


class Answerable(Protocol):
    """What the report reads of an open period (or of an incident, as its last one)."""

    @property
    def priority(self) -> Priority: ...
    @property
    def status(self) -> IncidentStatus: ...
    @property
    def due_at(self) -> dt.datetime: ...
    @property
    def acknowledged_at(self) -> dt.datetime | None: ...
    @property
    def resolved_at(self) -> dt.datetime | None: ...
    @property
    def resolved_by(self) -> str | None: ...
    @property
    def answer_from(self) -> dt.datetime: ...


def answered_at(incident: Answerable) -> dt.datetime | None:
    """When a person first answered it, or None."""
    if incident.acknowledged_at is not None:
        return incident.acknowledged_at
    if incident.resolved_at is not None and incident.resolved_by != MONITORD:
        return incident.resolved_at
    return None


def breached(incident: Answerable, now: dt.datetime) -> bool:
    answer = answered_at(incident)
    if answer is not None:
        return answer > incident.due_at
    if incident.status == "resolved" and incident.resolved_at is not None:
        return incident.resolved_at > incident.due_at     # left to itself past its due time
    return now > incident.due_at


def report(incidents: Iterable[Answerable], now: dt.datetime) -> list[Row]:
    by_priority: dict[Priority, list[Answerable]] = {p: [] for p in PRIORITIES}
    for incident in incidents:
        by_priority.setdefault(incident.priority, []).append(incident)
    rows = []
    for priority, found in by_priority.items():
        waits = [(answer - i.answer_from).total_seconds()
                 for i in found if (answer := answered_at(i)) is not None]
        rows.append(Row(priority, len(found), len(waits),
                        statistics.median(waits) if waits else None,
                        max(waits) if waits else None,
                        sum(breached(i, now) for i in found)))
    return rows


def render(rows: list[Row], since: dt.datetime, until: dt.datetime,
           targets: Mapping[Priority, float], store_name: str) -> str:
    header = ("PRI", "TARGET", "OPENED", "ANSWERED", "MEDIAN", "WORST", "BREACHED")
    table = [header] + [
        (r.priority, format_duration(targets.get(r.priority, 0)), str(r.opened),
         str(r.answered), _duration(r.median_seconds), _duration(r.worst_seconds),
         str(r.breached)) for r in rows]
    widths = [max(len(line[c]) for line in table) for c in range(len(header))]
    lines = [f"SLA report for incidents opened or reopened {_when(since)} to "
             f"{_when(until)} ({store_name})", ""]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
              for line in table]
    lines += ["", "OPENED: openings and reopenings, each counted with its own answer.",
              "MEDIAN, WORST: from opening to a person's acknowledgement (or resolution).",
              "BREACHED: answered after the due time, or still unanswered past it."]
    return "\n".join(lines)


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)


def _when(moment: dt.datetime) -> str:
    return f"{moment.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"


async def sla_report(config: CentralConfig, since_seconds: float, now: dt.datetime) -> str:
    """The report of the store ``config`` names, for the periods incidents were open that
    started in the last while."""
    since = now - dt.timedelta(seconds=since_seconds)
    store = await config.open_store()
    try:
        periods = await store.periods_between(since, now)
    finally:
        await store.close()
    return render(report(periods, now), since, now, config.store_policy.targets,
                  config.store_name)
