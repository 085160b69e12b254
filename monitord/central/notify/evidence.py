"""What a notice shows of why its incident is open: the last reading, what the junior tier
tried, and a link to the incident.

All of it comes from the incident as the store keeps it: its summary and last-seen time,
and the latest timeline entry of a problem (``problem`` or ``reopened``), whose text is
the agent's event (its body has a ``Readings:`` line with the check's numeric readings,
from the stock ``problem.body.j2``) and whose steps are the fix ladder's transcript. Fix
output is untrusted and can be long: control characters become "?", and each output is
trimmed to its first and last bytes with a marker saying how much was left out
("… [trimmed 12,345 bytes] …"), so a notice stays readable and within what PagerDuty and
webhook receivers take. Mail is plain text; whatever renders this as HTML must escape it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from monitord.store.protocol import Incident, TimelineEntry
from monitord.texts import printable

MAX_OUTPUT_BYTES = 2048        # of each fix's output
MAX_FIELD_BYTES = 1024         # of a re-probe's summary, the readings, an argv
MAX_STEPS = 10                 # the last ones; the number left out is said
READINGS_PREFIX = "Readings: "
PROBLEM_ENTRIES = ("problem", "reopened")
HEAD_SHARE = 4                 # a trimmed text keeps 1/4 of its bytes from the start


@dataclass(frozen=True)
class Tried:
    """One fix the junior tier ran, and what the re-probe after it said."""

    fix: str
    command: str
    exit_code: int | None
    ended: str
    duration_seconds: float
    reprobe_status: str
    reprobe_summary: str
    output: str


@dataclass(frozen=True)
class Evidence:
    summary: str                   # the last reading, in words
    seen_at: dt.datetime | None    # when the agent last reported the problem
    readings: str                  # "response_seconds=0.041, status_code=502", or ""
    tried: tuple[Tried, ...]
    left_out: int                  # earlier steps not shown
    url: str                       # the incident's console page, or ""


def gather(incident: Incident, url: str) -> Evidence:
    """The evidence of ``incident`` (read with its timeline)."""
    entry = latest_problem(incident.timeline)
    steps = [s for s in (entry.steps if entry else ()) if isinstance(s, dict)]
    shown = steps[-MAX_STEPS:]
    return Evidence(
        summary=printable(incident.summary), seen_at=incident.last_seen_at,
        readings=readings(entry.text) if entry else "",
        tried=tuple(_tried(step) for step in shown), left_out=len(steps) - len(shown),
        url=url)


def latest_problem(timeline: tuple[TimelineEntry, ...]) -> TimelineEntry | None:
    """The latest entry made by a problem event (its transcript), or None."""
    return next((e for e in reversed(timeline) if e.kind in PROBLEM_ENTRIES), None)


def readings(text: str) -> str:
    """The ``Readings:`` line of an event's text, without the prefix ("" if none)."""
    for line in text.splitlines():
        if line.startswith(READINGS_PREFIX):
            return trim(printable(line.removeprefix(READINGS_PREFIX).strip()),
                        MAX_FIELD_BYTES)
    return ""


def trim(text: str, limit: int = MAX_OUTPUT_BYTES) -> str:
    """``text`` within ``limit`` UTF-8 bytes: its start and its end (where a failing
    command says why), with a marker in between saying how many bytes were left out."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    head = raw[: limit // HEAD_SHARE].decode("utf-8", "ignore")
    tail = raw[len(raw) - (limit - limit // HEAD_SHARE):].decode("utf-8", "ignore")
    cut = len(raw) - len(head.encode()) - len(tail.encode())
    return f"{head}\n… [trimmed {cut:,} bytes] …\n{tail}"


def _tried(step: dict[str, Any]) -> Tried:
    argv = step.get("argv")
    command = " ".join(str(a) for a in argv) if isinstance(argv, list) else ""
    code = step.get("exit_code")
    seconds = step.get("duration_seconds")
    return Tried(
        fix=_text(step.get("fix"), MAX_FIELD_BYTES), command=_text(command, MAX_FIELD_BYTES),
        exit_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        ended=_text(step.get("ended"), MAX_FIELD_BYTES),
        duration_seconds=float(seconds) if isinstance(seconds, int | float) else 0.0,
        reprobe_status=_text(step.get("reprobe_status"), 20),
        reprobe_summary=_text(step.get("reprobe_summary"), MAX_FIELD_BYTES),
        output=_text(step.get("output"), MAX_OUTPUT_BYTES))


def _text(value: object, limit: int) -> str:
    return trim(printable(value), limit) if isinstance(value, str) else ""


# --- as the channels show it -----------------------------------------------------------

def as_json(evidence: Evidence) -> dict[str, Any]:
    """For webhooks and PagerDuty's custom details (times in RFC 3339, UTC)."""
    seen = evidence.seen_at
    return {
        "last_reading": {
            "summary": evidence.summary, "readings": evidence.readings,
            "seen_at": None if seen is None else
            seen.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        },
        "tried": [{"fix": t.fix, "command": t.command, "exit_code": t.exit_code,
                   "ended": t.ended, "duration_seconds": t.duration_seconds,
                   "reprobe_status": t.reprobe_status or None,
                   "reprobe_summary": t.reprobe_summary, "output": t.output}
                  for t in evidence.tried],
        "tried_left_out": evidence.left_out,
        "url": evidence.url or None,
    }


def as_context(evidence: Evidence) -> dict[str, Any]:
    """For the mail templates: ``readings``, ``tried`` (each with the fields of Tried) and
    ``tried_left_out``."""
    return {"readings": evidence.readings, "tried": [vars(t) for t in evidence.tried],
            "tried_left_out": evidence.left_out}
