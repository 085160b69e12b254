"""The store's interface: events in, incidents out, and the records it returns.

The rules below are decided in one place, ``rules`` (events, incidents, the sweep, people's
actions, escalation and notices) with ``queries`` (reads, people, agents, secrets); the
backends, ``sqlite`` and ``postgres``, only run the statements those ask for. The shared
test suite checks every rule against every backend:

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
  its key, it goes on that incident's timeline too. Every fix step of a ``problem`` or
  ``healed`` event counts as a run of its fix (``fix_runs``), and as one that worked when
  the re-probe after it was OK; each run is also kept with its time for 90 days
  (``fix_stats`` over a window).
- A problem with ``suppressed_by`` set, while the parent key (same host) has an open
  incident, is attached to the parent's incident (timeline entry "attached", the child's
  key listed in ``attached``) instead of opening its own.
- ``heartbeat`` records the host's last heartbeat and interval; ``sweep`` opens one P1
  incident "server down" (key ``host/server-down``) for each host silent for longer than
  its allowed silence, and a heartbeat from such a host resolves it. A host whose agent
  said ``stopped`` is not silent (it is shown as stopped) until the stop is longer than
  ``stop_limit``, counted from when the store received the ``stopped`` event (its own
  clock, whatever the agent's says); a heartbeat the agent made after the stop ends it.
- An incident's priority is the highest of its own check's current one (the latest
  problem on its key) and its failing attached children's. It follows them: a rise is
  at once, with a timeline entry and a notice ("escalated"), the due time brought
  forward (``min(due_at, now + target)``); a fall (a milder problem, a child that
  recovered) is a timeline entry and no notice, the due time counted from the opening
  (``answer_from + target``). Title, due time and priority move together: a problem
  whose title names its priority (``titles``) gives the incident the title of its current
  priority, in every path (its own check's change, a child attached or recovered); a
  title that does not name it stays. ``healed`` never changes a priority.
- A problem marked ``flapping`` marks the incident flapping, with one notice ("opened"
  for a new one, "flapping" for one already open). While it flaps, problems and
  recoveries that come within ``flap_quiet`` of the last change are held (a timeline
  entry, no notice, no resolution); the first one after ``flap_quiet`` of calm resolves
  it, or tells that it fails steadily ("escalated"), once. The sweep does the same for a
  held word with nothing after it.
- ``maintenance`` events (and people, through ``set_maintenance``) set or end a window
  of a host or of one check; an agent's events set and end the agent's windows only, a
  person's ``set_maintenance`` sets a person's, and ``end_maintenance`` (the console, the
  API) ends any. No notice is made for an incident in a running window (a timeline
  entry says so instead), except "resolved" and "acknowledged" of an incident people
  were told of before; its escalation level does not rise and it is not reminded (its
  clock waits). When the window ends (ended, or found expired by the sweep or the
  escalation round), its still open incidents' escalation clocks restart from the
  window's end, and an open one people never heard of gets its "opened" notice, once.
  The same window set again (an agent that starts tells its windows again) changes
  nothing.
- Every opening and reopening starts an open period (``periods_between``) that keeps
  its first acknowledgement and its resolution: a reopening never wipes the last one.
- ``due_at = opened_at + target(priority)``; targets come from the store's config.
- Dedup, reopen and the sweeper are single statements or run inside one write
  transaction, never read-then-write across transactions.
- Every change people must hear of makes a ``Notice`` in the same transaction: an incident
  opened (or reopened), its priority raised ("escalated"), acknowledged, resolved (by a
  person or a recovery). ``escalate`` adds the SLA ones: an open (unacknowledged)
  incident moves one level up its escalation chain each time another ``escalate_at``
  share of its response target passes ("escalated"), and an open P1 not told anything for
  ``renotify_every`` is told again ("renotify"). Each is one atomic statement per
  incident, so of several central processes only one makes a given notice.
- ``claim_notices`` leases due notices to one process at a time (a lease that runs out
  makes them claimable again: a process that died mid-delivery loses nothing);
  ``finish_notice`` records which channels have it and either ends it or sets its retry.
  A notice waits while an older one of its incident is on its first delivery round (so
  "resolved" never overtakes "opened"), but not while an older one waits for a retry.
  An incident has at most one reminder waiting; a second acknowledgement keeps the
  first one's time and name and makes no notice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from monitord.events import Event
from monitord.model import Priority
from monitord.store.people import PeopleStore

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


class Store(PeopleStore, Protocol):
    """The incident store; with people, schedules and policies (``people``)."""

    async def apply(self, events: Sequence[Event], now: dt.datetime) -> ApplyReport: ...

    async def incidents(
        self,
        status: Sequence[IncidentStatus] = ("open", "acknowledged"),
        priority: Sequence[Priority] = (),
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

    async def host(self, name: str, now: dt.datetime) -> HostInfo | None:
        """The host ``name`` as ``hosts`` shows it; None if it never reported."""
        ...

    async def hosts_page(self, now: dt.datetime, limit: int,
                         offset: int = 0) -> tuple[list[HostInfo], int]:
        """At most ``limit`` hosts by name, from the ``offset``-th; and how many there are."""
        ...

    async def sweep(self, now: dt.datetime) -> list[Incident]:
        """Open "server down" incidents for silent hosts; returns those it opened."""
        ...

    async def healed_counts(self) -> list[tuple[str, str, str, int]]:
        """(host, check, fix, times it healed) for every fix that healed something."""
        ...

    async def fix_runs(self) -> list[tuple[str, str, str, int, int]]:
        """(host, check, fix, runs, runs after which the check passed) for every fix run."""
        ...

    async def fix_stats(self, since: dt.datetime, host: str | None = None,
                        check: str | None = None, limit: int | None = None) -> list[FixRuns]:
        """Fix runs since ``since`` (at most 90 days back), per host, check and fix, by
        host, check and fix. Only ``host``'s or ``check``'s when given; with a filter or a
        ``limit``, the busiest first (most runs, then the latest), at most ``limit``."""
        ...

    async def open_counts(self) -> dict[tuple[str, str], int]:
        """Unresolved incidents per (priority, status); a pair with none is left out."""
        ...

    async def opened_between(self, since: dt.datetime, until: dt.datetime) -> list[Incident]:
        """Every incident opened (or last reopened) in [since, until), any status, oldest
        first."""
        ...

    async def periods_between(self, since: dt.datetime, until: dt.datetime) -> list[Period]:
        """Every period an incident was open that started in [since, until), oldest
        first: a reopened incident has one per opening."""
        ...

    # --- maintenance ------------------------------------------------------------------

    async def maintenance(self, now: dt.datetime,
                          host: str | None = None) -> list[Maintenance]:
        """The windows running at ``now``, by host and check; only ``host``'s if given."""
        ...

    async def set_maintenance(self, window: Maintenance) -> None:
        """Set (or replace) its source's window of its host, or of its host's check."""
        ...

    async def end_maintenance(self, host: str, check: str, now: dt.datetime) -> bool:
        """End the windows of ``host`` (``check`` ""), or of its check, whoever set them
        (a person may end an agent's window too); False if none ran. The incidents it
        held get what the end of a window gives them (see the module docstring)."""
        ...

    # --- notices ----------------------------------------------------------------------

    async def escalate(self, now: dt.datetime, rules: Escalation) -> list[Notice]:
        """Apply the SLA rules to open incidents; returns the notices it made."""
        ...

    async def claim_notices(self, now: dt.datetime, lease_seconds: float,
                            limit: int = 50) -> list[Notice]:
        """Due notices (oldest first), leased to the caller until now + lease_seconds."""
        ...

    async def finish_notice(self, notice: Notice, done: Sequence[str], now: dt.datetime,
                            retry_at: dt.datetime | None, error: str = "",
                            text: str = "") -> bool:
        """Record the channels that have it; end it (``retry_at`` None) or retry it then.

        Only the claim that ``notice`` is (its id and ``attempts``) may finish it: False,
        and nothing changed, when its lease ran out and somebody claimed it again. A
        non-empty ``text`` goes on the incident's timeline as a "notified" entry.
        """
        ...

    # --- people, agents, secrets ------------------------------------------------------

    async def set_password(self, name: str, password_hash: str, now: dt.datetime) -> None:
        """Add the person ``name`` or change their password (only its hash is given)."""
        ...

    async def password_hash(self, name: str) -> str | None:
        """The person's password hash; None if there is no such person (or no password)."""
        ...

    async def session_generation(self, name: str) -> int:
        """How many times the person's console sessions were ended (0 for nobody): a
        session made under an older count is over."""
        ...

    async def end_sessions(self, name: str) -> None:
        """End every console session of the person, on every central process."""
        ...

    async def set_person_token(self, name: str, token_hash: str, now: dt.datetime) -> None:
        """Add the person ``name`` or replace their API token (only its hash is kept)."""
        ...

    async def person_for(self, token_hash: str) -> str | None:
        """The person an API token belongs to, or None."""
        ...

    async def secret(self, name: str, candidate: str) -> str:
        """The shared secret ``name``; the first caller's ``candidate`` becomes it."""
        ...

    async def add_agent(self, host: str, token_hash: str, now: dt.datetime) -> None:
        """Register (or re-key) an agent; only the token's hash is stored."""
        ...

    async def agent_for(self, token_hash: str) -> str | None:
        """The host a token belongs to, or None."""
        ...

    async def add_scraper(self, name: str, token_hash: str, now: dt.datetime) -> None:
        """Register (or re-key) a scraper, whose token may only read /metrics; only the
        token's hash is stored."""
        ...

    async def scraper_for(self, token_hash: str) -> str | None:
        """The scraper a token belongs to, or None."""
        ...

    async def close(self) -> None: ...
