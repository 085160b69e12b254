"""The central service's /metrics in Prometheus' text format.

    monitord_central_incidents_open{priority,status}   unresolved incidents (read from
                                                        the store at each scrape)
    monitord_central_events_ingested_total{result}     events applied, or dropped as
                                                        duplicates (a retried batch)
    monitord_central_event_batches_total               batches applied
    monitord_central_notices_sent_total{channel}       notices a channel took
    monitord_central_notices_failed_total{channel,outcome}
                                                        outcome "retry" (tried again later),
                                                        "refused" (for good) or "given_up"
    monitord_central_store_seconds{operation}          how long each store call took
                                                        (a histogram)
    monitord_central_store_errors_total{operation}     store calls that failed (an
                                                        expected answer, such as "no such
                                                        incident" or "already resolved",
                                                        is not a failure)

Counters are this process's own since it started (several central processes on one
PostgreSQL store each count theirs; Prometheus adds them up); the incident gauge is the
store's, the same from every process. The registry is the app's own, never the library's
global one, so that several apps in one process (the tests) do not share counts.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterator
from typing import Any, cast

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from monitord.central.notify.notifier import Delivery
from monitord.errors import IncidentError
from monitord.model import Priority
from monitord.store.protocol import ApplyReport, Store

STATUSES = ("open", "acknowledged")
STORE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                 10.0, 30.0)


class OpenIncidents(Collector):
    """The store's unresolved incidents, as last read (``counts``): every priority and
    status is exported, 0 when there are none."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("monitord_central_incidents_open",
                                   "Unresolved incidents, by priority and status",
                                   labels=["priority", "status"])
        for priority in Priority:
            for status in STATUSES:
                family.add_metric([priority.value, status],
                                  self.counts.get((priority.value, status), 0))
        yield family


class CentralMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.events = Counter("monitord_central_events_ingested", "Events from agents: "
                              "applied, or dropped as duplicates", ["result"], registry=reg)
        self.batches = Counter("monitord_central_event_batches", "Event batches applied",
                               registry=reg)
        self.sent = Counter("monitord_central_notices_sent", "Notices a channel took",
                            ["channel"], registry=reg)
        self.failed = Counter("monitord_central_notices_failed", "Notices a channel did not "
                              "take: retry, refused or given_up", ["channel", "outcome"],
                              registry=reg)
        self.store_seconds = Histogram("monitord_central_store_seconds", "How long store "
                                       "calls took, by operation", ["operation"],
                                       buckets=STORE_BUCKETS, registry=reg)
        self.store_errors = Counter("monitord_central_store_errors", "Store calls that "
                                    "failed, by operation", ["operation"], registry=reg)
        for result in ("applied", "duplicate"):
            self.events.labels(result)
        self.open = OpenIncidents()
        reg.register(self.open)

    def delivered(self, delivery: Delivery) -> None:
        """Count what a notification round did with one notice."""
        for channel in delivery.told:
            self.sent.labels(channel).inc()
        for outcome, channels in (("retry", delivery.failed), ("refused", delivery.refused),
                                  ("given_up", delivery.given_up)):
            for channel in channels:
                self.failed.labels(channel, outcome).inc()

    def applied(self, report: ApplyReport) -> None:
        self.batches.inc()
        self.events.labels("applied").inc(report.applied)
        self.events.labels("duplicate").inc(report.duplicates)

    async def exposition(self, store: Store) -> bytes:
        """Every metric now: the store is asked for its open incidents first."""
        self.open.counts = await store.open_counts()
        return cast(bytes, generate_latest(self.registry))


class TimedStore:
    """The app's store with every call timed (and ``apply`` counted) into ``metrics``.

    It forwards whatever the Store protocol has, by name, so that a method added to the
    protocol is timed without a change here.
    """

    def __init__(self, store: Store, metrics: CentralMetrics) -> None:
        self._store = store
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute
        metrics = self._metrics

        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            try:
                result = await attribute(*args, **kwargs)
            except IncidentError:    # NotFound, Conflict: the store answered, as it should
                raise
            except Exception:
                metrics.store_errors.labels(name).inc()
                raise
            finally:
                metrics.store_seconds.labels(name).observe(time.monotonic() - started)
            if isinstance(result, ApplyReport):
                metrics.applied(result)
            return result

        return timed


def timed(store: Store, metrics: CentralMetrics) -> Store:
    return cast(Store, TimedStore(store, metrics))


METRICS = web.AppKey("metrics", CentralMetrics)
