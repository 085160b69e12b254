"""The SLA report: who answered how fast, what breached, and the command that prints it."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import operator
import subprocess
import sys
from pathlib import Path

from monitord.central.sla import Row, report
from monitord.store.policy import Policy
from monitord.store.protocol import Incident
from monitord.store.sqlite import SQLiteStore
from tests.central.conftest import problem, recovery

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 11, 25, 18, 0, tzinfo=dt.UTC)


def incident(opened_min: float, target_min: float, **changes: object) -> Incident:
    opened = NOW + dt.timedelta(minutes=opened_min)
    start = changes.get("reopened_at", opened)
    assert isinstance(start, dt.datetime)
    base = Incident(id=1, key="web1/shop", host="web1", check="shop", priority="P1",
                    status="open", title="t", summary="s", opened_at=opened,
                    due_at=start + dt.timedelta(minutes=target_min), last_seen_at=opened,
                    count=1)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def at(minute: float) -> dt.datetime:
    return NOW + dt.timedelta(minutes=minute)


def test_answers_breaches_and_what_needed_nobody() -> None:
    rows = report([
        incident(-60, 15, status="acknowledged", acknowledged_at=at(-56)),       # 4 min
        incident(-60, 15, status="resolved", acknowledged_at=at(-40),           # 20 min,
                 resolved_at=at(-30), resolved_by="alice"),                      # breached
        incident(-60, 15, status="resolved", resolved_at=at(-50), resolved_by="bob"),  # 10
        incident(-60, 15, status="resolved", resolved_at=at(-55),               # recovered:
                 resolved_by="monitord"),                                        # nobody
        incident(-10, 15),                                                       # not yet due
        incident(-30, 15),                                                       # breached
        incident(-60, 120, priority="P2", status="resolved", resolved_at=at(-10),
                 resolved_by="monitord"),                  # recovered in time: fine
    ], NOW)
    assert rows == [Row("P1", 6, 3, 600.0, 1200.0, 2), Row("P2", 1, 0, None, None, 0),
                    Row("P3", 0, 0, None, None, 0)]


def test_a_recovery_after_the_due_time_is_a_breach() -> None:
    late = incident(-200, 120, priority="P2", status="resolved", resolved_at=at(-10),
                    resolved_by="monitord")
    [_, p2, _] = report([late], NOW)
    assert (p2.opened, p2.answered, p2.breached) == (1, 0, 1)


def test_sla_report_command_reads_the_store(tmp_path: Path) -> None:
    store_path = tmp_path / "central.db"

    async def fill() -> None:
        store = await SQLiteStore.open(store_path, Policy())
        try:
            now = dt.datetime.now(dt.UTC)
            start = now - dt.timedelta(hours=3)
            await store.apply([problem("shop", "P1"), problem("blog", "P2")], start)
            shop = next(i for i in await store.incidents() if i.priority == "P1")
            await store.acknowledge(shop.id, "alice", "", start + dt.timedelta(minutes=6))
            await store.apply([recovery("blog")], start + dt.timedelta(minutes=30))
            await store.apply([problem("db", "P1")], now - dt.timedelta(days=9))  # too old
        finally:
            await store.close()

    asyncio.run(fill())
    config = tmp_path / "central.toml"
    config.write_text(f'[central]\nstore_url = "sqlite://{store_path}"\n')
    done = subprocess.run([sys.executable, "-m", "monitord", "central", "sla-report",
                           "--since", "7d", "-c", str(config)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    table = {line.split()[0]: line.split() for line in done.stdout.splitlines()
             if line[:2] in ("P1", "P2", "P3")}
    assert table["P1"] == ["P1", "15m", "1", "1", "6m", "6m", "0"]
    assert table["P2"] == ["P2", "2h", "1", "0", "-", "-", "0"]
    assert table["P3"] == ["P3", "2d", "0", "0", "-", "-", "0"]


def test_sla_report_refuses_a_bad_since(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "monitord", "central", "sla-report",
                           "--since", "a week"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1].endswith(
        'argument --since: expected a duration like "24h" or "7d", got "a week"')


def test_a_reopened_incident_is_answered_from_its_reopening() -> None:
    reopened = incident(-60, 15, status="acknowledged", reopened_at=at(-10),
                        acknowledged_at=at(-8))
    [p1, _, _] = report([reopened], NOW)
    assert (p1.answered, p1.median_seconds, p1.breached) == (1, 120.0, 0)


def test_sla_report_counts_both_periods_of_a_reopened_incident(tmp_path: Path) -> None:
    """A P2 breached, resolved, then back and answered in time: two openings, one breach
    (a reopening used to wipe the first acknowledgement and with it the breach)."""
    store_path = tmp_path / "central.db"

    async def fill() -> None:
        store = await SQLiteStore.open(store_path, Policy())
        try:
            start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=6)
            later = functools.partial(operator.add, start)
            await store.apply([problem("disk", "P2")], start)
            [disk] = await store.incidents()
            await store.acknowledge(disk.id, "alice", "", later(dt.timedelta(hours=3)))
            await store.apply([recovery("disk")], later(dt.timedelta(hours=4)))
            await store.apply([problem("disk", "P2")], later(dt.timedelta(hours=4.5)))
            await store.acknowledge(disk.id, "bob", "", later(dt.timedelta(hours=4.6)))
        finally:
            await store.close()

    asyncio.run(fill())
    config = tmp_path / "central.toml"
    config.write_text(f'[central]\nstore_url = "sqlite://{store_path}"\n')
    done = subprocess.run([sys.executable, "-m", "monitord", "central", "sla-report",
                           "--since", "1d", "-c", str(config)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    table = {line.split()[0]: line.split() for line in done.stdout.splitlines()
             if line[:2] in ("P1", "P2", "P3")}
    assert table["P2"] == ["P2", "2h", "2", "2", "1h33m", "3h", "1"]
