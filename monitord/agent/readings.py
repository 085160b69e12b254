"""The checks' numeric readings as Prometheus series, for the agent's /metrics.

One family, ``monitord_check_reading``, holds every check's last numeric readings: the
check's name in ``check``, the reading's name in ``reading``, and the reading's own
labels beside them (``monitord_check_reading{check="disk",reading="used_ratio",
mount="/var"} 0.96``), so one query graphs a reading across checks and hosts. Label
names are made valid for Prometheus (other characters become "_"; a reading label that
would clash with ``check`` or ``reading`` is prefixed with ``label_``).

A server with thousands of sites could make this large, so the number of series is capped
(``[status] max_reading_series``): checks in name order, readings in the probe's order,
and what does not fit is counted in ``monitord_check_reading_series_dropped`` instead of
exported. A reading repeated within one result is exported once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from monitord.model import Reading

FAMILY = "monitord_check_reading"
DROPPED = "monitord_check_reading_series_dropped"
RESERVED = frozenset({"check", "reading"})
_INVALID = re.compile(r"[^A-Za-z0-9_]")

Series = tuple[tuple[str, str], ...]


def label_name(name: str) -> str:
    """``name`` as a valid Prometheus label name that is not one of ours."""
    clean = _INVALID.sub("_", name) or "_"
    if clean[0].isdigit() or clean.startswith("__"):
        clean = "label_" + clean.lstrip("_")
    return f"label_{clean}" if clean in RESERVED else clean


def reading_families(readings: Iterable[tuple[str, tuple[Reading, ...]]],
                     max_series: int) -> Iterator[Metric]:
    """The readings of each (check, readings) as series, at most ``max_series`` of them,
    and the count of those left out."""
    family = GaugeMetricFamily(FAMILY, "A check's last numeric readings (in base units, "
                               "as its probe names them)")
    seen: set[Series] = set()
    dropped = 0
    for check, found in readings:
        for reading in found:
            if not reading.is_number:
                continue
            labels = {"check": check, "reading": reading.name}
            labels.update((label_name(k), v) for k, v in reading.labels)
            series = tuple(sorted(labels.items()))
            if series in seen:
                continue
            if len(seen) >= max_series:
                dropped += 1
                continue
            seen.add(series)
            family.add_sample(FAMILY, labels, float(reading.value))
    yield family
    yield GaugeMetricFamily(DROPPED, "Reading series not exported at the last scrape: over "
                            "[status] max_reading_series", value=dropped)
