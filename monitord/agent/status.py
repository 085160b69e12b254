"""The agent's local status endpoint: /status (JSON), /metrics (Prometheus), /healthz.

It listens on 127.0.0.1 only (``[status] listen``), or on a unix socket; nothing in it
changes anything. ``monitord status`` reads /status.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from typing import Any, Protocol

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from monitord.agent.delivery import Deliverer
from monitord.agent.outbox import Outbox
from monitord.agent.state import CheckState
from monitord.config import Config


class Agent(Protocol):
    """What the status endpoint reads of the running agent (``daemon.Agent``)."""

    config: Config
    states: dict[str, CheckState]
    last_duration: dict[str, float]
    outcome_counts: dict[tuple[str, str], int]
    outbox: Outbox | None
    deliverer: Deliverer | None

    @property
    def outbox_depth(self) -> int: ...

    def fixing(self, name: str) -> bool: ...

    async def budgets_left(self) -> dict[str, int]: ...

    def status_line(self) -> str: ...

log = logging.getLogger(__name__)
AGENT: web.AppKey[Agent] = web.AppKey("agent")


def create_app(agent: Agent) -> web.Application:
    app = web.Application()
    app[AGENT] = agent
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(agent))

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry),
                            content_type="text/plain", charset="utf-8",
                            headers={"Cache-Control": "no-store"})

    app.router.add_get("/status", status_view)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app


async def status_view(request: web.Request) -> web.Response:
    return web.json_response(await status_document(request.app[AGENT]))


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def status_document(agent: Agent) -> dict[str, Any]:
    """Every check's state, since when, last summary and heal budget left."""
    budgets = await agent.budgets_left()
    checks = []
    for check in agent.config.checks:
        state = agent.states.get(check.name)
        if state is None:
            continue
        checks.append({
            "name": check.name, "probe": check.probe, "priority": check.priority,
            "status": state.status.name, "phase": state.phase,
            "hard_failing": state.hard_failing, "since": _iso(state.since),
            "last_run": _iso(state.last_run), "summary": state.summary,
            "flapping": state.flapping, "suppressed_by": state.suppressed_by,
            "fixing": agent.fixing(check.name),
            "heal_budget_left": budgets.get(check.name),
        })
    return {"host": agent.config.host, "summary": agent.status_line(), "checks": checks}


class AgentCollector(Collector):
    """Read at scrape time from the agent's own state: nothing is counted twice."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def collect(self) -> Iterator[Metric]:
        agent = self.agent
        status = GaugeMetricFamily("monitord_check_status",
                                   "Last result: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN",
                                   labels=["check"])
        hard = GaugeMetricFamily("monitord_check_hard_failing",
                                 "1 while the check's failure is confirmed", labels=["check"])
        duration = GaugeMetricFamily("monitord_probe_duration_seconds",
                                     "How long the check's last probe took", labels=["check"])
        for name, state in sorted(agent.states.items()):
            status.add_metric([name], int(state.status))
            hard.add_metric([name], int(state.hard_failing))
            duration.add_metric([name], agent.last_duration.get(name, 0.0))
        yield from (status, hard, duration)
        heals = CounterMetricFamily("monitord_heal_outcomes",
                                    "Fix ladder outcomes, by check and outcome",
                                    labels=["check", "outcome"])
        for (check, outcome), count in sorted(agent.outcome_counts.items()):
            heals.add_metric([check, outcome], count)
        yield heals
        yield GaugeMetricFamily("monitord_outbox_depth", "Events waiting for the store",
                                value=agent.outbox_depth)
        dropped = CounterMetricFamily("monitord_outbox_dropped",
                                      "Events dropped because the outbox was full",
                                      labels=["kind"])
        counters = agent.outbox.counters if agent.outbox is not None else None
        for kind, count in sorted((counters.dropped if counters else {}).items()):
            dropped.add_metric([kind], count)
        yield dropped
        yield CounterMetricFamily("monitord_outbox_dead_letters",
                                  "Events the store refused for good (kept in dead_letter)",
                                  value=counters.dead if counters else 0)
        yield CounterMetricFamily("monitord_outbox_kept_in_memory",
                                  "Events kept in memory because the disk refused them",
                                  value=counters.in_memory if counters else 0)
        sent = agent.deliverer.sent if agent.deliverer is not None else 0
        yield CounterMetricFamily("monitord_events_sent", "Events the store accepted",
                                  value=sent)


def _iso(at: float) -> str | None:
    if not at:
        return None
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat().replace("+00:00", "Z")


async def serve(agent: Agent, listen: str) -> web.AppRunner | None:
    """Serve ``agent``'s status on ``listen``; None when it is off ("") or cannot listen:
    the daemon's work matters more than its window on it."""
    if not listen:
        return None
    try:
        return await start(agent, listen)
    except OSError as e:
        log.error("status endpoint: cannot listen on %s (%s); running without it",
                  listen, e.strerror or e)
        return None


async def start(agent: Agent, listen: str) -> web.AppRunner:
    """Serve ``agent``'s status on ``listen`` ("127.0.0.1:8461" or "unix:/run/x.sock")."""
    runner = web.AppRunner(create_app(agent), access_log=None)
    await runner.setup()
    site: web.BaseSite
    if listen.startswith("unix:"):
        site = web.UnixSite(runner, listen.removeprefix("unix:"))
    else:
        host, _, port = listen.rpartition(":")
        site = web.TCPSite(runner, host, int(port))
    started = time.monotonic()
    await site.start()
    log.debug("status endpoint on %s (%.0f ms)", listen, (time.monotonic() - started) * 1000)
    return runner
