"""The graph of ``depends_on``: which parents a check's failure waits on, and which
dependents must look again when a parent's failure is over.

Parents count transitively (site -> php-fpm pool -> php-fpm master); config refuses
cycles and chains deeper than 32.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from monitord.agent.state import CheckState
from monitord.model import Status
from monitord.probes.base import CheckBase


class Dependencies:
    def __init__(self, checks: Sequence[CheckBase], states: dict[str, CheckState]) -> None:
        self._direct = {c.name: list(c.depends_on) for c in checks}
        self._up = ancestors(checks)
        self._down = descendants(checks)
        self._states = states          # the agent's own dict: read as it changes

    def parents(self, name: str) -> list[str]:
        """``name``'s own parents (not theirs)."""
        return self._direct.get(name, [])

    def waited_on(self, name: str, failed_at: float,
                  fixing: Callable[[str], bool]) -> tuple[str | None, bool]:
        """The nearest parent ``name``'s failure waits on, and whether that parent's own
        failure is settled (escalated, its ladder over): then the failure joins the
        incident of the root cause, up the chain of parents it joined."""
        for parent in self._up[name]:
            state = self._states.get(parent)
            if state is None:
                continue
            if fixing(parent) or state.wants_action():
                return parent, False           # its ladder runs, or is about to
            if state.status is not Status.OK:
                if state.hard_failing and state.escalated:
                    return self._root(parent), True
                return parent, False           # failing, not yet confirmed or handled
            if state.last_run < failed_at:
                return parent, False           # fine, but not judged since this failed
        return None, False

    def _root(self, name: str) -> str:
        seen = {name}
        while (up := self._states[name].suppressed_by) is not None and up not in seen:
            seen.add(up)
            name = up
        return name

    def failing_dependents(self, name: str) -> list[str]:
        """Those of ``name``'s dependents that are failing now."""
        return [n for n in self._down[name] if (s := self._states.get(n)) is not None
                and s.status is not Status.OK]


def ancestors(checks: Sequence[CheckBase]) -> dict[str, list[str]]:
    """Each check's parents, transitively, nearest first (config refuses cycles)."""
    direct = {c.name: list(c.depends_on) for c in checks}
    found: dict[str, list[str]] = {}
    for name in direct:
        order: list[str] = []
        queue = list(direct[name])
        while queue:
            parent = queue.pop(0)
            if parent not in order and parent != name and parent in direct:
                order.append(parent)
                queue.extend(direct[parent])
        found[name] = order
    return found


def descendants(checks: Sequence[CheckBase]) -> dict[str, list[str]]:
    """Each check's dependents, transitively."""
    down: dict[str, list[str]] = {c.name: [] for c in checks}
    for name, parents in ancestors(checks).items():
        for parent in parents:
            down[parent].append(name)
    return down
