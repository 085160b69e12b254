"""The Store Protocol's methods, written once for every backend: each runs one script
(``rules`` or ``queries``) through the backend's ``_run``, which owns the connection, the
transaction, the deadline and the errors. ``writes`` tells ``_run`` that a script changes
something, so it needs a write transaction where reads need none."""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Callable, Sequence
from typing import TypeVar

from monitord.events import Event
from monitord.model import Priority
from monitord.store import queries
from monitord.store import rules as rule
from monitord.store.model import (
    ApplyReport,
    Escalation,
    FixRuns,
    HostInfo,
    Incident,
    IncidentStatus,
    Maintenance,
    Notice,
    Period,
)
from monitord.store.ops import Script
from monitord.store.people_rules import PeopleMethods
from monitord.store.policy import Policy

R = TypeVar("R")


class RuleStore(PeopleMethods, abc.ABC):
    """A Store whose backend only runs scripts (see the module docstring); the on-call
    methods are ``PeopleMethods``'."""

    policy: Policy

    @abc.abstractmethod
    async def _run(self, script: Callable[[], Script[R]], *, writes: bool) -> R:
        """Run a fresh ``script()`` to its end in one transaction (a write one if
        ``writes``); it may be made again to run the transaction again."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    # --- events and incidents ---------------------------------------------------------

    async def apply(self, events: Sequence[Event], now: dt.datetime) -> ApplyReport:
        return await self._run(lambda: rule.apply(self.policy, events, now), writes=True)

    async def incidents(
        self,
        status: Sequence[IncidentStatus] = ("open", "acknowledged"),
        priority: Sequence[Priority] = (),
        host: str | None = None,
        limit: int = 500,
    ) -> list[Incident]:
        """Ordered by due time, then priority, then id."""
        return await self._run(lambda: queries.incidents(status, priority, host, limit),
                               writes=False)

    async def incident(self, incident_id: int) -> Incident:
        """With its timeline; raises NotFound."""
        return await self._run(lambda: queries.read_incident(incident_id), writes=False)

    async def acknowledge(self, incident_id: int, who: str, note: str,
                          now: dt.datetime) -> Incident:
        return await self._run(lambda: rule.acknowledge(incident_id, who, note, now),
                               writes=True)

    async def resolve(self, incident_id: int, who: str, note: str,
                      now: dt.datetime) -> Incident:
        return await self._run(lambda: rule.resolve(incident_id, who, note, now),
                               writes=True)

    async def comment(self, incident_id: int, who: str, text: str,
                      now: dt.datetime) -> Incident:
        return await self._run(lambda: rule.comment(incident_id, who, text, now),
                               writes=True)

    async def hosts(self, now: dt.datetime) -> list[HostInfo]:
        silence = rule.silence(self.policy)
        return await self._run(lambda: queries.hosts(now, silence), writes=False)

    async def host(self, name: str, now: dt.datetime) -> HostInfo | None:
        silence = rule.silence(self.policy)
        return await self._run(lambda: queries.host(name, now, silence), writes=False)

    async def hosts_page(self, now: dt.datetime, limit: int,
                         offset: int = 0) -> tuple[list[HostInfo], int]:
        silence = rule.silence(self.policy)
        return await self._run(lambda: queries.hosts_page(now, silence, limit, offset),
                               writes=False)

    async def sweep(self, now: dt.datetime) -> list[Incident]:
        """Open "server down" incidents for silent hosts; returns those it opened."""
        return await self._run(lambda: rule.sweep(self.policy, now), writes=True)

    async def healed_counts(self) -> list[tuple[str, str, str, int]]:
        """(host, check, fix, times it healed) for every fix that healed something."""
        return await self._run(queries.healed_counts, writes=False)

    async def fix_runs(self) -> list[tuple[str, str, str, int, int]]:
        return await self._run(queries.fix_runs, writes=False)

    async def fix_stats(self, since: dt.datetime, host: str | None = None,
                        check: str | None = None, limit: int | None = None) -> list[FixRuns]:
        return await self._run(lambda: queries.fix_stats(since, host, check, limit),
                               writes=False)

    async def open_counts(self) -> dict[tuple[str, str], int]:
        return await self._run(queries.open_counts, writes=False)

    async def opened_between(self, since: dt.datetime, until: dt.datetime) -> list[Incident]:
        return await self._run(lambda: queries.opened_between(since, until), writes=False)

    async def periods_between(self, since: dt.datetime, until: dt.datetime) -> list[Period]:
        return await self._run(lambda: queries.periods_between(since, until), writes=False)

    # --- maintenance ------------------------------------------------------------------

    async def maintenance(self, now: dt.datetime,
                          host: str | None = None) -> list[Maintenance]:
        return await self._run(lambda: queries.maintenance(now, host), writes=False)

    async def set_maintenance(self, window: Maintenance) -> None:
        await self._run(lambda: queries.set_maintenance(window), writes=True)

    async def end_maintenance(self, host: str, check: str, now: dt.datetime) -> bool:
        return await self._run(lambda: rule.end_maintenance(host, check, None, now),
                               writes=True)

    # --- notices ----------------------------------------------------------------------

    async def escalate(self, now: dt.datetime, rules: Escalation) -> list[Notice]:
        return await self._run(lambda: rule.escalate(self.policy, now, rules), writes=True)

    async def claim_notices(self, now: dt.datetime, lease_seconds: float,
                            limit: int = 50) -> list[Notice]:
        return await self._run(lambda: rule.claim_notices(now, lease_seconds, limit),
                               writes=True)

    async def finish_notice(self, notice: Notice, done: Sequence[str], now: dt.datetime,
                            retry_at: dt.datetime | None, error: str = "",
                            text: str = "") -> bool:
        return await self._run(
            lambda: rule.finish_notice(notice, done, now, retry_at, error, text), writes=True)

    # --- people, agents, secrets ------------------------------------------------------

    async def set_password(self, name: str, password_hash: str, now: dt.datetime) -> None:
        await self._run(lambda: queries.set_password(name, password_hash, now), writes=True)

    async def password_hash(self, name: str) -> str | None:
        return await self._run(lambda: queries.password_hash(name), writes=False)

    async def session_generation(self, name: str) -> int:
        return await self._run(lambda: queries.session_generation(name), writes=False)

    async def end_sessions(self, name: str) -> None:
        await self._run(lambda: queries.end_sessions(name), writes=True)

    async def set_person_token(self, name: str, token_hash: str, now: dt.datetime) -> None:
        await self._run(lambda: queries.set_person_token(name, token_hash, now), writes=True)

    async def person_for(self, token_hash: str) -> str | None:
        return await self._run(lambda: queries.person_for(token_hash), writes=False)

    async def secret(self, name: str, candidate: str) -> str:
        return await self._run(lambda: queries.secret(name, candidate), writes=True)

    async def add_agent(self, host: str, token_hash: str, now: dt.datetime) -> None:
        """Register (or re-key) an agent; only the token's hash is stored."""
        await self._run(lambda: queries.add_agent(host, token_hash, now), writes=True)

    async def add_scraper(self, name: str, token_hash: str, now: dt.datetime) -> None:
        await self._run(lambda: queries.add_scraper(name, token_hash, now), writes=True)

    async def scraper_for(self, token_hash: str) -> str | None:
        return await self._run(lambda: queries.scraper_for(token_hash), writes=False)

    async def agent_for(self, token_hash: str) -> str | None:
        """The host a token belongs to, or None."""
        return await self._run(lambda: queries.agent_for(token_hash), writes=False)
