"""Writing on an incident's timeline and making its notices: the two things every rule
does to tell people what happened. A notice is not made for an incident in a running
maintenance window (``ADD_NOTICE`` checks it in the same statement), unless it is the
acknowledgement or resolution of an incident people were told of before (``announced``:
a pager that heard "opened" must hear the end of it); the timeline then says which
window kept people from hearing of it (of reminders, once per window). An incident a
window kept people from hearing of is told "opened" when the window ends
(``escalation.window_ended``)."""

from __future__ import annotations

import datetime as dt

from monitord.store import records
from monitord.store.model import NoticeKind
from monitord.store.ops import Op, Row, Rows, Script
from monitord.store.ops import Statement as S
from monitord.store.records import MONITORD, Entry


def add_entry(incident_id: int, entry: Entry) -> Op:
    return S.ADD_ENTRY, {**entry, "id": incident_id}


def tell(incident_id: int, kind: NoticeKind, now: dt.datetime) -> Script[Rows]:
    """A notice of ``kind``, at the incident's current escalation level; its row (none
    when a maintenance window silenced it)."""
    rows = yield S.ADD_NOTICE, {"id": incident_id, "kind": kind, "now": now}
    if rows:
        yield S.ANNOUNCED, {"id": incident_id}
    else:
        found = yield S.SILENCED_BY, {"id": incident_id, "now": now}
        # A reminder comes every renotify_every: the timeline says once per window
        # that people were not told, not once per reminder.
        if found and not (kind == "renotify" and found[0]["said"]):
            yield add_entry(incident_id, records.entry(now, "silenced", MONITORD,
                                                       silenced(kind, found[0])))
    return rows


def silenced(kind: NoticeKind, window: Row) -> str:
    """What the timeline says of a notice a maintenance window kept back."""
    what = f"{window['host']}/{window['check_name']}" if window["check_name"] else window["host"]
    until = window["until"].astimezone(dt.UTC)
    return (f"nobody told ({kind}): {what} is in maintenance until "
            f"{until:%Y-%m-%d %H:%M:%S} UTC, set by {window['owner']}: {window['reason']}")
