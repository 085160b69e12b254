"""Finding and running fix scripts.

A fix is an executable found by name, first in the admin's directory
(``[healer] remediations_dir``, /etc/monitord/remediations.d by default), then among the
stock fixes shipped in ``remediations/``. It runs through the one subprocess path with a
clean environment plus ``MONITORD_*``; exit 0 means the action was carried out, and the
re-probe decides whether it helped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from monitord.commands import CommandResult, run_command

SOURCE_FIXES = Path(__file__).resolve().parent.parent / "remediations"
INSTALLED_FIXES = Path("/usr/share/monitord/remediations")


def stock_dir() -> Path:
    return SOURCE_FIXES if SOURCE_FIXES.is_dir() else INSTALLED_FIXES


def fix_dirs(remediations_dir: str) -> list[Path]:
    """Where fixes are looked for, in order: the admin's directory, then the stock one."""
    return [Path(remediations_dir), stock_dir()]


def find_fix(name: str, dirs: Sequence[Path]) -> Path | None:
    """The first executable regular file called ``name`` in ``dirs``."""
    if "/" in name or name.startswith("."):
        return None
    for directory in dirs:
        path = directory / name
        try:
            if path.is_file() and os.access(path, os.X_OK):
                return path
        except OSError:  # an unreadable directory (not root) hides its fixes
            continue
    return None


def available_fixes(dirs: Sequence[Path]) -> list[str]:
    names: set[str] = set()
    for directory in dirs:
        try:
            names.update(p.name for p in directory.iterdir()
                         if p.is_file() and os.access(p, os.X_OK))
        except OSError:  # missing, or unreadable to a user who is not root
            continue
    return sorted(names)


async def run_fix(
    path: Path, args: Sequence[str], *, timeout: float, env: Mapping[str, str], max_output: int
) -> CommandResult:
    """Run the fix at ``path`` with ``args`` (a fix unsafe to run is refused, with why)."""
    return await run_command([str(path), *args], timeout=timeout, env=env,
                             max_output=max_output)
