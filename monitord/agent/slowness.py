"""Server slow (P2): one incident when a large share of the sites is much slower than its
own usual time at once, or the machine's load, I/O wait or memory is past its bound;
never one incident per slow site.

Each site keeps a baseline: the 95th percentile of its response times over the last
``[sites.slow] baseline`` (a ring of at most ``MAX_SAMPLES`` floats, 4 bytes each). A site
is much slower when its latest time is at least ``factor`` times its baseline and
``min_seconds`` above it. A much slower time stays out of the ring (a young ring's 95th
percentile is its slowest time: two slow probes would make slow the usual) until the site
has been slow for half the ring; then it is the site's new usual speed.

The judgment runs every ``judge_every``; two bad ones in a row file the problem (naming
the slowest sites, the machine's readings and the busiest processes by CPU and by I/O at
that moment: what a technician pastes into the ticket), two good ones resolve it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from array import array
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from monitord.agent.healer import Outcome
from monitord.discover.rules import SlowRules
from monitord.model import Result, Status
from monitord.probes.base import CheckBase

log = logging.getLogger("monitord.sites")
NAME = "server-slow"
MAX_SAMPLES = 120
MIN_SAMPLES = 3
CONFIRM = 2
SHOWN_SITES = 10
SHOWN_PROCESSES = 5
PROCESS_SAMPLE_SECONDS = 1.0
IO_TIMEOUT = 10.0

Escalate = Callable[[Outcome], Awaitable[None]]
Recover = Callable[[str, Result], Awaitable[None]]


class Baseline:
    """A site's recent response times: a bounded ring, and the latest apart."""

    __slots__ = ("held", "latest", "next", "ring", "size")

    def __init__(self, size: int) -> None:
        self.ring = array("f")
        self.size = size
        self.next = 0
        self.latest = math.nan
        self.held = 0           # much slower times in a row kept out of the ring

    def add(self, seconds: float, keep: bool = True, slow: bool = False) -> None:
        """A new latest time; the one before joins the ring if ``keep`` (not while the
        server is known slow: its usual time must not drift to the slow one) and, when it
        was ``slow``, only once the site has been slow for half the ring."""
        self.held = self.held + 1 if slow else 0
        if slow and self.held <= self.size // 2:
            keep = False
        if keep and not math.isnan(self.latest):
            if len(self.ring) < self.size:
                self.ring.append(self.latest)
            else:
                self.ring[self.next] = self.latest
                self.next = (self.next + 1) % self.size
        self.latest = seconds

    def usual(self) -> float | None:
        """The 95th percentile of the times before the latest; None with too few."""
        if len(self.ring) < MIN_SAMPLES:
            return None
        ordered = sorted(self.ring)
        return float(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))])


@dataclass(frozen=True)
class Slow:
    site: str
    seconds: float
    usual: float


@dataclass(frozen=True)
class Machine:
    load_per_cpu: float
    iowait_ratio: float
    available_ratio: float


