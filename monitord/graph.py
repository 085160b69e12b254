"""The graph of ``depends_on`` as config validation sees it: cycles and chain depth,
found without recursion (a chain of thousands is data, not a reason to crash)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class CheckBase(Protocol):
    """What the graph reads of a check."""

    @property
    def name(self) -> str: ...

    @property
    def depends_on(self) -> list[str]: ...

MAX_DEPTH = 32    # checks in one chain of depends_on: deeper is a generated mistake


def find_cycles(checks: Sequence[CheckBase]) -> list[list[str]]:
    """Every cycle of depends_on, found without recursion (a chain of thousands is data,
    not a reason to crash)."""
    names = {x.name for x in checks}
    parents = {c.name: [p for p in c.depends_on if p in names] for c in checks}
    state: dict[str, str] = {}
    cycles: list[list[str]] = []
    for root in sorted(parents):
        if root in state:
            continue
        path, stack = [root], [iter(parents[root])]
        state[root] = "visiting"
        while stack:
            parent = next(stack[-1], None)
            if parent is None:
                state[path.pop()] = "done"
                stack.pop()
            elif state.get(parent) == "visiting":
                cycles.append([*path[path.index(parent) :], parent])
            elif parent not in state:
                state[parent] = "visiting"
                path.append(parent)
                stack.append(iter(parents[parent]))
    return cycles


def too_deep(checks: Sequence[CheckBase]) -> list[tuple[str, int]]:
    """Checks whose chain of parents is longer than MAX_DEPTH (cycles aside)."""
    parents = {c.name: c.depends_on for c in checks}
    depth: dict[str, int] = {}
    for name in sorted(parents):
        stack = [name]
        while stack:
            node = stack[-1]
            pending = [p for p in parents.get(node, []) if p in parents and p not in depth
                       and p not in stack]
            if pending:
                stack.append(pending[0])
                continue
            depth[node] = 1 + max((depth.get(p, 0) for p in parents.get(node, [])
                                   if p in depth), default=0)
            stack.pop()
    return [(n, d) for n, d in sorted(depth.items()) if d > MAX_DEPTH]
