"""Data out, end to end: a real agent (``monitord run``) delivering to a real central
service (``monitord central``) on 127.0.0.1; both /metrics are read over HTTP and parsed
by prometheus_client's own text parser, and the shipped Grafana dashboard queries only
metrics these processes export."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from tests.nginx import free_port
from tests.processes import Agent, Central, processes, wait_for

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "contrib" / "grafana" / "monitord.json"
MAX_SERIES = 8
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
            "summary": ("_sum", "_count")}


@dataclass(frozen=True)
class Scrapes:
    agent: dict[str, Metric]
    central: dict[str, Metric]


def fetch(url: str, token: str = "") -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                timeout=10) as response:
        assert response.status == 200
        return str(response.read().decode())


def families(text: str) -> dict[str, Metric]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def readings_of(text: str, check: str) -> str | None:
    """The scrape, once it has a reading of ``check`` (None until then)."""
    found = families(text).get("monitord_check_reading")
    if found and any(s.labels["check"] == check for s in found.samples):
        return text
    return None


@pytest.fixture(scope="module")
def scrapes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scrapes]:
    tmp = tmp_path_factory.mktemp("metrics")
    with processes() as running:
        central = Central(running, tmp / "central")
        central.start()
        status = f"http://127.0.0.1:{free_port()}"
        agent = Agent(running, tmp / "agent", central, f"""
[status]
listen = "{status.removeprefix('http://')}"
max_reading_series = {MAX_SERIES}
[healer]
grace = "0s"
[[check]]
name = "load"
probe = "load"
every = "1s"
timeout = "1s"
[[check]]
name = "root"
probe = "disk"
mounts = ["/"]
every = "1s"
timeout = "1s"
[[check]]
name = "db"
probe = "tcp"
port = {free_port()}
every = "1s"
timeout = "1s"
fail_after = 1
priority = "P1"
""")
        proc = agent.start()
        alive = (central.proc, proc)
        wait_for(lambda: central.incidents(status="open"), "the db problem at central",
                 alive=alive)
        agent_text = wait_for(lambda: readings_of(fetch(f"{status}/metrics"), "root"),
                              "the root disk's readings", alive=alive)
        central_text = fetch(f"{central.url}/metrics", central.operator_token)
        agent.stop()
        central.stop()
    yield Scrapes(families(agent_text), families(central_text))


def test_the_agent_exports_its_checks_readings_within_the_cap(scrapes: Scrapes) -> None:
    readings = scrapes.agent["monitord_check_reading"]
    assert readings.type == "gauge"
    assert len(readings.samples) == MAX_SERIES
    by_check = {}
    for sample in readings.samples:
        by_check.setdefault(sample.labels["check"], []).append(sample)
    # Checks in name order: db (the tcp probe's readings), load, then root until the cap.
    assert "load" in by_check
    load = {s.labels["reading"]: s.value for s in by_check["load"]}
    assert {"load1", "load5", "load15", "cpus"} <= set(load)
    [dropped] = scrapes.agent["monitord_check_reading_series_dropped"].samples
    assert dropped.value > 0
    assert all(set(s.labels) == {"check", "reading", "mount"}
               for s in by_check.get("root", []))
    status = {s.labels["check"]: s.value for s in scrapes.agent["monitord_check_status"].samples}
    assert status["db"] == 2 and status["load"] == 0


def test_the_central_service_exports_incidents_events_notices_and_store_latency(
        scrapes: Scrapes) -> None:
    central = scrapes.central
    open_ = {(s.labels["priority"], s.labels["status"]): s.value
             for s in central["monitord_central_incidents_open"].samples}
    assert open_[("P1", "open")] == 1
    assert open_[("P2", "acknowledged")] == 0 and len(open_) == 6
    ingested = {s.labels["result"]: s.value
                for s in central["monitord_central_events_ingested"].samples
                if s.name.endswith("_total")}
    assert ingested["applied"] >= 2          # a heartbeat and the problem at least
    assert central["monitord_central_notices_sent"].type == "counter"
    assert central["monitord_central_notices_failed"].type == "counter"
    latency = central["monitord_central_store_seconds"]
    assert latency.type == "histogram"
    applies = [s for s in latency.samples
               if s.name.endswith("_count") and s.labels["operation"] == "apply"]
    assert applies and applies[0].value >= 1


def exported(scraped: dict[str, Metric]) -> set[str]:
    """Every series name a query may use: each family's, with its type's suffixes."""
    names = set()
    for family in scraped.values():
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


def queries(dashboard: dict[str, object]) -> list[str]:
    """Every PromQL text in the dashboard: panel targets and template variables."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("expr", "definition") and isinstance(value, str):
                    found.append(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(dashboard)
    return found


def test_the_grafana_dashboard_queries_only_exported_metrics(scrapes: Scrapes) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    texts = queries(dashboard)
    used = {name for text in texts for name in re.findall(r"\bmonitord_[a-z0-9_]+", text)}
    assert len(texts) >= 15 and len(used) >= 15
    missing = used - exported(scrapes.agent) - exported(scrapes.central)
    assert missing == set()
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
