"""The escalation round and the notices' claims, and the end of a maintenance window: how
open incidents climb their escalation chains and P1s are reminded, how notices are leased
and finished, and what a window's end lets go of (found by the sweep and the escalation
round alike, or ended by an agent or a person). ``rules`` holds the other incident rules
and re-exports these; the same shape (scripts of ``ops`` statements) and the same
protocol (``protocol``) apply."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from monitord.model import Priority
from monitord.store import records
from monitord.store.model import Escalation, Notice, NoticeKind, WindowSource
from monitord.store.ops import Rows, Script, aware
from monitord.store.ops import Statement as S
from monitord.store.policy import Policy
from monitord.store.records import MONITORD
from monitord.store.tell import add_entry, tell

REMINDED = Priority.P1                     # the priority whose open incidents are reminded

# --- the end of a maintenance window ---------------------------------------------------


def end_maintenance(host: str, check: str, source: WindowSource | None,
                    now: dt.datetime) -> Script[bool]:
    """End ``source``'s window of the host (``check`` "") or of its check, or, with no
    source (a person, through the console or the API), every source's; whether one ran."""
    aware(now)
    rows = yield S.END_MAINTENANCE, {"host": host, "check": check, "source": source}
    for row in rows:
        yield from window_ended(row["host"], row["check_name"], min(row["until"], now), now)
    return any(row["until"] > now for row in rows)


def expire_windows(now: dt.datetime) -> Script[None]:
    """The windows over by ``now`` are removed, and what they held is let go."""
    for row in (yield S.CLAIM_EXPIRED, {"now": now}):
        yield from window_ended(row["host"], row["check_name"], row["until"], now)


def window_ended(host: str, check: str, end: dt.datetime, now: dt.datetime) -> Script[None]:
    """A window of the host (``check`` "") or of its check ended at ``end``: the incidents
    it held, and no other window holds, have their escalation clock restarted from
    ``end`` (no level was reached while it ran); an open one people were never told of
    gets its "opened" notice now, once (being told marks it announced)."""
    rows = yield S.WINDOW_ENDED, {"host": host, "check": check, "until": end, "now": now}
    what = f"{host}/{check}" if check else host
    for row in rows:
        if row["status"] == "open" and not row["announced"]:
            yield add_entry(row["id"], records.entry(
                now, "maintenance", MONITORD,
                f"the maintenance window of {what} is over: people are told now"))
            yield from tell(row["id"], "opened", now)


# --- escalation and notices ------------------------------------------------------------


def escalate(policy: Policy, now: dt.datetime, rules: Escalation) -> Script[list[Notice]]:
    """Let go of what the windows over by now held, climb the escalation chains, then
    remind open P1s; the notices it made (an incident a window held is neither climbed
    nor reminded while the window runs)."""
    aware(now)
    made: list[Notice] = []
    yield from expire_windows(now)
    if rules.climbs:
        made += yield from _climb(policy, now, rules)
    if rules.renotify_every > 0:
        made += yield from _remind(now, dt.timedelta(seconds=rules.renotify_every))
    return made


def _climb(policy: Policy, now: dt.datetime, rules: Escalation) -> Script[list[Notice]]:
    """An open incident goes one level up when the next of its priority's shares of its
    response target has passed (``escalate_at`` each, or its escalation policy's steps):
    level n+1 is due at (due_at - target) + shares[n+1] x target."""
    targets = {str(priority): policy.target(priority) for priority in Priority}
    shares = {str(priority): list(rules.shares(priority)) for priority in Priority}
    rows = yield S.ESCALATE, {"now": now, "shares": shares, "targets": targets}
    return (yield from _notices(rows, "escalated", now))


def _remind(now: dt.datetime, every: dt.timedelta) -> Script[list[Notice]]:
    """An open P1 nobody was told of for ``every`` is told again, with at most one
    reminder waiting per incident."""
    rows = yield S.RENOTIFY, {"now": now, "every": every, "priority": REMINDED}
    return (yield from _notices(rows, "renotify", now))


def _notices(rows: Rows, kind: NoticeKind, now: dt.datetime) -> Script[list[Notice]]:
    """A notice of ``kind`` for each incident in ``rows`` (by its ``id``)."""
    made = []
    for row in rows:
        for notice in (yield from tell(row["id"], kind, now)):
            made.append(records.notice(notice))
    return made


def claim_notices(now: dt.datetime, lease_seconds: float, limit: int) -> Script[list[Notice]]:
    """Lease due notices until now + lease_seconds; oldest first."""
    until = aware(now) + dt.timedelta(seconds=lease_seconds)
    rows = yield S.CLAIM_NOTICES, {"now": now, "until": until, "limit": limit}
    return sorted((records.notice(row) for row in rows), key=lambda n: n.id)


def finish_notice(notice: Notice, done: Sequence[str], now: dt.datetime,
                  retry_at: dt.datetime | None, error: str, text: str) -> Script[bool]:
    """End the claim ``notice`` is, or set its retry; False if its lease was lost."""
    rows = yield S.FINISH_NOTICE, {
        "id": notice.id, "attempts": notice.attempts, "done": list(done), "now": aware(now),
        "retry_at": retry_at, "error": error}
    if rows and text:
        yield add_entry(rows[0]["incident_id"], records.entry(now, "notified", MONITORD, text))
    return bool(rows)
