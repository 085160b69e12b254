"""People's actions on an incident, written once: acknowledge, resolve and comment, each
under the incident's lock, with the notice it makes. ``rules`` holds the other incident
rules and re-exports these; the same shape (scripts of ``ops`` statements) and the same
protocol (``protocol``) apply."""

from __future__ import annotations

import datetime as dt

from monitord.errors import Conflict, NotFound
from monitord.events import visible
from monitord.store import records
from monitord.store.model import Incident, NoticeKind
from monitord.store.ops import Script, aware
from monitord.store.ops import Statement as S
from monitord.store.queries import read_incident
from monitord.store.records import Entry
from monitord.store.tell import add_entry, tell

# A person's note or comment is made ``visible`` here, whoever passed it on (the API, the
# console's forms, the CLI on the embedded store): what one backend keeps, every one does.

def acknowledge(incident_id: int, who: str, note: str, now: dt.datetime) -> Script[Incident]:
    entry = records.entry(aware(now), "acknowledged", who, visible(note))
    return _act(incident_id, S.ACKNOWLEDGE, entry, "acknowledged")


def resolve(incident_id: int, who: str, note: str, now: dt.datetime) -> Script[Incident]:
    entry = records.entry(aware(now), "resolved", who, visible(note))
    return _act(incident_id, S.RESOLVE, entry, "resolved")


def comment(incident_id: int, who: str, text: str, now: dt.datetime) -> Script[Incident]:
    entry = records.entry(aware(now), "comment", who, visible(text))
    return _act(incident_id, None, entry, None)


def _act(incident_id: int, change: str | None, entry: Entry,
         tells: NoticeKind | None) -> Script[Incident]:
    """Change the incident (``change``, if any), add ``entry`` to its timeline and tell
    people (``tells``), under the incident's lock.

    A second acknowledgement is recorded but tells nobody (they heard of the first);
    acting on a resolved incident is a Conflict (a new problem on its key reopens it).
    """
    current = yield S.LOCK_INCIDENT, {"id": incident_id}
    if not current:
        raise NotFound(f"no incident {incident_id}")
    status, key = current[0]["status"], current[0]["key"]
    params = {"id": incident_id, "now": entry["at"], "who": entry["who"]}
    if change is not None and not (yield change, params):
        raise Conflict(f"incident {incident_id} is {status}: it cannot be {entry['kind']} "
                       f"(a new problem on {key} reopens it)")
    if change is not None:
        yield (S.END_PERIOD if change == S.RESOLVE else S.ACK_PERIOD), params
    yield add_entry(incident_id, entry)
    if tells == "resolved" or (tells == "acknowledged" and status == "open"):
        yield from tell(incident_id, tells, entry["at"])
    return (yield from read_incident(incident_id))
