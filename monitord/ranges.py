"""Nagios threshold ranges (Nagios plugin development guidelines, "Threshold and ranges").

    "10"      alert when the value is < 0 or > 10
    "10:"     alert when < 10
    "~:10"    alert when > 10
    "10:20"   alert when < 10 or > 20
    "@10:20"  alert when 10 <= value <= 20

A bare number in TOML (``crit = { used_ratio = 0.95 }``) means "0:0.95": alert above it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Range:
    low: float
    high: float
    inside: bool  # True for "@": alert when the value lies inside [low, high]
    text: str

    def alerts(self, value: float) -> bool:
        within = self.low <= value <= self.high
        return within if self.inside else not within

    def describe(self) -> str:
        """What an alerting value violated, as words: "> 0.95", "< 10", "in 10..20"."""
        if self.inside:
            return f"in {_num(self.low)}..{_num(self.high)}"
        if self.low == -math.inf or (self.low == 0 and self.high != math.inf):
            return f"> {_num(self.high)}"
        if self.high == math.inf:
            return f"< {_num(self.low)}"
        return f"outside {_num(self.low)}..{_num(self.high)}"


def parse_range(spec: object) -> Range:
    """A Range from a number or a Nagios range string; ValueError says what was expected."""
    if isinstance(spec, bool) or not isinstance(spec, int | float | str):
        raise ValueError('expected a number or a Nagios range like "10:", "~:5" or "@1:2"')
    if not isinstance(spec, str):
        return Range(0.0, float(spec), False, str(spec))
    text = spec.strip()
    inside = text.startswith("@")
    body = text[1:] if inside else text
    try:
        if ":" not in body:
            return Range(0.0, float(body), inside, text)
        low_text, high_text = body.split(":", 1)
        low = -math.inf if low_text == "~" else float(low_text or 0)
        high = math.inf if high_text == "" else float(high_text)
    except ValueError:
        raise ValueError(
            'expected a number or a Nagios range like "10:", "~:5" or "@1:2"'
        ) from None
    if low > high:
        raise ValueError(f"range start {_num(low)} is above its end {_num(high)}")
    return Range(low, high, inside, text)


def _num(value: float) -> str:
    return f"{value:g}"
