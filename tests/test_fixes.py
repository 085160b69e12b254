"""Finding fixes: the admin's directory first, then the stock ones; unsafe files refused."""

from __future__ import annotations

import os
from pathlib import Path

from monitord.fixes import available_fixes, find_fix, run_fix, stock_dir
from monitord.trust import unsafe_reason


def make_fix(directory: Path, name: str, body: str = "echo from $0", mode: int = 0o755) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(mode)
    return path


def test_admin_fix_wins_over_the_stock_one(tmp_path: Path) -> None:
    mine = make_fix(tmp_path / "remediations.d", "restart-service")
    assert find_fix("restart-service", [tmp_path / "remediations.d", stock_dir()]) == mine
    assert find_fix("free-disk", [tmp_path / "remediations.d", stock_dir()]) == (
        stock_dir() / "free-disk")


def test_names_cannot_leave_the_directories(tmp_path: Path) -> None:
    make_fix(tmp_path / "outside", "evil")
    dirs = [tmp_path / "remediations.d"]
    assert find_fix("../outside/evil", dirs) is None
    assert find_fix(".hidden", dirs) is None


def test_non_executable_files_are_not_fixes(tmp_path: Path) -> None:
    make_fix(tmp_path, "notes", mode=0o644)
    assert find_fix("notes", [tmp_path]) is None
    assert "notes" not in available_fixes([tmp_path])


async def test_world_writable_fix_is_refused_and_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    fix = make_fix(tmp_path / "d", "x", body=f"touch {marker}", mode=0o757)
    result = await run_fix(fix, [], timeout=10, env={}, max_output=1000)
    assert result.exit_code is None and not marker.exists()
    assert result.error == f"refused: {fix} is writable by group or others"


async def test_fix_in_a_group_writable_directory_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "shared"
    fix = make_fix(directory, "x")
    directory.chmod(0o775)
    assert unsafe_reason(fix) == f"{directory} is writable by group or others"


async def test_safe_fix_runs_with_its_arguments(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    directory.mkdir()
    os.chmod(directory, 0o755)
    fix = make_fix(directory, "hello", body='echo "args: $*"')
    result = await run_fix(fix, ["a b", "c"], timeout=10, env={}, max_output=1000)
    assert (result.exit_code, result.output) == (0, "args: a b c\n")
