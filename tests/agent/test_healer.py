"""The healer against a real nginx: healed, failed ladders, budgets, dry run, maintenance."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitord.agent.daemon import Agent
from monitord.agent.healer import Outcome
from monitord.agent.statestore import HOST_SCOPE, Maintenance
from monitord.config import load_config
from monitord.model import Status
from tests.nginx import Nginx

OUTCOME_WAIT_SECONDS = 60


def write_config(tmp_path: Path, nginx: Nginx, *, heal: str = '[{ run = "start", '
                 'settle = "100ms" }]', budget: int = 3, dry_run: bool = False,
                 recover_after: int = 1, start: list[str] | None = None) -> Path:
    path = tmp_path / "monitord.toml"
    path.write_text(f"""
[agent]
state_dir = "{tmp_path / 'state'}"

[healer]
grace = "0s"
dry_run = {json.dumps(dry_run)}

[[check]]
name = "site"
probe = "http"
url = "http://127.0.0.1:{nginx.port}/"
every = "1s"
timeout = "1s"
fail_after = 2
recover_after = {recover_after}
priority = "P1"
heal_budget = {budget}
start = {json.dumps(start or nginx.argv)}
heal = {heal}
""")
    return path


class Harness:
    """An Agent on a config, collecting the outcomes it escalates."""

    def __init__(self, config: Path) -> None:
        self.agent = Agent(load_config(config))
        self.outcomes: asyncio.Queue[Outcome] = asyncio.Queue()
        self.agent.outcome_handlers.append(self._collect)

    async def _collect(self, outcome: Outcome) -> None:
        await self.outcomes.put(outcome)

    async def fail_until_hard(self) -> None:
        check = self.agent.config.check("site")
        for _ in range(check.fail_after):
            result = await self.agent.run_once(check)
            assert result is not None and result.status is Status.CRITICAL

    async def fail_until_hard_or_relapse(self) -> None:
        """Run until a failure starts a ladder (a new hard failure, or a relapse)."""
        check = self.agent.config.check("site")
        for _ in range(check.fail_after):
            await self.agent.run_once(check)
            if self.agent._ladders:
                return

    async def outcome(self) -> Outcome:
        """The next outcome escalated, once its ladder has ended."""
        async with asyncio.timeout(OUTCOME_WAIT_SECONDS):
            outcome = await self.outcomes.get()
            await self.agent.wait_for_ladders()
        return outcome


@pytest.fixture
async def harness_factory(tmp_path: Path) -> AsyncIterator[list[Harness]]:
    made: list[Harness] = []
    yield made
    for harness in made:
        await harness.agent.close()


async def started(config: Path, made: list[Harness]) -> Harness:
    harness = Harness(config)
    made.append(harness)
    await harness.agent.start()
    return harness


async def test_killed_nginx_is_started_again_and_reported_healed(
    tmp_path: Path, harness_factory: list[Harness]
) -> None:
    nginx = Nginx(tmp_path / "nginx")
    nginx.start()
    try:
        harness = await started(write_config(tmp_path, nginx), harness_factory)
        nginx.kill()
        await harness.fail_until_hard()
        outcome = await harness.outcome()
        assert outcome.kind == "healed", outcome
        assert outcome.reason == "fixed by start"
        (step,) = outcome.steps
        assert step.argv == tuple(nginx.argv) and step.exit_code == 0
        assert step.reprobe_status is Status.OK and "HTTP 200" in step.reprobe_summary
        assert nginx.answers()
    finally:
        nginx.stop()


async def test_broken_nginx_is_escalated_with_the_whole_transcript(
    tmp_path: Path, harness_factory: list[Harness]
) -> None:
    broken = Nginx(tmp_path / "nginx", broken=True)
    ladder = '[{ run = "start", settle = "0s" }, { run = "start", settle = "0s" }]'
    harness = await started(write_config(tmp_path, broken, heal=ladder), harness_factory)
    await harness.fail_until_hard()
    outcome = await harness.outcome()
    assert outcome.kind == "problem" and outcome.priority == "P1"
    assert outcome.reason == "not fixed: 2 fixes tried"
    assert [s.exit_code for s in outcome.steps] == [1, 1]
    assert all("unknown directive" in s.output for s in outcome.steps)
    assert all(s.reprobe_status is None for s in outcome.steps)  # a failed fix is not re-probed
    assert "connection refused" in outcome.result.summary


async def test_budget_is_spent_then_escalated_as_recurring_across_restarts(
    tmp_path: Path, harness_factory: list[Harness]
) -> None:
    broken = Nginx(tmp_path / "nginx", broken=True)
    good = Nginx(tmp_path / "good", port=broken.port)
    config = write_config(tmp_path, broken, budget=2)
    try:
        for run in range(3):
            harness = await started(config, harness_factory)  # a daemon restart each time
            await harness.fail_until_hard()
            outcome = await harness.outcome()
            if run < 2:
                assert outcome.reason == "not fixed: 1 fix tried" and len(outcome.steps) == 1
            else:
                assert outcome.recurring and not outcome.steps
                assert outcome.reason.startswith("recurring: its fixes already ran 2 times in "
                                                 "the last 1h (budget 2)")
            good.start()  # a person fixes it; the check recovers
            result = await harness.agent.run_once(harness.agent.config.check("site"))
            assert result is not None and result.status is Status.OK
            assert not harness.agent.states["site"].hard_failing
            good.stop()
            await harness.agent.close()
            harness_factory.remove(harness)
    finally:
        good.stop()


async def test_dry_run_runs_nothing_and_says_what_it_would_run(
    tmp_path: Path, harness_factory: list[Harness], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="monitord")
    nginx = Nginx(tmp_path / "nginx")
    harness = await started(write_config(tmp_path, nginx, dry_run=True), harness_factory)
    await harness.fail_until_hard()
    outcome = await harness.outcome()
    assert outcome.kind == "problem" and outcome.reason == "dry run: no fix was run"
    assert outcome.steps[0].ended == "dry run: not run"
    assert not nginx.processes() and not nginx.answers()
    assert f"site: dry run: fix 1/1 would run: {' '.join(nginx.argv)}" in caplog.text


async def test_maintenance_pauses_fixes_until_it_ends(
    tmp_path: Path, harness_factory: list[Harness]
) -> None:
    nginx = Nginx(tmp_path / "nginx")
    try:
        harness = await started(write_config(tmp_path, nginx), harness_factory)
        store = harness.agent.store
        now = time.time()
        store.set_maintenance(Maintenance(HOST_SCOPE, now + 3600, "kernel update", "ops", now))
        await harness.fail_until_hard()
        await harness.agent.run_once(harness.agent.config.check("site"))
        assert harness.outcomes.empty() and not nginx.processes()
        assert harness.agent.states["site"].heal_pending

        store.end_maintenance(HOST_SCOPE)
        await harness.agent.run_once(harness.agent.config.check("site"))
        outcome = await harness.outcome()
        assert outcome.kind == "healed"
    finally:
        nginx.stop()


async def test_check_without_a_ladder_is_escalated_at_once(
    tmp_path: Path, harness_factory: list[Harness]
) -> None:
    nginx = Nginx(tmp_path / "nginx")
    harness = await started(write_config(tmp_path, nginx, heal="[]"), harness_factory)
    await harness.fail_until_hard()
    outcome = await harness.outcome()
    assert (outcome.kind, outcome.reason, outcome.steps) == ("problem", "no fix configured", ())


async def test_a_relapse_after_a_fix_is_taken_up_again(
    tmp_path: Path, harness_factory: list[Harness]
) -> None:
    nginx = Nginx(tmp_path / "nginx")
    nginx.start()
    try:
        harness = await started(write_config(tmp_path, nginx, recover_after=2),
                                harness_factory)
        for _ in range(2):  # healed, then down again before it counted as recovered
            nginx.kill()
            await harness.fail_until_hard_or_relapse()
            assert (await harness.outcome()).kind == "healed"
        assert harness.agent.states["site"].hard_failing  # still recovering: 1 OK of 2
    finally:
        nginx.stop()


async def test_a_ladder_cut_short_is_still_pending_after_a_restart(
    tmp_path: Path, harness_factory: list[Harness]
) -> None:
    nginx = Nginx(tmp_path / "nginx")
    config = write_config(tmp_path, nginx, start=["/bin/sleep", "300"])
    harness = await started(config, harness_factory)
    await harness.fail_until_hard()
    assert harness.agent._ladders  # the ladder hangs in its fix
    await harness.agent.close()
    harness_factory.remove(harness)

    again = await started(config, harness_factory)
    assert again.agent.states["site"].heal_pending
    assert not again.agent.states["site"].escalated
