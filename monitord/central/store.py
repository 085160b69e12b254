"""The store's interface: events in, incidents out. Backends: sqlite (now), postgres (next).

Rules every backend keeps (and the shared test suite checks):

- ``apply`` applies each event id once, however often it is delivered. One batch is one
  transaction: all of it is applied, or none.
- One open (open or acknowledged) incident per key. A repeated problem updates it (count,
  last seen, summary, timeline); a worse one raises its priority and brings its due time
  forward (``min(due_at, now + target(new priority))``); it never opens a second one.
- A problem whose key's last incident was resolved less than ``reopen_window`` ago reopens
  that incident ("reopened" on its timeline) instead of opening a new one.
- ``recovery`` resolves the open incident for its key (resolved_by "monitord"); a
  recovery with no open incident is recorded and changes nothing.
- ``healed`` is recorded and counted per host, check and fix; if an incident is open for
  its key, it goes on that incident's timeline too.
- A problem with ``suppressed_by`` set, while the parent key (same host) has an open
  incident, is attached to the parent's incident (timeline entry "attached", the child's
  key listed in ``attached``) instead of opening its own.
- ``heartbeat`` records the host's last heartbeat and interval; ``sweep`` opens one P1
  incident "server down" (key ``host/server-down``) for each host silent for longer than
  its allowed silence, and a heartbeat from such a host resolves it.
- ``due_at = opened_at + target(priority)``; targets come from the store's config.
- Dedup, reopen and the sweeper are single statements or run inside one write
  transaction, never read-then-write across transactions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from monitord.events import Event

IncidentStatus = Literal["open", "acknowledged", "resolved"]
SERVER_DOWN = "server-down"


@dataclass(frozen=True)
class Policy:
    """How the store judges time: response targets, reopen window, allowed silence."""

    targets: dict[str, float] = field(
        default_factory=lambda: {"P1": 900.0, "P2": 7200.0, "P3": 172800.0})
    reopen_window: float = 3600.0
    missed_heartbeats: int = 3         # a host is down after this many intervals of silence
    min_silence: float = 180.0         # ... and never sooner than this


@dataclass(frozen=True)
class TimelineEntry:
    at: dt.datetime
    kind: str            # problem, healed, recovery, reopened, attached, acknowledged,
                         # resolved, comment, priority
    who: str             # "monitord", an agent's host, or a person
    text: str
    event_id: str | None = None
    steps: tuple[dict[str, object], ...] = ()


@dataclass(frozen=True)
class Incident:
    id: int
    key: str
    host: str
    check: str
    priority: str
    status: IncidentStatus
    title: str
    summary: str
    opened_at: dt.datetime
    due_at: dt.datetime
    last_seen_at: dt.datetime
    count: int
    acknowledged_at: dt.datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: dt.datetime | None = None
    resolved_by: str | None = None
    reopened: int = 0
    attached: tuple[str, ...] = ()
    timeline: tuple[TimelineEntry, ...] = ()   # filled by ``incident(id)`` only


@dataclass(frozen=True)
class HostInfo:
    host: str
    last_heartbeat: dt.datetime | None
    interval_seconds: float | None
    open_incidents: int
    down: bool


@dataclass(frozen=True)
class ApplyReport:
    applied: int
    duplicates: int


class NotFound(LookupError):
    """No incident with that id."""


class Conflict(ValueError):
    """The incident cannot take that action now (e.g. acknowledging a resolved one)."""


class Store(Protocol):
    async def apply(self, events: Sequence[Event], now: dt.datetime) -> ApplyReport: ...

    async def incidents(
        self,
        status: Sequence[IncidentStatus] = ("open", "acknowledged"),
        priority: Sequence[str] = (),
        host: str | None = None,
        limit: int = 500,
    ) -> list[Incident]:
        """Ordered by due time, then priority, then id."""
        ...

    async def incident(self, incident_id: int) -> Incident:
        """With its timeline; raises NotFound."""
        ...

    async def acknowledge(self, incident_id: int, who: str, note: str,
                          now: dt.datetime) -> Incident: ...

    async def resolve(self, incident_id: int, who: str, note: str,
                      now: dt.datetime) -> Incident: ...

    async def comment(self, incident_id: int, who: str, text: str,
                      now: dt.datetime) -> Incident: ...

    async def hosts(self, now: dt.datetime) -> list[HostInfo]: ...

    async def sweep(self, now: dt.datetime) -> list[Incident]:
        """Open "server down" incidents for silent hosts; returns those it opened."""
        ...

    async def healed_counts(self) -> list[tuple[str, str, str, int]]:
        """(host, check, fix, times it healed) for every fix that healed something."""
        ...

    async def add_agent(self, host: str, token_hash: str, now: dt.datetime) -> None:
        """Register (or re-key) an agent; only the token's hash is stored."""
        ...

    async def agent_for(self, token_hash: str) -> str | None:
        """The host a token belongs to, or None."""
        ...

    async def close(self) -> None: ...
