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

Every event has a unique id made by the agent; delivery is at-least-once and the store
applies each id once. The key is ``host/check`` (``host`` alone for heartbeats) and never
carries the severity: a worse problem raises the priority of the same incident.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from monitord.model import Priority

EventKind = Literal["problem", "healed", "recovery", "heartbeat", "stopped", "maintenance"]
StatusName = Literal["OK", "WARNING", "CRITICAL", "UNKNOWN"]

Text = Annotated[str, Field(max_length=20000)]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
MAX_BATCH = 500


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Step(WireModel):
    """One rung of a fix ladder as it happened (see monitord.agent.healer.Step)."""

    fix: Annotated[str, Field(max_length=200)]
    argv: list[Annotated[str, Field(max_length=4096)]] = Field(max_length=200)
    exit_code: int | None
    duration_seconds: float = Field(ge=0)
    output: Text
    ended: Annotated[str, Field(max_length=1000)]
    reprobe_status: StatusName | None = None
    reprobe_summary: Annotated[str, Field(max_length=2000)] = ""


class Event(WireModel):
    id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    kind: EventKind
    host: Name
    check: Name | None = None
    at: dt.datetime                      # when the agent made it, timezone-aware UTC
    priority: Priority | None = None
    status: StatusName | None = None
    title: Annotated[str, Field(max_length=500)] = ""
    body: Text = ""
    summary: Annotated[str, Field(max_length=2000)] = ""
    reason: Annotated[str, Field(max_length=2000)] = ""
    recurring: bool = False
    suppressed_by: Name | None = None
    steps: list[Step] = Field(default=[], max_length=100)
    interval_seconds: float | None = Field(default=None, gt=0, le=86400)
    flapping: bool = False
    until: dt.datetime | None = None     # maintenance: when the window ends; None: it ended
    owner: Annotated[str, Field(max_length=200)] = ""    # maintenance: who set it
    # A problem whose title names its priority: the title at each priority, so that the
    # store can keep the title of an incident whose priority its children move.
    titles: dict[Priority, Annotated[str, Field(max_length=500)]] = Field(default={},
                                                                         max_length=3)

    @property
    def key(self) -> str:
        return f"{self.host}/{self.check}" if self.check else self.host

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


def new_id() -> str:
    return uuid.uuid4().hex


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
