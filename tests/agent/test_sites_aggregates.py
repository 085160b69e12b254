"""The judgments over many sites, without a server: many sites down with no parent are
gathered into one problem; a share of sites much slower than usual is one P2."""

from __future__ import annotations

import asyncio

from monitord.agent.crowd import Crowd
from monitord.agent.healer import Outcome
from monitord.agent.slowness import Baseline, Slowness
from monitord.discover.rules import DownRules, SlowRules
from monitord.model import Reading, Result, Status
from tests.conftest import make_check

SITES = [f"site{i}.example" for i in range(20)]


class Desk:
    def __init__(self) -> None:
        self.problems: list[Outcome] = []
        self.recoveries: list[str] = []

    async def escalate(self, outcome: Outcome) -> None:
        self.problems.append(outcome)

    async def recover(self, name: str, result: Result) -> None:
        self.recoveries.append(name)


def check(name: str) -> object:
    return make_check("http", name=name, url="http://127.0.0.1/")


async def test_a_site_down_alone_waits_for_others_then_goes_its_own_way() -> None:
    now = [1000.0]
    desk = Desk()
    crowd = Crowd(set(SITES), DownRules(gather="10s"), "web1", desk.escalate, desk.recover,
                  clock=lambda: now[0])
    assert crowd.waited_on(SITES[0], 1000.0) == ("sites-down", False)
    now[0] = 1011.0
    assert crowd.waited_on(SITES[0], 1000.0) == (None, False)
    assert desk.problems == []


async def test_many_sites_down_are_one_problem_and_join_it_then_it_resolves() -> None:
    desk = Desk()
    crowd = Crowd(set(SITES), DownRules(min_sites=5), "web1", desk.escalate, desk.recover)
    for name in SITES[:5]:
        crowd.observe(check(name), Result(Status.CRITICAL, "HTTP 502"))  # type: ignore[arg-type]
        crowd.waited_on(name, 0.0)
    await asyncio.sleep(0)
    [problem] = desk.problems
    assert (problem.check, problem.result.summary) == (
        "sites-down", "5 sites down on web1, with no known cause failing")
    assert "site0.example: HTTP 502" in problem.reason
    assert crowd.waited_on(SITES[0], 0.0) == ("sites-down", True)
    assert crowd.waited_on("not-a-site", 0.0) == (None, False)
    crowd.observe(check(SITES[0]), Result(Status.OK, "fine"))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert desk.recoveries == ["sites-down"]


def test_a_baseline_keeps_its_usual_time_and_a_bounded_ring() -> None:
    baseline = Baseline(size=10)
    for seconds in [0.01] * 30:
        baseline.add(seconds)
    baseline.add(2.0)
    assert len(baseline.ring) == 10
    assert baseline.usual() is not None and abs(baseline.usual() - 0.01) < 1e-6  # type: ignore[operator]
    assert baseline.latest == 2.0


def test_a_slow_time_joins_a_young_baseline_only_once_it_lasts_half_the_ring() -> None:
    rules = SlowRules(min_sites=1)
    slowness = Slowness({"site0.example": 60.0}, rules, "web1", Desk().escalate,
                        Desk().recover)
    baseline = slowness.baselines["site0.example"] = Baseline(size=8)

    def probe(seconds: float) -> None:
        slowness.observe(check("site0.example"), Result(  # type: ignore[arg-type]
            Status.OK, "ok", (Reading("response_seconds", seconds),)))

    for _ in range(4):
        probe(0.01)
    slow_for = 0
    while slowness.slow_sites()[0] or slow_for == 0:
        probe(1.5)
        slow_for += 1
        assert slow_for < 20
    assert slow_for == 6          # half the ring held out, then the new usual speed
    assert baseline.usual() == 1.5


async def test_most_sites_much_slower_than_usual_is_one_p2_then_resolves() -> None:
    desk = Desk()
    rules = SlowRules(min_sites=3, load_per_cpu=1000.0, iowait_ratio=1.0,
                      memory_available_ratio=0.0)
    slowness = Slowness(dict.fromkeys(SITES, 60.0), rules, "web1", desk.escalate,
                        desk.recover)

    def sweep(seconds: float, slow: int = len(SITES)) -> None:
        for index, name in enumerate(SITES):
            took = seconds if index < slow else 0.01
            slowness.observe(check(name), Result(  # type: ignore[arg-type]
                Status.OK, "ok", (Reading("response_seconds", took),)))

    for _ in range(5):
        sweep(0.01)
    sweep(1.5, slow=15)
    slow, judged = slowness.slow_sites()
    assert (len(slow), judged) == (15, 20)
    await slowness.judge()
    assert desk.problems == []             # twice in a row, not once
    await slowness.judge()
    [problem] = desk.problems
    assert (problem.check, problem.priority) == ("server-slow", "P2")
    assert "15 of 20 sites at 3x or more of their usual time" in problem.result.summary
    assert "site0.example: 1.50 s vs 0.010 s" in problem.reason
    assert "Top processes by CPU" in problem.reason
    sweep(0.01)
    await slowness.judge()
    await slowness.judge()
    assert desk.recoveries == ["server-slow"]
