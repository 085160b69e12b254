"""The systemd probe.

This machine's PID 1 is not systemd, so the real ``systemctl`` can only show the "systemd
is not running" branch (tested for real, and skipped where systemd does run). The
parsing and judging of unit states goes through the probe's ``systemctl`` key: a small
stand-in script that prints what ``systemctl show`` prints, run through the same
subprocess path as the real one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from monitord.agent.runner import run_check
from monitord.model import Result, Status
from monitord.probes.base import ProbeContext
from monitord.probes.systemd import parse_show
from tests.conftest import make_check
from tests.probes.readings import has_reading, number, reading

RUNNING = {"LoadState": "loaded", "ActiveState": "active", "SubState": "running",
           "Result": "success", "NRestarts": "0"}


def systemctl(folder: Path, lines: str, code: int = 0) -> str:
    """A stand-in systemctl that prints ``lines`` and exits ``code``; it also records its
    arguments, so tests can see what the probe asked."""
    path = folder / "systemctl"
    path.write_text(f'#!/bin/sh\necho "$@" > "{folder}/args"\ncat <<\'EOF\'\n{lines}EOF\n'
                    f"exit {code}\n")
    path.chmod(0o755)
    return str(path)


def show(**changes: str) -> str:
    return "".join(f"{k}={v}\n" for k, v in {**RUNNING, **changes}.items())


async def run_unit(ctx: ProbeContext, stand_in: str, unit: str = "nginx.service",
                   **fields: Any) -> Result:
    check = make_check("systemd", unit=unit, systemctl=stand_in, **fields)
    return await run_check(check, ctx)


# --- the real systemctl ---------------------------------------------------------------


def systemd_runs() -> bool:
    """sd_booted(3): systemd runs as PID 1 exactly when /run/systemd/system exists."""
    return os.path.isdir("/run/systemd/system")


async def test_without_systemd_the_check_is_unknown_and_says_why(ctx: ProbeContext) -> None:
    if systemd_runs():
        pytest.skip("systemd runs here; this test needs a machine without it")
    if shutil.which("systemctl") is None:
        pytest.skip("systemctl is not installed")
    result = await run_check(make_check("systemd", unit="nginx.service"), ctx)
    assert result.status is Status.UNKNOWN
    assert result.summary.startswith(
        "systemd is not running here (PID 1 is not systemd), so unit nginx.service cannot "
        "be checked: System has not been booted with systemd")


# --- states, through a stand-in systemctl ---------------------------------------------


async def test_active_running_unit_is_ok(ctx: ProbeContext, tmp_path: Path) -> None:
    result = await run_unit(ctx, systemctl(tmp_path, show()))
    assert result.status is Status.OK, result.summary
    assert result.summary == "nginx.service is active (running)"
    assert reading(result, "active_state") == "active"
    assert reading(result, "sub_state") == "running"
    assert reading(result, "result") == "success"
    assert number(result, "restarts") == 0
    args = (tmp_path / "args").read_text().split()
    assert args == ["show", "--property", "LoadState,ActiveState,SubState,Result,NRestarts",
                    "--", "nginx.service"]


async def test_failed_unit_is_critical_with_its_result(ctx: ProbeContext, tmp_path: Path) -> None:
    stand_in = systemctl(tmp_path, show(ActiveState="failed", SubState="failed",
                                        Result="exit-code", NRestarts="5"))
    result = await run_unit(ctx, stand_in)
    assert result.status is Status.CRITICAL
    assert result.summary == ("nginx.service is failed (failed), last result exit-code, "
                              "restarted 5 times: expected ActiveState active; expected "
                              "SubState running")
    assert number(result, "restarts") == 5


async def test_restarting_unit_is_critical(ctx: ProbeContext, tmp_path: Path) -> None:
    stand_in = systemctl(tmp_path, show(ActiveState="activating", SubState="auto-restart"))
    result = await run_unit(ctx, stand_in)
    assert result.status is Status.CRITICAL
    assert "nginx.service is activating (auto-restart)" in result.summary


async def test_expected_states_are_configurable(ctx: ProbeContext, tmp_path: Path) -> None:
    stand_in = systemctl(tmp_path, show(SubState="exited"))
    oneshot = await run_unit(ctx, stand_in, unit="certbot.service",
                             expect_sub=["running", "exited"])
    assert oneshot.status is Status.OK, oneshot.summary
    assert oneshot.summary == "certbot.service is active (exited)"


async def test_restarts_over_a_threshold_are_a_warning(
    ctx: ProbeContext, tmp_path: Path
) -> None:
    stand_in = systemctl(tmp_path, show(NRestarts="4"))
    result = await run_unit(ctx, stand_in, warn={"restarts": 3})
    assert result.status is Status.WARNING
    assert result.summary == "nginx.service is active (running), restarted 4 times: restarts 4 > 3"


async def test_unknown_unit_is_critical(ctx: ProbeContext, tmp_path: Path) -> None:
    stand_in = systemctl(tmp_path, show(LoadState="not-found", ActiveState="inactive",
                                        SubState="dead"))
    result = await run_unit(ctx, stand_in, unit="ngnix.service")
    assert result.status is Status.CRITICAL
    assert result.summary == "systemd has no unit ngnix.service (LoadState=not-found)"


async def test_systemctl_failing_is_unknown(ctx: ProbeContext, tmp_path: Path) -> None:
    stand_in = systemctl(tmp_path, "Failed to get properties: Access denied\n", code=1)
    result = await run_unit(ctx, stand_in)
    assert result.status is Status.UNKNOWN
    assert result.summary.startswith("systemctl show nginx.service failed: exit 1 in ")
    assert result.summary.endswith(": Failed to get properties: Access denied")


async def test_output_without_states_is_unknown(ctx: ProbeContext, tmp_path: Path) -> None:
    result = await run_unit(ctx, systemctl(tmp_path, "garbage\n"))
    assert result.status is Status.UNKNOWN
    assert "did not report LoadState, ActiveState, SubState" in result.summary


async def test_missing_systemctl_is_unknown(ctx: ProbeContext, tmp_path: Path) -> None:
    result = await run_unit(ctx, str(tmp_path / "no-systemctl"))
    assert result.status is Status.UNKNOWN
    assert result.summary.startswith("cannot run ")
    assert result.summary.endswith("; set systemctl to its path")


async def test_old_systemd_without_nrestarts_has_no_restarts(
    ctx: ProbeContext, tmp_path: Path
) -> None:
    lines = "LoadState=loaded\nActiveState=active\nSubState=running\nResult=success\n"
    result = await run_unit(ctx, systemctl(tmp_path, lines))
    assert result.status is Status.OK
    assert not has_reading(result, "restarts")


async def test_hung_systemctl_is_unknown(ctx: ProbeContext, tmp_path: Path) -> None:
    path = tmp_path / "systemctl"
    path.write_text("#!/bin/sh\nexec sleep 300\n")
    path.chmod(0o755)
    result = await run_unit(ctx, str(path), timeout="1s")
    assert result.status is Status.UNKNOWN
    assert result.summary.startswith(f"{path} show nginx.service timed out after ")


def test_parse_show_bounds_values_and_ignores_noise() -> None:
    state = parse_show("ActiveState=active\nnoise\nSubState=" + "x" * 500 + "\n=odd\n")
    assert state == {"ActiveState": "active", "SubState": "x" * 64}


def test_unit_names_are_checked() -> None:
    with pytest.raises(ValidationError):
        make_check("systemd", unit="nginx; rm -rf /")
