"""The incident rules, written once: what each event does to incidents, how a key's incident
opens, reopens, takes repeats and raises its priority, how a child attaches to its
parent's incident, how people acknowledge, resolve and comment, how the sweep finds silent
hosts, how incidents climb their escalation chains and P1s are reminded, and which of
these changes make a notice. ``protocol`` states the rules; this module is where they
are decided, for every backend, with two of its own: ``actions`` (people's acknowledge,
resolve and comment) and ``escalation`` (the escalation round, the notices' claims, and
the end of a maintenance window), whose functions it re-exports for the backends.

Shape: each rule is a plain generator (a "script") that yields named statements with
their parameters (``ops.Op``) and is sent back their rows; it does no I/O of its own.
Why this shape, and not a backend interface of "find", "update", "insert" methods, or
async rules awaiting an executor:

- the decisions (reopen or open, raise or keep, notice or not) are in one place, and the
  backends keep only what really differs: each statement's SQL in their dialect, their
  connection, transaction and thread, their types, and their race-closing devices, which
  are statements like any other (``LOCK_KEY`` is an advisory lock on PostgreSQL and
  nothing on SQLite, whose BEGIN IMMEDIATE already runs one writer at a time);
- one rule runs whole inside one transaction of the backend's choosing, so dedup, reopen
  and the sweep stay single statements or one write transaction (never read-then-write
  across transactions), and PostgreSQL can run a transaction the server aborted as a
  deadlock again by starting a fresh script;
- the same script runs synchronously on SQLite's one worker thread (``ops.drive``: a
  batch is one transaction on that thread, with no hop to the event loop per statement,
  which an async rule would need) and asynchronously on an asyncpg connection
  (``ops.drive_async``).

What it costs: a few microseconds of Python per statement, which an ingest feels (a
batch runs thousands). So the hot path keeps statements few (a batch notes each host
once), and what it makes for every event is plain dicts and tuples (``records.Entry``,
``records.Trouble``, ``ops.Op``), not dataclasses; see the backends for their side.

Where the protocol leaves a choice, the rules:

- take their clock from the ``now`` each call is given (opened, seen, due and heartbeat
  times); a timeline entry made from an event carries the event's own ``at``;
- let the priority follow the current severity (``priority``): its own check's latest
  problem and its attached children's, until they recover; a reopened incident takes the
  new problem's priority and a due time counted from the reopening, and its children of
  before count no more;
- hold a flapping incident's notices until its check has been calm (``flapping``);
- count a host as down from the sweep that found it silent until its next heartbeat
  (``down_since``), so one outage opens one incident, even if a person resolves it early;
- read an empty ``status`` or ``priority`` filter as "any".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from monitord.events import Event, EventKind, time_problems
from monitord.store import flapping, priority, records
from monitord.store.actions import acknowledge as acknowledge
from monitord.store.actions import comment as comment
from monitord.store.actions import resolve as resolve
from monitord.store.escalation import claim_notices as claim_notices
from monitord.store.escalation import end_maintenance as end_maintenance
from monitord.store.escalation import escalate as escalate
from monitord.store.escalation import expire_windows
from monitord.store.escalation import finish_notice as finish_notice
from monitord.store.escalation import window_ended as window_ended
from monitord.store.model import SERVER_DOWN, ApplyReport, Incident, WindowSource
from monitord.store.ops import Script, aware
from monitord.store.ops import Statement as S
from monitord.store.policy import Policy
from monitord.store.queries import read_incident
from monitord.store.records import (
    MONITORD,
    Entry,
    Trouble,
    event_entry,
    ran,
    retold,
    server_down,
)
from monitord.store.tell import add_entry, tell

HEARTBEAT_MEMORY = dt.timedelta(days=7)    # how long a heartbeat's id is kept for dedup
FIX_RUN_MEMORY = dt.timedelta(days=90)     # how far back the windowed fix statistics go
AGENT: WindowSource = "agent"              # the source of the windows the agents' events set

# --- events ----------------------------------------------------------------------------


def apply(policy: Policy, events: Sequence[Event], now: dt.datetime) -> Script[ApplyReport]:
    """Apply each event not applied before, in order; the caller's transaction is the batch.

    The hosts of the batch's new events are noted first, once each and sorted (so two
    batches noting the same new hosts lock them in the same order), then every event
    counts its fix runs and its kind's handler decides what it does.
    """
    aware(now)
    _sane_times(events, now)
    claimed = yield from _claim(events, now)
    for host in sorted({host for host, _ in claimed}):
        yield S.NOTE_HOST, {"host": host}
    applied = 0
    for event in events:
        if (event.host, event.id) not in claimed:
            continue
        claimed.discard((event.host, event.id))   # a repeat in this batch is a duplicate
        applied += 1
        for step in ran(event):
            yield S.COUNT_FIX_RUN, {"host": event.host, "check": event.check, "fix": step.fix,
                                    "now": now, "worked": int(step.reprobe_status == "OK")}
            yield S.LOG_FIX_RUN, {"at": min(event.at, now), "host": event.host,
                                  "check": event.check, "fix": step.fix,
                                  "worked": int(step.reprobe_status == "OK")}
        yield from HANDLERS[event.kind](policy, event, now)
    return ApplyReport(applied=applied, duplicates=len(events) - applied)


def _sane_times(events: Sequence[Event], now: dt.datetime) -> None:
    """A time no store can keep (or no incident should carry) refuses the whole batch,
    before any statement: ValueError naming the event and the field."""
    for n, event in enumerate(events):
        for problem in time_problems(event, now):
            raise ValueError(f"events[{n}].{problem}")


def _claim(events: Sequence[Event], now: dt.datetime) -> Script[set[tuple[str, str]]]:
    """Record the events' (host, id); the set of those not applied before (the dedup: ids
    are unique per host)."""
    rows = yield S.CLAIM_EVENTS, {
        "now": now, "ids": [e.id for e in events], "kinds": [e.kind for e in events],
        "hosts": [e.host for e in events], "checks": [e.check for e in events],
        "ats": [e.at for e in events]}
    return {(row["host"], row["id"]) for row in rows}


def _problem(policy: Policy, event: Event, now: dt.datetime) -> Script[object]:
    """A suppressed child goes on its parent's open incident; any other opens its own.
    (Returns the script rather than running it: one generator fewer between each of its
    statements and the driver.)"""
    entry = event_entry(event, "problem")
    if event.suppressed_by is not None:
        return _attach(policy, event, now, entry)
    return open_incident(policy, records.trouble(event), now, entry)


def _attach(policy: Policy, event: Event, now: dt.datetime,
            entry: Entry) -> Script[object]:
    """Attach the child to its parent's open incident, whose priority it may raise; with
    no parent open, open its own."""
    parent = yield from _open_id(f"{event.host}/{event.suppressed_by}")
    if parent is None:
        return (yield from open_incident(policy, records.trouble(event), now, entry))
    yield S.LOCK_INCIDENT, {"id": parent}
    yield S.ATTACH, {"id": parent, "key": event.key, "priority": event.priority}
    yield add_entry(parent, retold(entry, "attached"))
    state = yield from priority.state(parent)
    yield from priority.follow(policy, parent, state, now, event.id, bool(state["flapping"]))
    return parent


def _healed(policy: Policy, event: Event, now: dt.datetime) -> Script[None]:
    """Count the fix that healed it (the last step's); note it on an open incident."""
    fix = event.steps[-1].fix if event.steps else "unknown"
    yield S.COUNT_HEALED, {"host": event.host, "check": event.check, "fix": fix, "now": now}
    incident_id = yield from _open_id(event.key)
    if incident_id is not None:
        yield add_entry(incident_id, event_entry(event, "healed"))


def _recovery(policy: Policy, event: Event, now: dt.datetime) -> Script[None]:
    """The check's own incident resolves (unless it flaps and must calm down first); an
    incident it was attached to as a child counts it no more."""
    entry = event_entry(event, "recovery")
    for row in (yield S.CHILD_RECOVERED, {"key": event.key}):
        yield S.LOCK_INCIDENT, {"id": row["id"]}
        yield add_entry(row["id"], entry)
        state = yield from priority.state(row["id"])
        yield from priority.follow(policy, row["id"], state, now, event.id, True)
    quiet_since = now - dt.timedelta(seconds=policy.flap_quiet)
    if not (yield from _resolve_key(event.key, now, entry, quiet_since)):
        yield from flapping.hold(event.key, "recovery", now, entry)


def _heartbeat(policy: Policy, event: Event, now: dt.datetime) -> Script[None]:
    """Note the host alive (a heartbeat made after a stop ends the stop); its "server
    down", if open, is resolved."""
    yield S.HEARTBEAT, {"host": event.host, "now": now, "interval": event.interval_seconds,
                        "at": event.at}
    said = records.entry(event.at, "recovery", event.host, "heartbeats resumed", event.id)
    yield from _resolve_key(f"{event.host}/{SERVER_DOWN}", now, said, now)


def _stopped(policy: Policy, event: Event, now: dt.datetime) -> Script[None]:
    """The agent was stopped on purpose: its silence is not "server down" for
    ``stop_limit``, counted from when the store heard it (its own clock: an agent's clock
    that is off cannot stretch or shorten the limit)."""
    yield S.STOPPED, {"host": event.host, "at": event.at, "now": now}


def _maintenance(policy: Policy, event: Event, now: dt.datetime) -> Script[None]:
    """A window of the agent's, of the host or one of its checks, began (``until`` set)
    or ended (``until`` None); a window a person set is not the agent's to end. One whose
    ``until`` has passed is a window the agent says has expired (it tells its windows
    again as it starts): it ends the store's only if that one ends by then, so one the
    agent set again since, for longer, stays."""
    where = {"host": event.host, "check": event.check or "", "source": AGENT}
    if event.until is None:
        yield from end_maintenance(event.host, event.check or "", AGENT, now)
    elif event.until <= now:
        for row in (yield S.EXPIRE_MAINTENANCE, {**where, "until": event.until}):
            yield from window_ended(row["host"], row["check_name"], row["until"], now)
    else:
        yield S.SET_MAINTENANCE, {**where, "until": event.until, "owner": event.owner,
                                  "reason": event.reason, "now": now}


# What each kind of event does (after its fix runs are counted).
HANDLERS: dict[EventKind, Callable[[Policy, Event, dt.datetime], Script[object]]] = {
    "problem": _problem, "healed": _healed, "recovery": _recovery, "heartbeat": _heartbeat,
    "stopped": _stopped, "maintenance": _maintenance}

# --- one key's incident ----------------------------------------------------------------


def open_incident(policy: Policy, trouble: Trouble, now: dt.datetime,
                  entry: Entry) -> Script[tuple[int, bool]]:
    """Reopen, then upsert the key's incident, then let its priority follow: (its id,
    whether it is new to people).

    Reopen first: a key's last incident, resolved within the window, opens again (and the
    upsert then finds it open). The upsert on the partial unique index opens one, or
    counts a repeat and takes its priority as the check's own. A new one (or reopened)
    starts an open period; a flapping one holds its notices (``flapping``).
    """
    params = _trouble_params(policy, trouble, now)
    yield S.LOCK_KEY, {"key": trouble["key"]}
    reopened = bool((yield S.REOPEN, params))
    [row] = yield S.UPSERT, params
    incident_id, new = int(row["id"]), reopened or row["count"] == 1
    if reopened:
        yield S.CLEAR_ATTACHED, {"id": incident_id}
    if new:
        yield S.START_PERIOD, {**params, "id": incident_id}
    yield add_entry(incident_id, retold(entry, "reopened") if reopened else entry)
    notice, quiet = yield from flapping.problem(policy, incident_id, row, trouble, new,
                                                now, entry)
    # Its priority is already the highest of its own and its children's; only a change
    # of its own can move it (the common repeat reads nothing more).
    if row["priority"] != trouble["priority"]:
        state = yield from priority.state(incident_id)
        yield from priority.follow(policy, incident_id, state, now, entry["event_id"],
                                   quiet or new)
    if notice is not None:
        yield from tell(incident_id, notice, now)
    return incident_id, new


def _trouble_params(policy: Policy, trouble: Trouble, now: dt.datetime) -> dict[str, object]:
    target = dt.timedelta(seconds=policy.target(trouble["priority"]))
    return {**trouble, "now": now, "due_at": now + target,
            "since": now - dt.timedelta(seconds=policy.reopen_window)}


def _open_id(key: str) -> Script[int | None]:
    rows = yield S.OPEN_FOR_KEY, {"key": key}
    return int(rows[0]["id"]) if rows else None


def _resolve_key(key: str, now: dt.datetime, entry: Entry,
                 quiet_since: dt.datetime) -> Script[bool]:
    """Resolve the key's open incident, if there is one (resolved by the store itself),
    unless it flaps and changed after ``quiet_since``; whether one was resolved."""
    rows = yield S.RESOLVE_KEY, {"key": key, "now": now, "who": MONITORD,
                                 "quiet_since": quiet_since}
    for row in rows:
        yield from resolved(row["id"], now, entry)
    return bool(rows)


def resolved(incident_id: int, now: dt.datetime, entry: Entry) -> Script[None]:
    """What follows the store's own resolution of an incident: its open period ends, the
    timeline says why, people hear of it."""
    yield S.END_PERIOD, {"id": incident_id, "now": now, "who": MONITORD}
    yield add_entry(incident_id, entry)
    yield from tell(incident_id, "resolved", now)

# --- the sweep -------------------------------------------------------------------------


def sweep(policy: Policy, now: dt.datetime) -> Script[list[Incident]]:
    """Mark silent hosts down and open their "server down"; forget week-old heartbeats
    and fix runs older than the fix statistics' longest window; settle flapping incidents
    calm for long enough."""
    aware(now)
    yield from expire_windows(now)
    yield S.FORGET_HEARTBEATS, {"before": now - HEARTBEAT_MEMORY}
    yield S.FORGET_FIX_RUNS, {"before": now - FIX_RUN_MEMORY}
    yield from flapping.settle(policy, now)
    silent = yield S.CLAIM_SILENT, {"now": now, **silence(policy)}
    opened = []
    for row in sorted(silent, key=lambda r: str(r["host"])):
        trouble, text = server_down(row["host"], row["last_heartbeat"],
                                    row["interval_seconds"], now, row["stopped_at"])
        entry = records.entry(now, "problem", MONITORD, text)
        incident_id, new = yield from open_incident(policy, trouble, now, entry)
        if new:
            opened.append((yield from read_incident(incident_id, with_timeline=False)))
    return opened


def silence(policy: Policy) -> dict[str, object]:
    """The parameters of a host's allowed silence: max(min_silence, missed x interval),
    and for a host stopped on purpose, the stop limit."""
    return {"min_silence": policy.min_silence, "missed": float(policy.missed_heartbeats),
            "stop_limit": policy.stop_limit}
