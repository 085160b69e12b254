"""Durations as admins write them: "500ms", "30s", "5m", "2h", "1d", or "1h30m"."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ValueError naming the expected form."""
    compact = text.strip().replace(" ", "") if isinstance(text, str) else None
    if not compact or not _WHOLE.fullmatch(compact):
        raise ValueError('expected a duration like "500ms", "30s", "5m" or "2h"')
    return sum(float(n) * _UNITS[u] for n, u in _PART.findall(compact))


def format_duration(seconds: float) -> str:
    """A short human form: 0.25 -> "250ms", 5 -> "5s", 90 -> "1m30s", 7200 -> "2h"."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 10:
        return f"{seconds:.1f}".rstrip("0").rstrip(".") + "s"
    if seconds < 60:
        return f"{round(seconds)}s"
    total = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
    return "".join(parts[:2])
