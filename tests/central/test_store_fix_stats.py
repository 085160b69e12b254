"""The store's windowed fix statistics and its counts of open incidents, on every backend."""

from __future__ import annotations

import datetime as dt

from monitord.store.protocol import FixRuns, Store
from tests.central.conftest import T0, healed, minutes, problem, step


async def test_fix_runs_are_counted_within_the_window(store: Store) -> None:
    day = dt.timedelta(days=1)
    await store.apply([healed("web", at=T0 - 10 * day)], T0 - 10 * day)
    await store.apply([healed("web", at=T0), healed("db", host="db1", at=T0,
                                                   fixes=("restart-service",))], T0)
    await store.apply([problem("web", steps=(step("restart-service"),), at=minutes(1))],
                      minutes(1))
    recent = await store.fix_stats(T0 - 7 * day)
    assert recent == [
        FixRuns("db1", "db", "restart-service", 1, 1, T0),
        FixRuns("web1", "web", "reload-service", 1, 0, T0),
        FixRuns("web1", "web", "restart-service", 2, 1, minutes(1)),
    ]
    everything = await store.fix_stats(T0 - 30 * day)
    assert [(r.fix, r.runs) for r in everything if r.host == "web1"] == [
        ("reload-service", 2), ("restart-service", 3)]


async def test_a_run_from_an_agent_clock_ahead_counts_at_the_store_time(store: Store) -> None:
    await store.apply([healed("web", at=T0 + dt.timedelta(hours=12))], T0)   # within a day
    [run, _] = await store.fix_stats(T0 - dt.timedelta(days=1))
    assert run.last_at == T0


async def test_the_sweep_forgets_fix_runs_after_ninety_days(store: Store) -> None:
    await store.apply([healed("web", at=T0)], T0)
    await store.sweep(T0 + dt.timedelta(days=89))
    assert len(await store.fix_stats(T0 - dt.timedelta(days=1))) == 2
    await store.sweep(T0 + dt.timedelta(days=91))
    assert await store.fix_stats(T0 - dt.timedelta(days=1)) == []


async def test_open_incidents_are_counted_by_priority_and_status(store: Store) -> None:
    await store.apply([problem("web", "P1"), problem("db", "P2"), problem("mail", "P2")], T0)
    [web, *_] = await store.incidents(priority=["P1"])
    await store.acknowledge(web.id, "alice", "", minutes(1))
    [mail] = [i for i in await store.incidents() if i.check == "mail"]
    await store.resolve(mail.id, "alice", "", minutes(2))
    assert await store.open_counts() == {("P1", "acknowledged"): 1, ("P2", "open"): 1}
