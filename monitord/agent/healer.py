"""The healer: walks a hard-failing check's fix ladder and says how it ended.

The check's state decides when a ladder runs; the healer only runs it. Each rung runs
one fix, waits its ``settle`` time and probes again; the first rung after which the check
is OK ends the ladder with a ``healed`` outcome. A failed ladder, a check over its budget
("N ladder runs per window", counted across restarts) or a dry run ends in a
``problem``. The outcome, with a transcript of every step, goes back to the daemon,
which escalates it; the healer never escalates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from monitord.agent.statestore import StateStore
from monitord.commands import CommandResult, run_command
from monitord.config import HealerConfig
from monitord.durations import format_duration
from monitord.fixes import find_fix, fix_dirs, run_fix
from monitord.model import Priority, Result, Status
from monitord.probes.base import CheckBase, HealStep

log = logging.getLogger(__name__)

T = TypeVar("T")
Probe = Callable[[CheckBase], Awaitable[Result]]
STATE_IO_TIMEOUT = 10.0


@dataclass(frozen=True)
class Step:
    """One rung as it happened: what ran, how it ended, what the re-probe said."""

    fix: str
    argv: tuple[str, ...]
    exit_code: int | None
    duration_seconds: float
    output: str
    ended: str                     # "exit 0 in 1.2s", "timed out after 30s", "dry run"
    reprobe_status: Status | None = None
    reprobe_summary: str = ""

    def line(self) -> str:
        after = (f"; re-probe: {self.reprobe_status.name}: {self.reprobe_summary}"
                 if self.reprobe_status is not None else "")
        return f"{self.fix} ({' '.join(self.argv)}): {self.ended}{after}"


@dataclass(frozen=True)
class Outcome:
    """What the junior tier did about a hard failure, handed to escalation."""

    kind: Literal["healed", "problem", "cleared"]   # cleared: OK before a fix of its ran
    check: str
    priority: Priority
    reason: str
    result: Result                 # the failure that started it, or the last re-probe
    steps: tuple[Step, ...] = ()
    recurring: bool = False
    suppressed_by: str | None = None
    failure_summary: str = ""      # what the failure looked like before any fix
    flapping: bool = False         # the problem is that the check keeps changing state
    at: float = field(default_factory=time.time)


@dataclass
class Healer:
    config: HealerConfig
    store: StateStore
    probe: Probe
    host: str
    state_dir: str = "/var/lib/monitord"
    _busy: set[str] = field(default_factory=set)
    _fix_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))
    _services: dict[str, asyncio.Lock] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._fix_slots = asyncio.Semaphore(self.config.max_concurrent_fixes)

    def busy(self, name: str) -> bool:
        return name in self._busy

    async def run(self, check: CheckBase, failure: Result) -> Outcome:
        """Walk ``check``'s ladder for ``failure`` (one ladder per check at a time)."""
        if check.name in self._busy:
            raise RuntimeError(f"a ladder for {check.name} is already running")
        self._busy.add(check.name)
        try:
            async with contextlib.AsyncExitStack() as held:
                if await self._hold_services(check, held):
                    # Another ladder acted on the same service meanwhile: look again first.
                    again = await self.probe(check)
                    if again.status is Status.OK:
                        return Outcome("cleared", check.name, check.priority, "OK again after "
                                       "another ladder's fix", again)
                    failure = again
                return await self._ladder(check, failure)
        finally:
            self._busy.discard(check.name)

    async def _hold_services(self, check: CheckBase, held: contextlib.AsyncExitStack) -> bool:
        """Take the lock of every service ``check``'s ladder acts on, in one order (no
        deadlock); whether any had to be waited for."""
        waited = False
        for key in sorted({service_of(check, rung) for rung in check.heal}):
            lock = self._services.setdefault(key, asyncio.Lock())
            waited = waited or lock.locked()
            await held.enter_async_context(lock)
        return waited

    async def _ladder(self, check: CheckBase, failure: Result) -> Outcome:
        priority = check.priority_for(failure.status)
        now = time.time()
        runs = await self._io(self.store.heal_runs_since, check.name, now - check.heal_window)
        if len(runs) >= check.heal_budget:
            return self._over_budget(check, failure, priority, runs)
        if self.config.dry_run:
            return await self._dry_run(check, failure, priority)
        await self._io(self.store.record_heal_run, check.name, now, now - 7 * 86400)
        return await self._climb(check, failure, priority, len(runs) + 1)

    def _over_budget(self, check: CheckBase, failure: Result, priority: Priority,
                     runs: list[float]) -> Outcome:
        window = format_duration(check.heal_window)
        again = format_duration(max(runs[0] + check.heal_window - time.time(), 0)) if runs else ""
        reason = (f"recurring: its fixes already ran {len(runs)} times in the last {window} "
                  f"(budget {check.heal_budget})" + (f"; fixes allowed again in {again}"
                                                     if again else ""))
        return Outcome("problem", check.name, priority, reason, failure, recurring=True)

    async def _dry_run(self, check: CheckBase, failure: Result, priority: Priority) -> Outcome:
        steps = []
        for index, rung in enumerate(check.heal, start=1):
            argv = self._argv(check, rung)
            log.info("%s: dry run: fix %d/%d would run: %s (then wait %s and probe again)",
                     check.name, index, len(check.heal), " ".join(argv),
                     format_duration(rung.settle))
            steps.append(Step(rung.run, tuple(argv), None, 0.0, "", "dry run: not run"))
        return Outcome("problem", check.name, priority, "dry run: no fix was run", failure,
                       tuple(steps))

    async def _climb(self, check: CheckBase, failure: Result, priority: Priority,
                     run_number: int) -> Outcome:
        steps: list[Step] = []
        last = failure
        count = len(check.heal)
        log.info("%s: running its fix ladder (%d fix%s; run %d of %d allowed per %s)",
                 check.name, count, "" if count == 1 else "es", run_number, check.heal_budget,
                 format_duration(check.heal_window))
        for index, rung in enumerate(check.heal, start=1):
            command = await self._run(check, rung, last)
            step = _step(rung, command)
            if command.ok:
                await asyncio.sleep(rung.settle)
                last = await self.probe(check)
                step = _step(rung, command, last)
            log.info("%s: fix %d/%d: %s", check.name, index, len(check.heal), step.line())
            steps.append(step)
            if last.status is Status.OK and command.ok:
                return Outcome("healed", check.name, priority, f"fixed by {rung.run}", last,
                               tuple(steps), failure_summary=failure.summary)
        return Outcome("problem", check.name, check.priority_for(last.status),
                       f"not fixed: {len(steps)} fix{'es' if len(steps) != 1 else ''} tried",
                       last, tuple(steps))

    async def _run(self, check: CheckBase, rung: HealStep, last: Result) -> CommandResult:
        env = {
            "MONITORD_CHECK": check.name,
            "MONITORD_HOST": self.host,
            "MONITORD_STATUS": last.status.name,
            "MONITORD_SUMMARY": last.summary[:1000],
            "MONITORD_STATE_DIR": str(Path(self.state_dir) / "fixes"),
        }
        limit = self.config.max_output_bytes
        async with self._fix_slots:
            if rung.run == "restart":
                stopped = await run_command(check.stop, timeout=rung.timeout, env=env,
                                            max_output=limit)
                started = await run_command(check.start, timeout=rung.timeout, env=env,
                                            max_output=limit)
                return _joined(stopped, started)
            if rung.run in ("start", "stop"):
                argv = check.start if rung.run == "start" else check.stop
                return await run_command(argv, timeout=rung.timeout, env=env, max_output=limit)
            path = find_fix(rung.run, fix_dirs(self.config.remediations_dir))
            if path is None:
                return CommandResult((rung.run, *rung.args), None, 0.0, "",
                                     error=f"no fix named {rung.run} any more")
            return await run_fix(path, rung.args, timeout=rung.timeout, env=env,
                                 max_output=limit)

    def _argv(self, check: CheckBase, rung: HealStep) -> list[str]:
        if rung.run in ("start", "stop"):
            return list(check.start if rung.run == "start" else check.stop)
        if rung.run == "restart":
            return [*check.stop, "&&", *check.start]
        path = find_fix(rung.run, fix_dirs(self.config.remediations_dir))
        return [str(path) if path else rung.run, *rung.args]

    async def _io(self, fn: Callable[..., T], *args: object) -> T:
        async with asyncio.timeout(STATE_IO_TIMEOUT):
            return await asyncio.to_thread(fn, *args)


def service_of(check: CheckBase, rung: HealStep) -> str:
    """What a rung acts on: the first argument of a fix (the unit, service or path:
    ``restart-service nginx`` and ``reload-service nginx`` both act on nginx), or the
    command of a check's own start/stop. Two ladders that act on one never run at once."""
    if rung.run in ("start", "stop", "restart"):
        return "command:" + " ".join(check.start or check.stop)
    return rung.args[0] if rung.args else f"fix:{rung.run}"


def _step(rung: HealStep, command: CommandResult, reprobe: Result | None = None) -> Step:
    return Step(
        rung.run, command.argv, command.exit_code, round(command.duration_seconds, 3),
        command.output + ("\n[output truncated]" if command.truncated else ""),
        command.describe(),
        reprobe.status if reprobe is not None else None,
        reprobe.summary if reprobe is not None else "",
    )


def _joined(stopped: CommandResult, started: CommandResult) -> CommandResult:
    output = f"--- stop: {stopped.describe()}\n{stopped.output}--- start:\n{started.output}"
    return CommandResult(
        (*stopped.argv, "&&", *started.argv), started.exit_code,
        stopped.duration_seconds + started.duration_seconds, output,
        stopped.truncated or started.truncated, started.timed_out, started.error,
    )
