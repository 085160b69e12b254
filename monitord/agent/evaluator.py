"""Turns a probe's Observation and a check's thresholds and expectations into a Result."""

from __future__ import annotations

from monitord.model import Observation, Reading, Result, Status, worst
from monitord.probes.base import CheckBase, Range


def evaluate(check: CheckBase, obs: Observation) -> tuple[Status, str]:
    """The status and summary for ``obs``: its description plus every violated bound."""
    findings: list[tuple[Status, str]] = []
    for expectation in check.expectations():
        if expectation.unless and any(r.value is True for r in _named(obs, expectation.unless)):
            continue
        for reading in _named(obs, expectation.reading):
            if reading.value not in expectation.allowed:
                findings.append((expectation.status, _at(reading, expectation.problem)))
    default_warn, default_crit = check.default_thresholds()
    warn = {**default_warn, **check.warn}
    crit = {**default_crit, **check.crit}
    for reading in obs.readings:
        if not reading.is_number:
            continue
        finding = _judge(reading, warn.get(reading.name), crit.get(reading.name))
        if finding is not None:
            findings.append(finding)
    status = worst(s for s, _ in findings)
    if status is Status.OK:
        return status, obs.summary
    reasons = [text for s, text in findings if s is status]
    reasons += [text for s, text in findings if s is not status and s is not Status.OK]
    return status, f"{obs.summary}: {'; '.join(reasons)}" if obs.summary else "; ".join(reasons)


def to_result(check: CheckBase, obs: Observation, duration: float, at: float) -> Result:
    status, summary = evaluate(check, obs)
    return Result(status, summary, tuple(obs.readings), duration, at)


def _named(obs: Observation, name: str) -> list[Reading]:
    return [r for r in obs.readings if r.name == name]


def _judge(reading: Reading, warn: Range | None, crit: Range | None) -> tuple[Status, str] | None:
    value = float(reading.value)
    for status, bound in ((Status.CRITICAL, crit), (Status.WARNING, warn)):
        if bound is not None and bound.alerts(value):
            return status, _at(reading, f"{reading.name} {_show(value)} {bound.describe()}")
    return None


def _at(reading: Reading, text: str) -> str:
    return f"{reading.where} {text}" if reading.labels else text


def _show(value: float) -> str:
    return f"{value:.4g}"
