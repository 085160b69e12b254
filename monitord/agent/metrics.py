"""The agent's /metrics in Prometheus' text format, read at scrape time from its state.

Imported by the status endpoint on the first scrape, so an agent nobody scrapes never
loads prometheus_client.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from monitord.agent.delivery import Deliverer
from monitord.agent.outbox import Outbox
from monitord.agent.readings import reading_families
from monitord.agent.state import CheckState
from monitord.config import Config
from monitord.model import Reading


class Agent(Protocol):
    """What the metrics read of the running agent (``daemon.Agent``)."""

    config: Config
    states: dict[str, CheckState]
    last_duration: dict[str, float]
    last_readings: dict[str, tuple[Reading, ...]]
    outcome_counts: dict[tuple[str, str], int]
    outbox: Outbox | None
    deliverer: Deliverer | None

    @property
    def outbox_depth(self) -> int: ...


def exposition(agent: Agent) -> bytes:
    """The metrics of ``agent`` now, as Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(agent))
    return generate_latest(registry)


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
        yield from reading_families(
            ((name, agent.last_readings.get(name, ())) for name in sorted(agent.states)),
            agent.config.status.max_reading_series)
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
