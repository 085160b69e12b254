"""Who is on call when: the time arithmetic of schedules, pure (every function is given
the instant it asks about; nothing here reads a clock).

A schedule's shift ``k`` starts on the local day ``anchor + k x period`` (period: 1 day or
7) at the hand-off time, in the schedule's IANA zone, and is ``members[k mod n]``'s. The
hand-off stays at its local time across daylight saving changes, so a shift is 23, 24 or
25 hours long (or 167, 168, 169 for a weekly one). A local time the clocks skip (02:30 on
the spring day in Europe) hands off at the same distance after the skipped hour (03:30);
one that happens twice (02:30 on the autumn day) hands off the first time (zoneinfo's
``fold=0``, PEP 495).

An override puts its person on call from its start to its end, whatever the rotation
says; of overlapping overrides, the newest (highest id) wins. So at every instant exactly
one person is on call for a schedule with members, and a ``Shift`` is a stretch of time
with one person: the rotation's hand-offs and the overrides' ends cut time into them, and
neighbours with the same person are one shift.

``on_call``, ``shifts`` and ``now_and_next`` answer for any instant and any override a
database holds: an instant before 1900 or after 9000 is taken as that bound (no clock
reads them, and date arithmetic ends at the year 9999), ``shifts`` looks at most
``MAX_WINDOW`` ahead, and ``now_and_next`` looks no further than ``MAX_OVERRIDE_AHEAD``
past an override's end (the store takes none that ends later; an older row that does is
shown as "nobody else; no hand-off ahead").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo

from monitord.store.people import MAX_OVERRIDE_AHEAD, Override, Schedule

PERIOD_DAYS = {"daily": 1, "weekly": 7}
MAX_SHIFTS = 2000         # hand-offs looked at for one question, whatever the window
EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)    # instants are taken within these
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)
MAX_WINDOW = dt.timedelta(days=3660)    # shifts() looks at most this far past its start


@dataclass(frozen=True)
class Shift:
    """``person`` on call from ``starts_at`` to ``ends_at`` (UTC); ``override`` if an
    override puts them there. ``starts_at`` None: since before the window looked at."""

    person: str | None
    starts_at: dt.datetime | None
    ends_at: dt.datetime
    override: Override | None = None


@cache
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def handoff(schedule: Schedule, k: int) -> dt.datetime:
    """When shift ``k`` starts (UTC); shift 0 is ``members[0]``'s first."""
    day = schedule.anchor + dt.timedelta(days=k * PERIOD_DAYS[schedule.rotation])
    local = dt.datetime.combine(day, schedule.handoff, tzinfo=zone(schedule.zone))
    return local.astimezone(dt.UTC)


def shift_number(schedule: Schedule, at: dt.datetime) -> int:
    """The rotation's shift that ``at`` falls in: handoff(k) <= at < handoff(k + 1)."""
    local = at.astimezone(zone(schedule.zone))
    k = (local.date() - schedule.anchor).days // PERIOD_DAYS[schedule.rotation]
    # The local day is right to within a day of the hand-off, so each loop runs once at
    # most; bounded all the same.
    for _ in range(3):
        if handoff(schedule, k) > at:
            k -= 1
        elif handoff(schedule, k + 1) <= at:
            k += 1
        else:
            return k
    raise AssertionError(f"no shift of {schedule.name} holds {at}")   # monotonic: never


def rotation_person(schedule: Schedule, at: dt.datetime) -> str | None:
    """Whose turn it is at ``at`` by the rotation alone (None: no members)."""
    if not schedule.members:
        return None
    return schedule.members[shift_number(schedule, at) % len(schedule.members)]


def overriding(schedule: Schedule, at: dt.datetime) -> Override | None:
    """The override in force at ``at``: the newest of those that hold it."""
    holding = [o for o in schedule.overrides if o.starts_at <= at < o.ends_at]
    return max(holding, key=lambda o: o.id, default=None)


def on_call(schedule: Schedule, at: dt.datetime) -> str | None:
    """The one person on call at ``at`` (None only for a schedule without members)."""
    at = within(at)
    override = overriding(schedule, at)
    return override.person if override is not None else rotation_person(schedule, at)


def shifts(schedule: Schedule, since: dt.datetime, until: dt.datetime) -> list[Shift]:
    """The shifts that cover [since, until), in order, each with a different person from
    the one before; the first starts at ``since`` (its ``starts_at`` None if it started
    earlier) and the last ends at ``until`` (or later: its real end)."""
    since = within(since)
    until = min(until, since + MAX_WINDOW)
    cuts = {since, *_handoffs(schedule, since, until)}
    cuts.update(t for o in schedule.overrides for t in (o.starts_at, o.ends_at)
                if since < t < until)
    found: list[Shift] = []
    for start in sorted(cuts):
        override = overriding(schedule, start)
        person = override.person if override is not None else rotation_person(schedule, start)
        if found and found[-1].person == person:
            continue
        if found:
            found[-1] = Shift(found[-1].person, found[-1].starts_at, start, found[-1].override)
        found.append(Shift(person, start if found else None, until, override))
    return found


def now_and_next(schedule: Schedule, now: dt.datetime) -> tuple[Shift, Shift | None]:
    """Who is on call at ``now`` (since when, until when) and who comes after them (None:
    the same person for as far as the rotation and the overrides go)."""
    now = within(now)
    period = dt.timedelta(days=PERIOD_DAYS[schedule.rotation])
    reach = period * (len(schedule.members) + 1)
    ends = [min(o.ends_at, now + MAX_OVERRIDE_AHEAD) for o in schedule.overrides
            if o.ends_at > now]
    until = max([now + reach, *(e + reach for e in ends)])
    around = shifts(schedule, now - reach, until)
    for index, shift in enumerate(around):
        if shift.ends_at > now:
            later = around[index + 1] if index + 1 < len(around) else None
            # Begun before the window: an override's person since the override began.
            since = shift.starts_at or (shift.override.starts_at if shift.override else None)
            return Shift(shift.person, since, shift.ends_at, shift.override), later
    raise AssertionError("the shifts cover now")      # shifts() covers [now - reach, until)


def within(at: dt.datetime) -> dt.datetime:
    """``at``, or the nearer of EARLIEST and LATEST when it lies outside them."""
    return min(max(at, EARLIEST), LATEST)


def _handoffs(schedule: Schedule, since: dt.datetime, until: dt.datetime) -> list[dt.datetime]:
    """The rotation's hand-offs in (since, until), at most MAX_SHIFTS of them."""
    first = shift_number(schedule, since) + 1
    found = []
    for k in range(first, first + MAX_SHIFTS):
        moment = handoff(schedule, k)
        if moment >= until:
            break
        found.append(moment)
    return found


def local_text(schedule: Schedule, at: dt.datetime | None) -> str:
    """``at`` in the schedule's zone, like "Sun 29 Mar 09:00 CEST"."""
    if at is None:
        return "-"
    try:
        return at.astimezone(zone(schedule.zone)).strftime("%a %d %b %Y %H:%M %Z")
    except OverflowError:       # the year 9999 east of UTC: as it is, in UTC
        return at.astimezone(dt.UTC).strftime("%a %d %b %Y %H:%M UTC")
