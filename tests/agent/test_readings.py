"""The checks' readings as Prometheus series: valid label names, no duplicate series, and
the cap, parsed back by prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CollectorRegistry, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from monitord.agent.readings import label_name, reading_families
from monitord.model import Reading


class Fixed(Collector):
    def __init__(self, readings: list[tuple[str, tuple[Reading, ...]]], cap: int) -> None:
        self.readings, self.cap = readings, cap

    def collect(self) -> Iterator[Metric]:
        yield from reading_families(self.readings, self.cap)


def scrape(readings: list[tuple[str, tuple[Reading, ...]]], cap: int) -> dict[str, list[Any]]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed(readings, cap))
    text = generate_latest(registry).decode()
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_label_names_are_made_valid_and_never_shadow_ours() -> None:
    assert label_name("mount") == "mount"
    assert label_name("check") == "label_check"
    assert label_name("/ used") == "label_used"
    assert label_name("9lives") == "label_9lives"
    assert label_name("__name__") == "label_name__"


def test_readings_are_series_with_their_labels_once_each() -> None:
    found = scrape([("disk", (Reading("used_ratio", 0.5, (("mount", "/var"),)),
                              Reading("used_ratio", 0.5, (("mount", "/var"),)),
                              Reading("read_only", False, (("mount", "/var"),)),
                              Reading("free_bytes", 1024, (("check", "x"),))))], 100)
    samples = found["monitord_check_reading"]
    assert [(s.labels, s.value) for s in samples] == [
        ({"check": "disk", "reading": "used_ratio", "mount": "/var"}, 0.5),
        ({"check": "disk", "reading": "free_bytes", "label_check": "x"}, 1024.0)]
    assert found["monitord_check_reading_series_dropped"][0].value == 0


def test_series_past_the_cap_are_counted_not_exported() -> None:
    readings = [(f"site{i}", (Reading("response_seconds", 0.1), Reading("status_code", 200)))
                for i in range(10)]
    found = scrape(readings, 5)
    assert len(found["monitord_check_reading"]) == 5
    assert found["monitord_check_reading_series_dropped"][0].value == 15
