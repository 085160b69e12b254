"""The scheduler: spread first runs, a fixed grid without drift, a cap, hung checks alone."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from pathlib import Path

from monitord.agent.scheduler import Scheduler, start_offsets
from monitord.agent.scheduler import next_slot as _next_slot
from monitord.probes.base import CheckBase
from tests.conftest import make_check


def checks(count: int, every: str = "100ms") -> list[CheckBase]:
    return [make_check("load", name=f"c{i}", every=every, timeout=every) for i in range(count)]


def test_first_runs_are_spread_at_the_start_rate() -> None:
    offsets = start_offsets(checks(1000, every="5m"), start_rate=50)
    ordered = sorted(offsets.values())
    assert ordered[0] == 0 and ordered[-1] == 999 / 50
    assert len(set(ordered)) == 1000  # no two checks start in the same instant


def test_offsets_are_stable_and_within_the_interval() -> None:
    many = checks(200, every="1s")
    assert start_offsets(many, 50) == start_offsets(list(reversed(many)), 50)
    assert all(0 <= o < 1 for o in start_offsets(many, 50).values())


def test_next_slot_keeps_the_grid_and_skips_missed_slots() -> None:
    assert _next_slot(previous=0, every=10, now=5) == 10
    assert _next_slot(previous=0, every=10, now=10) == 20
    assert _next_slot(previous=0, every=10, now=25.5) == 30
    assert _next_slot(previous=100, every=0.5, now=100.1) == 100.5


async def test_hung_check_delays_nothing_but_itself() -> None:
    hung_started = asyncio.Event()
    runs: Counter[str] = Counter()
    enough = asyncio.Event()

    async def run(check: CheckBase) -> None:
        runs[check.name] += 1
        if check.name == "c0":
            hung_started.set()
            await asyncio.Event().wait()  # never returns
        if min(runs[f"c{i}"] for i in range(1, 5)) >= 10:
            enough.set()

    scheduler = Scheduler(checks(5, every="20ms"), run, max_concurrent=10, start_rate=1000)
    task = asyncio.create_task(scheduler.run())
    try:
        async with asyncio.timeout(10):
            await hung_started.wait()
            await enough.wait()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert runs["c0"] == 1


async def test_concurrency_cap_holds_and_queued_checks_run_later() -> None:
    release = asyncio.Event()
    two_running = asyncio.Event()
    all_ran = asyncio.Event()
    seen: set[str] = set()
    peak = 0

    async def run(check: CheckBase) -> None:
        nonlocal peak
        peak = max(peak, scheduler.running)
        seen.add(check.name)
        if scheduler.running == 2:
            two_running.set()
        if len(seen) == 6:
            all_ran.set()
        await release.wait()

    scheduler = Scheduler(checks(6, every="1s"), run, max_concurrent=2, start_rate=1000)
    task = asyncio.create_task(scheduler.run())
    try:
        async with asyncio.timeout(10):
            await two_running.wait()
            assert len(seen) == 2
            release.set()
            await all_ran.wait()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert peak == 2


async def test_a_failing_run_does_not_stop_the_check_or_the_others() -> None:
    runs: Counter[str] = Counter()
    done = asyncio.Event()

    async def run(check: CheckBase) -> None:
        runs[check.name] += 1
        if runs["c0"] >= 3 and runs["c1"] >= 3:
            done.set()
        if check.name == "c0":
            raise RuntimeError("boom")

    scheduler = Scheduler(checks(2, every="10ms"), run, start_rate=1000)
    task = asyncio.create_task(scheduler.run())
    try:
        async with asyncio.timeout(10):
            await done.wait()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_resumed_checks_keep_their_next_run_time() -> None:
    ran: list[tuple[str, float]] = []
    done = asyncio.Event()
    clock = asyncio.get_running_loop().time

    async def run(check: CheckBase) -> None:
        ran.append((check.name, clock()))
        done.set()

    later = clock() + 0.3
    scheduler = Scheduler(checks(2, every="1h"), run, start_rate=1000, clock=clock,
                          resume={"c0": later, "c1": later + 3600})
    task = asyncio.create_task(scheduler.run())
    try:
        async with asyncio.timeout(10):
            await done.wait()
    finally:
        scheduler.stop()
        await task
    assert [name for name, _ in ran] == ["c0"]  # c1's resumed slot is an hour away
    assert ran[0][1] >= later
    assert scheduler.next_at["c1"] == later + 3600


def test_reload_keeps_the_schedule_of_unchanged_checks_only(tmp_path: Path) -> None:
    from monitord.agent.service import unchanged_schedule
    from monitord.config import load_config

    def config(every_b: str) -> Path:
        path = tmp_path / f"m{every_b}.toml"
        path.write_text(f'[[check]]\nname = "a"\nprobe = "load"\n\n'
                        f'[[check]]\nname = "b"\nprobe = "load"\nevery = "{every_b}"\n')
        return path

    old, new = load_config(config("1m")), load_config(config("2m"))
    assert unchanged_schedule(old, new, {"a": 5.0, "b": 7.0}) == {"a": 5.0}


async def test_checks_due_in_one_slice_start_together_but_not_too_early() -> None:
    clock = asyncio.get_running_loop().time
    ran: dict[str, float] = {}
    done = asyncio.Event()

    async def run(check: CheckBase) -> None:
        ran.setdefault(check.name, clock())
        if len(ran) == 3:
            done.set()

    now = clock()
    due = {"a": now + 0.1, "b": now + 0.3, "short": now + 0.3}
    together = [make_check("load", name=n, every="10s", timeout="1s") for n in ("a", "b")]
    short = make_check("load", name="short", every="1s", timeout="1s")
    scheduler = Scheduler([*together, short], run, start_rate=1000, clock=clock, resume=due)
    task = asyncio.create_task(scheduler.run())
    try:
        async with asyncio.timeout(10):
            await done.wait()
    finally:
        scheduler.stop()
        await task
    assert ran["a"] >= due["a"] and ran["b"] - ran["a"] < 0.05   # b started with a
    assert ran["short"] >= due["short"] - 0.1   # not earlier than a tenth of its 1 s


def test_checks_of_one_interval_are_spread_evenly_over_it() -> None:
    from monitord.agent.scheduler import grid_phases

    many = checks(4, every="10s") + [make_check("load", name=f"slow{i}", every="1m")
                                     for i in range(2)]
    phases = grid_phases(many)
    assert sorted(phases[f"c{i}"] for i in range(4)) == [0.0, 2.5, 5.0, 7.5]
    assert sorted(phases[f"slow{i}"] for i in range(2)) == [0.0, 30.0]
    assert grid_phases(list(reversed(many))) == phases      # stable, whatever the order


async def test_after_the_first_burst_each_check_is_planned_at_its_place() -> None:
    ran: list[str] = []
    clock = asyncio.get_running_loop().time
    burst = asyncio.Event()

    async def run(check: CheckBase) -> None:
        ran.append(check.name)
        if len(ran) == 4:   # set once this run's next one is planned, in this same step
            asyncio.get_running_loop().call_soon(burst.set)

    scheduler = Scheduler(checks(4, every="10s"), run, start_rate=1000, clock=clock)
    task = asyncio.create_task(scheduler.run())
    try:
        async with asyncio.timeout(10):
            await burst.wait()
    finally:
        scheduler.stop()
        await task
    planned = sorted(at % 10 for at in scheduler.next_at.values())
    spacing = [round((b - a) % 10, 3) for a, b in itertools.pairwise(planned)]
    assert sorted(ran) == [f"c{i}" for i in range(4)]      # all ran once, at once
    assert spacing == [2.5, 2.5, 2.5]                      # then a quarter interval apart
