"""A systemd unit's state: ActiveState and SubState against the expected ones, the last
run's Result and the restart count, read with ``systemctl show`` (systemctl(1)).

``systemctl`` is run through the one subprocess path (``monitord.commands``); its path is
a key so that a host with systemctl elsewhere, and the tests, can name another program
that prints the same ``KEY=value`` lines.
"""

from __future__ import annotations

import os
import re
from typing import Literal

from pydantic import Field

from monitord.commands import CommandResult, run_command
from monitord.durations import format_duration
from monitord.errors import ProbeError
from monitord.model import Observation, Status
from monitord.probes.base import CheckBase, Expectation, ProbeContext

METRICS = {
    "restarts": "times systemd restarted the unit automatically (NRestarts) since it was "
                "last started by hand",
}
PROPERTIES = ("LoadState", "ActiveState", "SubState", "Result", "NRestarts")
MAX_OUTPUT_BYTES = 16384
MAX_VALUE_CHARS = 64
MAX_KILL_GRACE = 1.0
# What systemctl prints when PID 1 is not systemd or its bus cannot be reached.
NOT_RUNNING = ("has not been booted with systemd", "Failed to connect to bus")
UNIT_NAME = r"^[A-Za-z0-9:_.@\\-]+$"


class Config(CheckBase):
    METRICS = METRICS
    probe: Literal["systemd"]
    unit: str = Field(pattern=UNIT_NAME, max_length=256)
    expect_active: list[str] = Field(default=["active"], min_length=1)
    expect_sub: list[str] = Field(default=["running"], min_length=1)
    systemctl: str = "systemctl"

    def expectations(self) -> list[Expectation]:
        return [
            Expectation("active_state", frozenset(self.expect_active),
                        f"expected ActiveState {' or '.join(self.expect_active)}"),
            Expectation("sub_state", frozenset(self.expect_sub),
                        f"expected SubState {' or '.join(self.expect_sub)}"),
        ]


async def probe(cfg: Config, ctx: ProbeContext) -> Observation:
    grace = min(MAX_KILL_GRACE, ctx.timeout - ctx.budget())
    budget = ctx.budget() - grace
    argv = [cfg.systemctl, "show", "--property", ",".join(PROPERTIES), "--", cfg.unit]
    done = await run_command(argv, timeout=budget, kill_grace=grace,
                             max_output=MAX_OUTPUT_BYTES)
    _check_ran(cfg, done, budget)
    state = parse_show(done.output)
    missing = [p for p in PROPERTIES[:3] if p not in state]
    if missing:
        raise ProbeError(f"{cfg.systemctl} show {cfg.unit} did not report "
                         f"{', '.join(missing)}{_said(done)}", Status.UNKNOWN)
    if state["LoadState"] == "not-found":
        raise ProbeError(f"systemd has no unit {cfg.unit} (LoadState=not-found)")
    return _observe(cfg, state)


def _observe(cfg: Config, state: dict[str, str]) -> Observation:
    active, sub = state["ActiveState"], state["SubState"]
    result = state.get("Result", "")
    summary = f"{cfg.unit} is {active} ({sub})"
    if result and result != "success":
        summary += f", last result {result}"
    obs = Observation(summary)
    obs.add("active_state", active)
    obs.add("sub_state", sub)
    obs.add("load_state", state["LoadState"])
    if result:
        obs.add("result", result)
    restarts = state.get("NRestarts", "")
    if restarts.isdigit():  # absent before systemd 235
        obs.add("restarts", int(restarts))
        if int(restarts):
            obs.summary += f", restarted {restarts} times"
    return obs


def _check_ran(cfg: Config, done: CommandResult, budget: float) -> None:
    """Raise UNKNOWN when systemctl could not tell: missing, no systemd, any failure."""
    if done.error:
        raise ProbeError(f"cannot run {done.error}; set systemctl to its path",
                         Status.UNKNOWN)
    if done.timed_out:
        raise ProbeError(f"{cfg.systemctl} show {cfg.unit} timed out after "
                         f"{format_duration(budget)}", Status.UNKNOWN)
    if any(marker in done.output for marker in NOT_RUNNING):
        raise ProbeError(f"systemd is not running here (PID 1 is not systemd), so unit "
                         f"{cfg.unit} cannot be checked{_said(done)}", Status.UNKNOWN)
    if not done.ok:
        raise ProbeError(f"{os.path.basename(cfg.systemctl)} show {cfg.unit} failed: "
                         f"{done.describe()}{_said(done)}", Status.UNKNOWN)


def parse_show(output: str) -> dict[str, str]:
    """``KEY=value`` lines of ``systemctl show``; values bounded, other lines ignored."""
    state: dict[str, str] = {}
    for line in output.splitlines():
        key, eq, value = line.partition("=")
        if eq and re.fullmatch(r"[A-Za-z]+", key):
            state[key] = value.strip()[:MAX_VALUE_CHARS]
    return state


def _said(done: CommandResult) -> str:
    lines = done.output.strip().splitlines()
    return f": {lines[0][:200]}" if lines else ""
