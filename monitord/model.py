"""Types shared by the agent and the store: Status, Priority, Reading, Observation, Result."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

Labels = tuple[tuple[str, str], ...]
Value = float | int | str | bool


class Status(enum.IntEnum):
    """A check's verdict, with the Nagios plugin exit codes as values."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3

    @property
    def label(self) -> str:
        return self.name


# worst() order: CRITICAL is worse than UNKNOWN (a known outage beats not knowing),
# UNKNOWN is worse than WARNING, and WARNING is worse than OK.
_SEVERITY = {Status.OK: 0, Status.WARNING: 1, Status.UNKNOWN: 2, Status.CRITICAL: 3}


def worst(statuses: Iterable[Status]) -> Status:
    """The most severe status: CRITICAL > UNKNOWN > WARNING > OK; OK for none."""
    return max(statuses, key=_SEVERITY.__getitem__, default=Status.OK)


class Priority(enum.StrEnum):
    """Support-desk priority: P1 immediate, P2 within 2 hours, P3 within 48 hours.

    The names sort by urgency ("P1" < "P2"): ``min()`` of priorities is the most urgent.
    """

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"


# The response target of each priority, in seconds, unless [policy] says otherwise.
DEFAULT_TARGETS: dict[Priority, float] = {
    Priority.P1: 900.0,
    Priority.P2: 7200.0,
    Priority.P3: 172800.0,
}


@dataclass(frozen=True, slots=True)
class Reading:
    """One thing a probe saw: a metric (number) or a fact (string or bool), maybe labelled.

    Metric names carry their unit (``response_seconds``, ``used_ratio``); labels say which
    instance the reading belongs to (``(("mount", "/var"),)``).
    """

    name: str
    value: Value
    labels: Labels = ()

    @property
    def is_number(self) -> bool:
        return isinstance(self.value, int | float) and not isinstance(self.value, bool)

    @property
    def where(self) -> str:
        """The labels as text, e.g. ``/var`` or ``mount=/var pid=3``; empty when unlabelled."""
        return " ".join(v if len(self.labels) == 1 else f"{k}={v}" for k, v in self.labels)


@dataclass(slots=True)
class Observation:
    """What a probe returns: its readings and a neutral one-line description."""

    summary: str
    readings: list[Reading] = field(default_factory=list)

    def add(self, name: str, value: Value, **labels: str) -> None:
        self.readings.append(Reading(name, value, tuple(sorted(labels.items())) if labels
                                     else ()))


@dataclass(frozen=True, slots=True)
class Result:
    """The judged outcome of one check run."""

    status: Status
    summary: str
    readings: tuple[Reading, ...] = ()
    duration_seconds: float = 0.0
    at: float = 0.0  # wall-clock timestamp (time.time()) of the run's end

    def metrics(self) -> list[Reading]:
        return [r for r in self.readings if r.is_number]
