"""How the fixes do, per check and fix: how often each ran, and how often it worked.

The store counts every fix step the agents report (``fix_runs``: the rungs of a ladder
that healed, and those of one that did not), per host; a run worked when the re-probe
right after it passed. This page adds the hosts up per check and fix, so the team can see
which runbooks earn their keep and which only delay the page to a person.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from monitord.store.protocol import Store


@dataclass
class FixStats:
    check: str
    fix: str
    hosts: set[str] = field(default_factory=set)
    runs: int = 0
    worked: int = 0

    @property
    def host_list(self) -> str:
        return ", ".join(sorted(self.hosts))

    @property
    def success(self) -> str:
        """The share of runs that worked, like "67%"."""
        return f"{round(100 * self.worked / self.runs)}%" if self.runs else "-"


async def fix_report(store: Store) -> list[FixStats]:
    table: dict[tuple[str, str], FixStats] = {}
    for host, check, fix, runs, worked in await store.fix_runs():
        stats = table.setdefault((check, fix), FixStats(check, fix))
        stats.hosts.add(host)
        stats.runs += runs
        stats.worked += worked
    return sorted(table.values(), key=lambda s: (s.check, -s.runs, s.fix))
