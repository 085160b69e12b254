"""What every probe module shares: the check model it extends and the context it runs in.

A probe module defines ``Config`` (a subclass of ``CheckBase`` holding the probe's own
keys), ``METRICS`` (the readings it reports, so thresholds can be checked by name) and
``async def probe(cfg, ctx) -> Observation``. It makes one attempt and raises
``ProbeError`` when it cannot observe. Deadlines, timing and judging live elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from pydantic import Field

from monitord.errors import Stuck
from monitord.model import Priority, Status, Value
from monitord.ranges import Range, parse_range
from monitord.schema import (
    NAME_PATTERN,
    AbsolutePath,
    Duration,
    DurationOrZero,
    OptionalPriority,
    PriorityField,
    Regex,
    StrictModel,
    Threshold,
    ca_file_needs_verify,
    read_secret_file,
)

T = TypeVar("T")


FIX_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
OWN_COMMANDS = ("start", "stop", "restart")  # heal steps that run the check's own commands


class HealStep(StrictModel):
    """One rung of a fix ladder: a fix script by name (or the check's own start/stop)."""

    run: str = Field(pattern=FIX_NAME_PATTERN, max_length=100)
    args: list[str] = []
    settle: DurationOrZero = 5.0  # wait this long after the fix before probing again
    timeout: Duration = 60.0    # the fix is killed (its whole process group) after this


class CheckBase(StrictModel):
    """The keys every check has, whatever its probe."""

    METRICS: ClassVar[dict[str, str]] = {}

    name: str = Field(pattern=NAME_PATTERN, max_length=100)
    probe: str
    description: str = ""
    every: Duration = 60.0
    timeout: Duration = 10.0
    fail_after: int = Field(default=3, ge=1, le=100)
    retry_every: Duration = 2.0    # a first failure is confirmed at this pace, not every's
    recover_after: int = Field(default=2, ge=1, le=100)
    priority: PriorityField = Priority.P3
    warning_priority: OptionalPriority = None
    depends_on: list[str] = []
    warn: dict[str, Threshold] = {}
    crit: dict[str, Threshold] = {}
    flap_window: int = Field(default=20, ge=4, le=200)
    flap_threshold: float = Field(default=0.5, gt=0, le=1)
    flap_quiet: Duration = 300.0   # steady this long ends a flapping spell
    heal: list[HealStep] = []
    heal_budget: int = Field(default=3, ge=0, le=100)   # ladder runs allowed per heal_window
    heal_window: Duration = 3600.0
    start: list[str] = []       # Monit-style: argv that starts a service no manager runs
    stop: list[str] = []

    def target(self) -> str:
        """What the check looks at, for messages that have no other words ("" if none):
        the http probe's URL and Host header, a port's address."""
        return ""

    def priority_for(self, status: Status) -> Priority:
        """The priority of a failure with ``status``: ``warning_priority`` while only
        WARNING, if the check sets one."""
        if status is Status.WARNING and self.warning_priority is not None:
            return self.warning_priority
        return self.priority

    def metric_names(self) -> set[str]:
        """The metrics thresholds may name (a probe whose metrics the admin names widens it)."""
        return set(self.METRICS)

    def expectations(self) -> list[Expectation]:
        """Facts the probe reports that must hold; the evaluator judges them."""
        return []

    def default_thresholds(self) -> tuple[dict[str, Range], dict[str, Range]]:
        """Warning and critical ranges used for metrics the check sets no threshold for."""
        return {}, {}


@dataclass(frozen=True, slots=True)
class Expectation:
    """A fact reading must take one of ``allowed``; otherwise ``status`` with ``problem``."""

    reading: str
    allowed: frozenset[Value]
    problem: str
    status: Status = Status.CRITICAL
    unless: str = ""        # not judged while the fact of this name is true


class BlockingCalls:
    """Runs blocking calls in daemon threads, at most ``max_threads`` at once, remembering
    the ones that hang.

    ``os.statvfs`` on a dead NFS mount never returns and cannot be cancelled: while an
    earlier call for the same key is still running, later calls raise ``Stuck`` at once
    instead of tying up another thread, or, with ``join``, wait for that call's result
    (two checks of one mount, started together, share one statvfs; the caller's own
    timeout bounds the wait). The threads are daemon threads, so a call that never
    returns cannot keep the process from exiting (a thread pool's workers would: Python
    joins them at exit).
    """

    def __init__(self, max_threads: int = 32) -> None:
        self._free = threading.BoundedSemaphore(max_threads)
        self._pending: dict[str, tuple[asyncio.Future[Any], float]] = {}

    async def call(self, key: str, fn: Callable[..., T], *args: Any, join: bool = False) -> T:
        pending = self._pending.get(key)
        if pending is not None and not pending[0].done():
            if join:
                joined: asyncio.Future[T] = pending[0]
                return await asyncio.shield(joined)
            raise Stuck(key, pending[1])
        if not self._free.acquire(blocking=False):
            raise Stuck(key, time.monotonic())
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        future.add_done_callback(_retrieve)  # an abandoned call's error is not an error
        self._pending[key] = (future, time.monotonic())
        thread = threading.Thread(target=self._work, args=(loop, future, fn, args),
                                  name=f"monitord-{key}"[:60], daemon=True)
        thread.start()
        return await asyncio.shield(future)

    def _work(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any],
              fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            result, error = fn(*args), None
        except BaseException as e:  # handed to the awaiting coroutine, not lost
            result, error = None, e
        finally:
            self._free.release()
        with contextlib.suppress(RuntimeError):  # the loop may be closed by now
            loop.call_soon_threadsafe(_settle, future, result, error)

    def shutdown(self) -> None:
        """Nothing to wait for: hung threads are daemons and die with the process."""
        self._pending.clear()


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


@dataclass
class Shared:
    """Resources all checks share: the blocking-call pool, each probe kind's own shared
    state (the http probe's resolved names and kept connections, TLS contexts), seams."""

    blocking: BlockingCalls = field(default_factory=BlockingCalls)
    statvfs: Callable[[str], os.statvfs_result] = os.statvfs
    _kept: dict[str, Any] = field(default_factory=dict)

    def kept(self, name: str, make: Callable[[], T]) -> T:
        """The shared state called ``name``, made by ``make`` on first use; closed (its
        ``close()``, if it has one) with the rest."""
        value = self._kept.get(name)
        if value is None:
            value = self._kept[name] = make()
        kept: T = value
        return kept

    async def close(self) -> None:
        for value in self._kept.values():
            closing = getattr(value, "close", None)
            if callable(closing):
                result = closing()
                if inspect.isawaitable(result):
                    await result
        self._kept.clear()
        self.blocking.shutdown()


# A probe's own timeouts end at this share of the runner's deadline, so that the probe's
# message ("did not answer within 4.5s"), not the runner's bare "timed out", is read.
OWN_DEADLINE_SHARE = 0.9


@dataclass
class ProbeContext:
    """One check's view of the shared resources, plus memory kept between its runs."""

    shared: Shared
    memory: dict[str, Any] = field(default_factory=dict)
    timeout: float = 10.0  # the runner's deadline; library timeouts must fit inside it
    started: float = field(default_factory=time.monotonic)  # when the runner started it
    rules: Any = None      # the runner's: the evaluator's rules of the check, made once

    def budget(self, share: float = OWN_DEADLINE_SHARE) -> float:
        """Seconds from now until ``share`` of the runner's deadline: the time a library
        call may still take (a small positive number once it has passed)."""
        return max(self.started + self.timeout * share - time.monotonic(), 0.001)


# Re-exported so probe modules import their vocabulary from one place.
__all__ = [
    "NAME_PATTERN",
    "AbsolutePath",
    "CheckBase",
    "Duration",
    "DurationOrZero",
    "Expectation",
    "ProbeContext",
    "Range",
    "Regex",
    "Shared",
    "StrictModel",
    "Stuck",
    "Threshold",
    "ca_file_needs_verify",
    "parse_range",
    "read_secret_file",
]
