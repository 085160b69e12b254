"""Events, the agent's messages to the store, in the one wire format both sides validate.

    problem    a hard failure the healer could not fix (or had no fix for, or was over
               budget for): opens or updates the incident for its key
    healed     a hard failure the healer fixed: recorded and counted, pages nobody
    recovery   the check is OK again: resolves the open incident for its key
    heartbeat  the agent is alive; a host whose heartbeats stop gets a P1 "server down"
    stopped    the agent was stopped on purpose (an admin's `systemctl stop`): its silence
               is shown as such, not paged as "server down" (until a stop grows too long)
    maintenance
               a maintenance window of the host (no ``check``) or of one check was set
               (``until`` in the future) or ended (``until`` empty); owner and reason say
               who and why. The store silences notices for what is in maintenance.

A ``problem`` whose title names its priority (an admin's title template with
``{{ priority }}``) carries ``titles``, the title rendered at each priority: the store
shows the one of the incident's current priority, which its attached children may move.

A ``problem`` with ``flapping`` set says the check keeps changing state: its incident
stays open, marked flapping, with one notice; the next problem or recovery for the key
comes only once the check has been steady for a while.

Every event has an id made by the agent, unique per host (two hosts may use the same id);
delivery is at-least-once and the store applies each host's id once. The key is
``host/check`` (``host`` alone for heartbeats) and never carries the severity: a worse
problem raises the priority of the same incident.

What any store can keep, on both sides of the wire: text fields are made safe visibly
(``visible``: CRLF becomes LF, and NUL, which PostgreSQL refuses, and every other control
character but tab and newline become U+FFFD); flags and numbers are strict (``"yes"`` is
not true, ``"1"`` is not a number); times are RFC 3339 text with an offset. Validated with
``context={"now": ...}`` (as the store's API does), an event's times must also be sane:
``at`` from 2000 on and at most a day ahead of ``now``, ``until`` at most a year ahead.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)

from monitord.model import Priority

EventKind = Literal["problem", "healed", "recovery", "heartbeat", "stopped", "maintenance"]
StatusName = Literal["OK", "WARNING", "CRITICAL", "UNKNOWN"]

# A host, check or person name, as agents send it and people type it. Match it whole
# (``is_name``, or ``NAME.fullmatch``): ``re.match`` with a "$" would let "web1\n" through.
NAME_CHARS = r"[A-Za-z0-9][A-Za-z0-9_.:-]*"
MAX_NAME_CHARS = 200
NAME = re.compile(NAME_CHARS.replace("*", f"{{0,{MAX_NAME_CHARS - 1}}}"))
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS,
                            pattern=f"^{NAME_CHARS}$")]
MAX_BATCH = 500
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)   # an event older than this is a bad clock
MAX_AHEAD = dt.timedelta(days=1)           # how far ahead of the store's clock ``at`` may be
MAX_UNTIL_AHEAD = dt.timedelta(days=366)   # the longest maintenance window (``until``)
REPLACEMENT = "\ufffd"
# C0 controls but tab and newline, DEL, C1 controls, and lone surrogates (no UTF-8 for them).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)", re.ASCII)


def is_name(text: str) -> bool:
    """Whether ``text`` is a whole host, check or person name (as ``Name``)."""
    return NAME.fullmatch(text) is not None


def visible(text: str) -> str:
    """``text`` as every store keeps it: CRLF as LF; every other control character but tab
    and newline (NUL included) as U+FFFD, so a reader sees that something was there."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(REPLACEMENT, text.replace("\r\n", "\n"))


def _rfc3339(value: object) -> object:
    """Times come as RFC 3339 text with an offset (or as datetimes, in Python), never as
    numbers or bare dates."""
    if isinstance(value, dt.datetime) or (isinstance(value, str)
                                          and _RFC3339.fullmatch(value)):
        return value
    raise ValueError('expected a timestamp like "2026-11-25T17:00:00Z"')


