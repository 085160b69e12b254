"""The daemon as a service: signals, reload, and systemd's notify protocol around the Agent.

SIGTERM or SIGINT stops it (a second one exits at once); before it ends, a ``stopped``
event tells the store that the host was stopped on purpose, not lost. SIGHUP reloads: the new config
is validated whole while the old one keeps running; a bad one is refused (logged, and in
systemd's STATUS) and the old config goes on. A good one replaces the agent: check
states live in the state file, so unchanged checks keep their state, and their next run
time is handed to the new scheduler, so they keep their rhythm; the startup grace for
fixes is not taken again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from monitord.agent.daemon import Agent
from monitord.agent.systemd import Notifier
from monitord.config import Config
from monitord.errors import ConfigError, MonitordError
from monitord.signals import handle_signals

log = logging.getLogger("monitord")
RELOAD_READ_SECONDS = 30.0


async def serve(config: Config, load: Callable[[], Config]) -> None:
    notifier = Notifier()
    stop, reload = asyncio.Event(), asyncio.Event()
    handle_signals(stop, reload)
    started = time.monotonic()
    resume: dict[str, float] = {}
    previous: Config | None = None
    while True:
        agent = Agent(config, notifier=notifier, started=started, resume=resume,
                      reload=reload.set)
        try:
            await agent.start()
        except MonitordError as e:
            if previous is None:
                raise
            # The new config validated but cannot start (a token file, a state directory):
            # go back to the one that ran, rather than stop watching the server.
            log.error("monitord: reload failed (%s); going back to the previous config", e)
            await agent.close()
            config, previous = previous, None
            continue
        new = await _run_until_replaced(agent, load, stop, reload, notifier)
        if new is None:
            break
        resume = unchanged_schedule(config, new, agent.schedule())
        config, previous = new, config
    log.info("monitord: stopped")


async def _run_until_replaced(agent: Agent, load: Callable[[], Config], stop: asyncio.Event,
                              reload: asyncio.Event, notifier: Notifier) -> Config | None:
    """Run ``agent`` until a stop (None) or a reload with a valid config (that config)."""
    agent_stop = asyncio.Event()
    running = asyncio.create_task(agent.run(agent_stop), name="agent")
    try:
        while True:
            await _first(stop, reload, running)
            if running.done() or stop.is_set():
                agent.stopping_for_good = stop.is_set()   # the store hears of a clean stop
                notifier.stopping()
                agent_stop.set()
                await running
                return None
            reload.clear()
            new = await _validated(load, notifier, agent)
            if new is not None:
                log.info("monitord: reloading: %d checks from %d files", len(new.checks),
                         len(new.files))
                agent_stop.set()
                await running
                return new
    finally:
        if not running.done():
            running.cancel()


async def _validated(load: Callable[[], Config], notifier: Notifier,
                     agent: Agent) -> Config | None:
    """The new config, or None (logged, and in STATUS) when it cannot be used: whatever
    goes wrong while reading it, the running config stays."""
    notifier.send("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
    try:
        async with asyncio.timeout(RELOAD_READ_SECONDS):
            return await asyncio.to_thread(load)
    except ConfigError as e:
        problems = e.problems or ["invalid config"]
    except TimeoutError:
        problems = [f"reading the config took longer than {RELOAD_READ_SECONDS:g}s"]
    except Exception as e:   # a reload must never end the daemon
        log.exception("monitord: reading the new config failed unexpectedly")
        problems = [f"reading the config failed: {type(e).__name__}: {e}"]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    for problem in problems:
        log.error("monitord: reload refused, the running config stays: %s", problem)
    notifier.ready(f"reload refused: {problems[0]}{more}; {agent.status_line()}")
    return None


async def _first(stop: asyncio.Event, reload: asyncio.Event,
                 running: asyncio.Task[None]) -> None:
    """Wait until a stop or a reload is asked for, or the agent ends by itself."""
    waits = [asyncio.create_task(stop.wait()), asyncio.create_task(reload.wait())]
    try:
        await asyncio.wait([*waits, running], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
        await asyncio.gather(*waits, return_exceptions=True)


def unchanged_schedule(old: Config, new: Config, schedule: dict[str, float]) -> dict[str, float]:
    """Next run times of the checks a reload did not change: they keep their rhythm."""
    before = {c.name: c for c in old.checks}
    return {c.name: schedule[c.name] for c in new.checks
            if c.name in schedule and before.get(c.name) == c}