class Slowness:
    def __init__(self, sites: dict[str, float], rules: SlowRules, host: str,
                 escalate: Escalate, recover: Recover) -> None:
        self.rules = rules
        self.host = host
        self.baselines = {name: Baseline(_samples(rules.baseline, every))
                          for name, every in sites.items()}
        self._escalate = escalate
        self._recover = recover
        self.open = False
        self._streak = 0
        self._ready = False

    def observe(self, check: CheckBase, result: Result) -> None:
        baseline = self.baselines.get(check.name)
        if baseline is None or result.status is not Status.OK:
            return
        seconds = next((r.value for r in result.readings if r.name == "response_seconds"),
                       None)
        if isinstance(seconds, float | int):
            baseline.add(float(seconds), keep=not self.open, slow=self._much_slower(baseline))

    def _much_slower(self, baseline: Baseline) -> bool:
        """Whether the site's latest time is much slower than its usual one."""
        usual = baseline.usual()
        latest = baseline.latest
        return (usual is not None and not math.isnan(latest)
                and latest >= self.rules.factor * usual
                and latest - usual >= self.rules.min_seconds)

    def slow_sites(self) -> tuple[list[Slow], int]:
        """The sites much slower than usual now, slowest first, and how many have a
        baseline at all."""
        slow, judged = [], 0
        for name, baseline in self.baselines.items():
            usual = baseline.usual()
            if usual is None or math.isnan(baseline.latest):
                continue
            judged += 1
            if self._much_slower(baseline):
                slow.append(Slow(name, baseline.latest, usual))
        return sorted(slow, key=lambda s: s.seconds / max(s.usual, 1e-6), reverse=True), judged

    async def run(self) -> None:
        """Judge every ``judge_every`` until cancelled."""
        await asyncio.to_thread(_machine)    # primes psutil's CPU times
        while True:
            await asyncio.sleep(self.rules.judge_every)
            try:
                await self.judge()
            except (OSError, TimeoutError) as e:
                log.error("%s: cannot judge the server's speed: %s", NAME, e)

    async def judge(self) -> None:
        slow, judged = self.slow_sites()
        if not self._ready and judged == len(self.baselines):
            self._ready = True
            log.info("%s: the usual times of %d sites are known", NAME, judged)
        async with asyncio.timeout(IO_TIMEOUT):
            machine = await asyncio.to_thread(_machine)
        why = self._why(slow, judged, machine)
        self._streak = self._streak + 1 if bool(why) != self.open else 0
        if self._streak < CONFIRM:
            return
        self._streak = 0
        if why and not self.open:
            await self._file(why, slow, judged, machine)
        elif not why and self.open:
            self.open = False
            log.info("%s: over: the sites answer at their usual speed", NAME)
            await self._recover(NAME, Result(Status.OK, "the sites answer at their usual "
                                             "speed and the machine is within its bounds"))

    def _why(self, slow: list[Slow], judged: int, machine: Machine) -> str:
        rules = self.rules
        reasons = []
        if judged and len(slow) >= rules.min_sites and len(slow) / judged >= rules.share:
            reasons.append(f"{len(slow)} of {judged} sites at {rules.factor:g}x or more of "
                           "their usual time")
        if machine.load_per_cpu > rules.load_per_cpu:
            reasons.append(f"load {machine.load_per_cpu:.1f} per CPU")
        if machine.iowait_ratio > rules.iowait_ratio:
            reasons.append(f"I/O wait {machine.iowait_ratio:.0%}")
        if machine.available_ratio < rules.memory_available_ratio:
            reasons.append(f"memory available {machine.available_ratio:.1%}")
        return ", ".join(reasons)

    async def _file(self, why: str, slow: list[Slow], judged: int, machine: Machine) -> None:
        async with asyncio.timeout(IO_TIMEOUT + PROCESS_SAMPLE_SECONDS):
            busiest = await asyncio.to_thread(top_processes, PROCESS_SAMPLE_SECONDS)
        summary = f"server slow on {self.host}: {why}"
        body = report(slow, judged, machine, busiest)
        log.warning("%s: %s", NAME, summary)
        self.open = True
        await self._escalate(Outcome("problem", NAME, self.rules.priority, body[:2000],
                                     Result(Status.WARNING, summary[:2000])))


def report(slow: list[Slow], judged: int, machine: Machine, busiest: str) -> str:
    lines = [f"Slowest sites (now vs usual, of {judged} judged):"]
    lines += [f"  {s.site}: {s.seconds:.2f} s vs {s.usual:.3f} s "
              f"({s.seconds / max(s.usual, 1e-6):.0f}x)" for s in slow[:SHOWN_SITES]]
    if len(slow) > SHOWN_SITES:
        lines.append(f"  ... and {len(slow) - SHOWN_SITES} more")
    lines.append(f"Machine: load {machine.load_per_cpu:.2f} per CPU, I/O wait "
                 f"{machine.iowait_ratio:.0%}, memory available {machine.available_ratio:.0%}")
    return "\n".join([*lines, busiest])


def _samples(window: float, every: float) -> int:
    return max(MIN_SAMPLES + 1, min(MAX_SAMPLES, math.ceil(window / max(every, 1.0))))


def _machine() -> Machine:
    import psutil

    times = psutil.cpu_times_percent(interval=None)
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    available = psutil.virtual_memory().available / psutil.virtual_memory().total
    return Machine(load, getattr(times, "iowait", 0.0) / 100, available)


def top_processes(seconds: float) -> str:
    """The busiest processes over ``seconds``, by CPU and by bytes read and written."""
    import psutil

    def sample() -> dict[int, tuple[str, float, int]]:
        found = {}
        for proc in psutil.process_iter(["name", "cpu_times", "io_counters"]):
            info = proc.info
            cpu = info["cpu_times"]
            io = info["io_counters"]
            found[proc.pid] = (info["name"] or "?", (cpu.user + cpu.system) if cpu else 0.0,
                               (io.read_bytes + io.write_bytes) if io else 0)
        return found

    before = sample()
    time.sleep(seconds)
    after = sample()
    deltas = [(pid, name, cpu - before[pid][1], io - before[pid][2])
              for pid, (name, cpu, io) in after.items() if pid in before]
    by_cpu = sorted(deltas, key=lambda d: d[2], reverse=True)[:SHOWN_PROCESSES]
    by_io = sorted(deltas, key=lambda d: d[3], reverse=True)[:SHOWN_PROCESSES]
    lines = ["Top processes by CPU:"]
    lines += [f"  {pid} {name}: {cpu / seconds:.0%} CPU" for pid, name, cpu, _ in by_cpu]
    lines.append("Top processes by I/O:")
    lines += [f"  {pid} {name}: {io / seconds / 2**20:.1f} MiB/s" for pid, name, _, io in by_io]
    return "\n".join(lines)
