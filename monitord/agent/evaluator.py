"""Turns a probe's Observation and a check's thresholds and expectations into a Result.

Most results are OK, thousands a minute: a check's rules (its expectations, and the
warning and critical bound of each metric) are gathered once (``Rules``, kept by the
runner), and an observation that breaks none is judged in one pass over its readings.
Only one that breaks a rule is gone through again, to say which and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitord.model import Observation, Reading, Result, Status, worst
from monitord.probes.base import CheckBase, Expectation, Range


@dataclass(frozen=True, slots=True)
class Rules:
    """What ``check`` holds its readings to, gathered once."""

    check: CheckBase
    expectations: tuple[Expectation, ...]
    warn: dict[str, Range]
    crit: dict[str, Range]
    expected: dict[str, tuple[Expectation, ...]]     # by reading name
    bounds: dict[str, tuple[Range | None, Range | None]]   # (warn, crit) by metric name


def rules_of(check: CheckBase) -> Rules:
    expectations = tuple(check.expectations())
    default_warn, default_crit = check.default_thresholds()
    warn = {**default_warn, **check.warn}
    crit = {**default_crit, **check.crit}
    expected: dict[str, tuple[Expectation, ...]] = {}
    for expectation in expectations:
        expected[expectation.reading] = (*expected.get(expectation.reading, ()), expectation)
    bounds = {name: (warn.get(name), crit.get(name)) for name in {*warn, *crit}}
    return Rules(check, expectations, warn, crit, expected, bounds)


def evaluate(check: CheckBase, obs: Observation,
             rules: Rules | None = None) -> tuple[Status, str]:
    """The status and summary for ``obs``: its description plus every violated bound."""
    rules = rules if rules is not None and rules.check is check else rules_of(check)
    if _all_well(obs, rules):
        return Status.OK, obs.summary
    findings: list[tuple[Status, str]] = []
    for expectation in rules.expectations:
        if expectation.unless and any(r.name == expectation.unless and r.value is True
                                      for r in obs.readings):
            continue           # another fact judges this case (an app's own error page)
        for reading in obs.readings:
            if reading.name == expectation.reading and reading.value not in expectation.allowed:
                findings.append((expectation.status, _at(reading, expectation.problem)))
    for reading in obs.readings:
        if not reading.is_number:
            continue
        finding = _judge(reading, rules.warn.get(reading.name), rules.crit.get(reading.name))
        if finding is not None:
            findings.append(finding)
    status = worst(s for s, _ in findings)
    if status is Status.OK:
        return status, obs.summary
    reasons = [text for s, text in findings if s is status]
    reasons += [text for s, text in findings if s is not status and s is not Status.OK]
    return status, f"{obs.summary}: {'; '.join(reasons)}" if obs.summary else "; ".join(reasons)


def to_result(check: CheckBase, obs: Observation, duration: float, at: float,
              rules: Rules | None = None) -> Result:
    status, summary = evaluate(check, obs, rules)
    return Result(status, summary, tuple(obs.readings), duration, at)


def _all_well(obs: Observation, rules: Rules) -> bool:
    """Whether no reading breaks a rule: one pass, a dictionary look-up or two each."""
    expected, bounds = rules.expected, rules.bounds
    for reading in obs.readings:
        for expectation in expected.get(reading.name, ()):
            if reading.value not in expectation.allowed:
                return False
        bound = bounds.get(reading.name)
        if bound is not None and reading.is_number:
            value, (warn, crit) = float(reading.value), bound
            if (warn is not None and warn.alerts(value)) or \
                    (crit is not None and crit.alerts(value)):
                return False
    return True


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
