"""The daemon's event loop: uvloop when it is installed, asyncio's own otherwise.

uvloop runs the same code with a loop written in C on libuv: per check it takes about half
the CPU of asyncio's own loop (benchmarks/README.md). ``MONITORD_EVENT_LOOP=asyncio``
chooses asyncio's loop anyway, to rule uvloop out when chasing a problem.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)
ENV_VAR = "MONITORD_EVENT_LOOP"
GC_YOUNG = 10_000   # allocations between young collections (Python's default: 700)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop, unless it is missing or the environment asks for asyncio's own."""
    if os.environ.get(ENV_VAR, "").lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to its end on a new loop, as ``asyncio.run`` does.

    Everything made before (the modules, the config's models) lives as long as the process:
    ``gc.freeze`` keeps the collector from walking it again and again (the Python docs'
    advice for long-running processes, ``gc.freeze``). Every check run makes and drops
    dozens of tasks, frames and futures, so young collections are made rarer: at Python's
    700 allocations they took 4 % of the CPU at 5,000 http checks (perf), at 10,000 1 %.
    """
    factory = loop_factory()
    with asyncio.Runner(loop_factory=factory) as runner:
        log.debug("event loop: %s", type(runner.get_loop()).__module__)
        gc.freeze()
        gc.set_threshold(GC_YOUNG, *gc.get_threshold()[1:])
        return runner.run(main)
