"""Flapping goes quiet: the rules of an incident whose check keeps changing state.

A problem marked ``flapping`` marks the incident flapping (``FLAP_MARK``) and makes one
notice: "opened" when the incident is new to people, "flapping" when it was open
already, none when it was flapping already. From then on, every problem or recovery on
its key that comes within ``flap_quiet`` of the last change is held: it goes on the
timeline, resolves nothing and tells nobody, and it restarts the calm
(``FLAP_HOLD``). The first word after ``flap_quiet`` of calm settles it once: a recovery
resolves it, a problem ends the flapping and tells people it fails steadily
("escalated"). The sweep settles the same way an incident whose last held word had
nothing after it (``settle``); one whose agent went quiet after saying it flaps waits
for the agent's next word.
"""

from __future__ import annotations

import datetime as dt

from monitord.store import records
from monitord.store.model import NoticeKind
from monitord.store.ops import Row, Script
from monitord.store.ops import Statement as S
from monitord.store.policy import Policy
from monitord.store.records import MONITORD, Entry, Trouble
from monitord.store.tell import add_entry, tell

STEADY_FAILING = "steady again after flapping, and still failing"
STEADY_OK = "steady again after flapping, and OK"


def problem(policy: Policy, incident_id: int, state: Row, trouble: Trouble, new: bool,
            now: dt.datetime, entry: Entry) -> Script[tuple[NoticeKind | None, bool]]:
    """What a problem does to flapping (``state``: the incident's ``flapping`` and
    ``flap_at`` before it): (the notice to make, whether a raise is quiet)."""
    if trouble["flapping"]:
        yield S.FLAP_MARK, {"id": incident_id, "now": now}
        if new:
            return "opened", True
        return (None if state["flapping"] else "flapping"), True
    if new:
        return "opened", False
    if not state["flapping"]:
        return None, False
    if now - state["flap_at"] < dt.timedelta(seconds=policy.flap_quiet):
        yield S.FLAP_HOLD, {"key": trouble["key"], "now": now, "held": "problem"}
        return None, True
    yield S.FLAP_END, {"id": incident_id}
    yield add_entry(incident_id, records.entry(now, "steady", MONITORD, STEADY_FAILING,
                                               entry["event_id"]))
    return "escalated", True


def hold(key: str, held: str, now: dt.datetime, entry: Entry) -> Script[None]:
    """A recovery that could not resolve the key's incident because it flaps: held."""
    for row in (yield S.FLAP_HOLD, {"key": key, "now": now, "held": held}):
        yield add_entry(row["id"], records.retold(entry, "held"))


def settle(policy: Policy, now: dt.datetime) -> Script[None]:
    """Flapping incidents whose last held word is ``flap_quiet`` old: settled once."""
    quiet_since = now - dt.timedelta(seconds=policy.flap_quiet)
    for row in (yield S.SETTLE_FLAPS, {"quiet_since": quiet_since}):
        incident_id = row["id"]
        if row["flap_held"] == "recovery":
            yield S.RESOLVE, {"id": incident_id, "now": now, "who": MONITORD}
            yield S.END_PERIOD, {"id": incident_id, "now": now, "who": MONITORD}
            yield add_entry(incident_id, records.entry(now, "recovery", MONITORD, STEADY_OK))
            yield from tell(incident_id, "resolved", now)
        else:
            yield S.FLAP_END, {"id": incident_id}
            yield add_entry(incident_id, records.entry(now, "steady", MONITORD,
                                                       STEADY_FAILING))
            yield from tell(incident_id, "escalated", now)
