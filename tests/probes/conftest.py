"""The http probe's tests run on asyncio's own loop and on uvloop, which the daemon uses
when it is installed (``monitord.agent.eventloop``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
try:
    import uvloop
except ImportError:   # the daemon runs without it; so do these tests
    pass
else:
    LOOPS["uvloop"] = uvloop.new_event_loop

BOTH_LOOPS = ("test_http", "test_http_wire")


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    module = getattr(item, "module", None)
    if module is not None and module.__name__.rsplit(".", 1)[-1] in BOTH_LOOPS:
        return LOOPS
    return {"asyncio": asyncio.new_event_loop}
