"""Shared fixtures: probe contexts, checks built through the real config models, and the
rule that a test needing a missing service skips on a laptop but fails in CI (CI=true)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from monitord.probes import REGISTRY
from monitord.probes.base import CheckBase, ProbeContext, Shared

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> NoReturn:
    """Skip locally, fail in CI: CI must run every test."""
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def make_check(probe: str, **fields: Any) -> CheckBase:
    """A check validated by the probe's real config model (name defaults to the probe)."""
    data: dict[str, Any] = {"name": probe, "probe": probe, **fields}
    return REGISTRY[probe].config.model_validate(data)


@pytest.fixture
async def shared() -> AsyncIterator[Shared]:
    resources = Shared()
    yield resources
    await resources.close()


@pytest.fixture
def ctx(shared: Shared) -> ProbeContext:
    return ProbeContext(shared)


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on the new directory ``where`` (a disk to fill)."""
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        unavailable(f"cannot mount a tmpfs (needs root): {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, timeout=30)