Text = Annotated[str, Field(max_length=20000), AfterValidator(visible)]
ShortText = Annotated[str, Field(max_length=2000), AfterValidator(visible)]
Label = Annotated[str, Field(max_length=200), AfterValidator(visible)]
Time = Annotated[dt.datetime, BeforeValidator(_rfc3339)]
Seconds = Annotated[float, Field(ge=0, strict=True)]


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Step(WireModel):
    """One rung of a fix ladder as it happened (see monitord.agent.healer.Step)."""

    fix: Label
    argv: list[Annotated[str, Field(max_length=4096), AfterValidator(visible)]] = Field(
        max_length=200)
    exit_code: Annotated[int, Field(strict=True)] | None
    duration_seconds: Seconds
    output: Text
    ended: Annotated[str, Field(max_length=1000), AfterValidator(visible)]
    reprobe_status: StatusName | None = None
    reprobe_summary: ShortText = ""


class Event(WireModel):
    id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    kind: EventKind
    host: Name
    check: Name | None = None
    at: Time                             # when the agent made it, timezone-aware UTC
    priority: Priority | None = None
    status: StatusName | None = None
    title: Annotated[str, Field(max_length=500), AfterValidator(visible)] = ""
    body: Text = ""
    summary: ShortText = ""
    reason: ShortText = ""
    recurring: StrictBool = False
    suppressed_by: Name | None = None
    steps: list[Step] = Field(default=[], max_length=100)
    interval_seconds: Annotated[float, Field(gt=0, le=86400, strict=True)] | None = None
    flapping: StrictBool = False
    until: Time | None = None            # maintenance: when the window ends; None: it ended
    owner: Label = ""                    # maintenance: who set it
    # A problem whose title names its priority: the title at each priority, so that the
    # store can keep the title of an incident whose priority its children move.
    titles: dict[Priority, Annotated[str, Field(max_length=500), AfterValidator(visible)]] = (
        Field(default={}, max_length=3))

    @property
    def key(self) -> str:
        return f"{self.host}/{self.check}" if self.check else self.host

    @field_validator("at", "until")
    @classmethod
    def _sane(cls, at: dt.datetime | None, info: ValidationInfo) -> dt.datetime | None:
        """With a ``now`` in the context (the store's side), a time within sane bounds."""
        now = info.context.get("now") if isinstance(info.context, dict) else None
        if at is not None and at.tzinfo is not None and isinstance(now, dt.datetime):
            problem = time_problem(str(info.field_name), at, now)
            if problem:
                raise ValueError(problem)
        return at

    @model_validator(mode="after")
    def _complete(self) -> Event:
        if self.at.tzinfo is None:
            raise ValueError("at: expected a timestamp with a timezone, like "
                             '"2026-11-25T17:00:00Z"')
        if self.kind in ("heartbeat", "stopped"):
            if self.check is not None:
                raise ValueError(f"check: a {self.kind} event belongs to a host, not a check")
            if self.kind == "heartbeat" and self.interval_seconds is None:
                raise ValueError("interval_seconds: a heartbeat says how often it comes")
        elif self.check is None and self.kind != "maintenance":
            raise ValueError(f"check: required for a {self.kind} event")
        if self.until is not None and self.until.tzinfo is None:
            raise ValueError("until: expected a timestamp with a timezone")
        if self.kind == "problem" and self.priority is None:
            raise ValueError("priority: required for a problem event")
        return self


class Batch(WireModel):
    """The body of ``POST /api/v1/events``."""

    events: list[Event] = Field(min_length=1, max_length=MAX_BATCH)


def time_problem(field: str, at: dt.datetime, now: dt.datetime) -> str:
    """Why the time ``at`` of an event's ``field`` (``at`` or ``until``) cannot be taken
    by a store whose clock says ``now``; "" if it can."""
    if at < EARLIEST:
        return f"expected a time from {EARLIEST:%Y-%m-%d} on (is the agent's clock right?)"
    if field == "until":
        if at - now > MAX_UNTIL_AHEAD:
            return "expected a time at most a year ahead: a maintenance window ends by then"
    elif at - now > MAX_AHEAD:
        return ("expected a time at most a day ahead of the store's clock (is the agent's "
                "clock right?)")
    return ""


def time_problems(event: Event, now: dt.datetime) -> list[str]:
    """``time_problem`` of each of the event's times, as "field: why"."""
    times = {"at": event.at, "until": event.until}
    return [f"{name}: {why}" for name, at in times.items() if at is not None
            and at.tzinfo is not None and (why := time_problem(name, at, now))]


def new_id() -> str:
    return uuid.uuid4().hex


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
