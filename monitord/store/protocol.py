"""The store's interface: events in, incidents out; the records it returns are in ``model``
(and importable from here too).

The rules below are decided in one place, ``rules`` (events, incidents, the sweep; with
``actions``, people's actions, and ``escalation``, escalation, notices and the end of a
window) with ``queries`` (reads, people, agents, secrets); the backends, ``sqlite`` and
``postgres``, only run the statements those ask for. The shared test suite checks every
rule against every backend:

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
from collections.abc import Sequence
from typing import Protocol

from monitord.events import Event
from monitord.model import Priority
from monitord.store.model import (
    SERVER_DOWN,
    ApplyReport,
    Escalation,
    FixRuns,
    HostInfo,
    Incident,
    IncidentStatus,
    Maintenance,
    Notice,
    NoticeKind,
    Period,
    TimelineEntry,
    WindowSource,
)
from monitord.store.people import PeopleStore

# The records live in ``model``; every import of them from here keeps working.
__all__ = [
    "SERVER_DOWN", "ApplyReport", "Escalation", "FixRuns", "HostInfo", "Incident",
    "IncidentStatus", "Maintenance", "Notice", "NoticeKind", "Period", "Store",
    "TimelineEntry", "WindowSource",
]


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
