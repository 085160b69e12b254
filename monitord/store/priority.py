"""An incident's priority follows the current severity: the highest of its own check's
current priority and its failing attached children's (``INCIDENT_STATE``'s ``wanted``).

A rise is at once: a timeline entry, a notice ("escalated", unless the incident is new
or its notices wait for a flapping check to calm down), and a due time brought forward,
never pushed back (``min(due_at, now + target)``). A fall is a timeline entry and no
notice; the due time is counted again from the opening (``answer_from + target``).
The open period the SLA report counts moves on a rise only: it keeps the most urgent
priority it had and the earliest due time, so a P1 left unanswered past its target is a
P1 breach even when it has eased since.
Called with the incident's row locked, so the state read is the committed one.
"""

from __future__ import annotations

import datetime as dt

from monitord.model import Priority
from monitord.store import records
from monitord.store.ops import Row, Script
from monitord.store.ops import Statement as S
from monitord.store.policy import Policy
from monitord.store.records import MONITORD
from monitord.store.tell import add_entry, tell


def follow(policy: Policy, incident_id: int, state: Row, now: dt.datetime,
           event_id: str | None, quiet: bool) -> Script[bool]:
    """Set the priority to the one ``state`` wants; whether it rose."""
    current, wanted = Priority(state["priority"]), Priority(state["wanted"])
    if wanted == current:
        return False
    target = dt.timedelta(seconds=policy.target(wanted))
    raised = wanted < current             # "P1" < "P3": more urgent
    due_at = min(state["due_at"], now + target) if raised else state["answer_from"] + target
    params = {"id": incident_id, "priority": wanted, "due_at": due_at, "now": now,
              "raised": raised}
    yield S.SET_PRIORITY, params
    if raised:
        yield S.PERIOD_PRIORITY, params
    change = "raised" if raised else "lowered"
    text = (f"priority {change} to {wanted}; now due by "
            f"{due_at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC")
    yield add_entry(incident_id, records.entry(now, "priority", MONITORD, text, event_id))
    if raised and not quiet:
        yield from tell(incident_id, "escalated", now)
    return raised


def state(incident_id: int) -> Script[Row]:
    """The incident's priority, the one it should have, its due time and flapping."""
    [row] = yield S.INCIDENT_STATE, {"id": incident_id}
    return row
