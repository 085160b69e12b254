"""The records the store returns and takes (incidents, their timelines, hosts, maintenance
windows, open periods, fix runs, notices, the escalation rules), and the words they use.
``protocol`` states the store's interface and its rules, and re-exports these."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from monitord.model import Priority

IncidentStatus = Literal["open", "acknowledged", "resolved"]
WindowSource = Literal["agent", "person"]   # who set a maintenance window
NoticeKind = Literal["opened", "escalated", "renotify", "acknowledged", "resolved",
                     "flapping"]
SERVER_DOWN = "server-down"


@dataclass(frozen=True)
class TimelineEntry:
    at: dt.datetime
    kind: str            # problem, healed, recovery, reopened, attached, acknowledged,
                         # resolved, comment, priority, notified
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
    priority: Priority
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
    escalation_level: int = 0     # 0: the first contact; n: the chain's (n+1)th was told
    reopened_at: dt.datetime | None = None     # when it was last reopened, if it was
    flapping: bool = False        # its check keeps changing state: notices wait for calm

    @property
    def answer_from(self) -> dt.datetime:
        """Where its response time starts: its opening, or its last reopening."""
        return self.reopened_at or self.opened_at

    def overdue(self, now: dt.datetime) -> bool:
        """Past its due time with nobody's hand on it (open, not acknowledged)."""
        return self.status == "open" and now > self.due_at


@dataclass(frozen=True)
class HostInfo:
    host: str
    last_heartbeat: dt.datetime | None
    interval_seconds: float | None
    open_incidents: int
    down: bool
    stopped_at: dt.datetime | None = None      # its stop heard then (the store's clock)


@dataclass(frozen=True)
class Maintenance:
    """A window in which nothing about ``host`` (or its ``check``) is notified. Its
    source is who set it: the host's agent (``monitord maintenance``, as events) or a
    person (the console or the API); each source has its own window."""

    host: str
    check: str           # "" for the whole host
    until: dt.datetime
    owner: str
    reason: str
    set_at: dt.datetime
    source: WindowSource = "person"


@dataclass(frozen=True)
class Period:
    """One period an incident was open: from its opening (or a reopening) to its
    resolution, with the first acknowledgement in it. The SLA report counts these."""

    incident_id: int
    key: str
    priority: Priority
    started_at: dt.datetime
    due_at: dt.datetime
    acknowledged_at: dt.datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: dt.datetime | None = None
    resolved_by: str | None = None

    @property
    def answer_from(self) -> dt.datetime:
        return self.started_at

    @property
    def status(self) -> IncidentStatus:
        if self.resolved_at is not None:
            return "resolved"
        return "acknowledged" if self.acknowledged_at is not None else "open"


@dataclass(frozen=True)
class FixRuns:
    """How one fix did on one host's check within a window."""

    host: str
    check: str
    fix: str
    runs: int
    worked: int               # runs after which the re-probe passed
    last_at: dt.datetime      # the latest run


@dataclass(frozen=True)
class ApplyReport:
    applied: int
    duplicates: int


@dataclass(frozen=True)
class Notice:
    """One thing to tell people about one incident, until every channel has it."""

    id: int
    incident_id: int
    kind: NoticeKind
    level: int                 # the incident's escalation level when the notice was made
    created_at: dt.datetime
    attempts: int              # delivery rounds claimed so far, this one included
    done: tuple[str, ...] = ()   # channels finished with it: told, or refused for good


@dataclass(frozen=True)
class Escalation:
    """The SLA rules ``escalate`` applies (from the central config's [escalation], and the
    escalation policies of the priorities that have one)."""

    renotify_every: float = 0.0   # seconds between reminders of an open P1; 0 = never
    escalate_at: float = 0.0      # share of the response target per level; 0 = never
    max_level: int = 0            # how far up the chain it goes (its length - 1)
    # A priority's own levels, where its escalation policy says: level n is reached when
    # steps[priority][n] of the response target has passed (steps[priority][0] is 0).
    steps: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    def shares(self, priority: str) -> tuple[float, ...]:
        """When each level of ``priority`` is reached, as shares of its response target."""
        if priority in self.steps:
            return self.steps[priority]
        if self.escalate_at <= 0:
            return (0.0,)
        return tuple(level * self.escalate_at for level in range(self.max_level + 1))

    @property
    def climbs(self) -> bool:
        return any(len(self.shares(p)) > 1 for p in Priority)
