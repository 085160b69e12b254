"""Durations, Nagios ranges and the order of statuses."""

from __future__ import annotations

import math

import pytest

from monitord.durations import format_duration, parse_duration
from monitord.model import Status, worst
from monitord.ranges import parse_range


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86400), ("1h30m", 5400),
     ("1.5s", 1.5)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5 sec", "s", "-5s", "5x", "1h 30"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)


@pytest.mark.parametrize(("seconds", "text"), [(0.25, "250ms"), (5, "5s"), (90, "1m30s"),
                                               (7200, "2h"), (90061, "1d1h")])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("spec", "alerting", "quiet"),
    [
        (10, [-1, 10.5], [0, 10]),
        ("10", [-1, 11], [0, 10]),
        ("10:", [9.9, -5], [10, 1e9]),
        ("~:10", [10.1], [-1e9, 10]),
        ("10:20", [9, 21], [10, 20]),
        ("@10:20", [10, 15, 20], [9.9, 20.1]),
    ],
)
def test_nagios_range_semantics(spec: object, alerting: list[float], quiet: list[float]) -> None:
    bound = parse_range(spec)
    assert all(bound.alerts(v) for v in alerting)
    assert not any(bound.alerts(v) for v in quiet)


@pytest.mark.parametrize("spec", ["abc", "20:10", True, [1], "1:2:3"])
def test_bad_range_is_refused(spec: object) -> None:
    with pytest.raises(ValueError):
        parse_range(spec)


def test_range_describes_what_was_violated() -> None:
    assert parse_range(0.95).describe() == "> 0.95"
    assert parse_range("0.1:").describe() == "< 0.1"
    assert parse_range("@1:2").describe() == "in 1..2"
    assert parse_range("~:5").describe() == "> 5"
    assert parse_range("1:2").low == 1 and parse_range("1:").high == math.inf


def test_status_codes_are_nagios_exit_codes() -> None:
    assert [int(s) for s in (Status.OK, Status.WARNING, Status.CRITICAL, Status.UNKNOWN)] == [
        0, 1, 2, 3]


def test_worst_orders_critical_over_unknown_over_warning() -> None:
    assert worst([]) is Status.OK
    assert worst([Status.OK, Status.WARNING]) is Status.WARNING
    assert worst([Status.WARNING, Status.UNKNOWN]) is Status.UNKNOWN
    assert worst([Status.UNKNOWN, Status.CRITICAL, Status.OK]) is Status.CRITICAL
