"""Reading a Result's readings in probe tests, and polling for a condition."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from monitord.model import Result, Value

POLL_SECONDS = 0.01


def reading(result: Result, name: str, **labels: str) -> Value:
    """The one reading called ``name`` with exactly these labels."""
    values = [r.value for r in result.readings if r.name == name and dict(r.labels) == labels]
    assert len(values) == 1, f"expected one {name} {labels}, got {values} in {result}"
    return values[0]


def has_reading(result: Result, name: str, **labels: str) -> bool:
    return any(r.name == name and dict(r.labels) == labels for r in result.readings)


def number(result: Result, name: str, **labels: str) -> float:
    value = reading(result, name, **labels)
    assert isinstance(value, int | float) and not isinstance(value, bool)
    return float(value)


def wait_for(condition: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    """Poll ``condition`` until it holds; fail after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(POLL_SECONDS)


# --- load -------------------------------------------------------------------------------
