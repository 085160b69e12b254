"""Who is on call when (monitord.central.notify.rotation.py): hand-offs keep their local
time across the daylight saving changes of Europe/Berlin in 2026 (29 March: 02:00 CET
becomes 03:00 CEST; 25 October: 03:00 CEST becomes 02:00 CET), overrides win over the
rotation, and, for any schedule and instant hypothesis finds, exactly one person is on
call and the hand-offs only move forward."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from monitord.central.notify.rotation import (
    handoff,
    local_text,
    now_and_next,
    on_call,
    shift_number,
    shifts,
)
from monitord.store.people import Override, RotationKind, Schedule

BERLIN = ZoneInfo("Europe/Berlin")
HOURS = dt.timedelta(hours=1)


def berlin(*parts: int, fold: int = 0) -> dt.datetime:
    """A Berlin wall-clock time, as the UTC instant it is."""
    return dt.datetime(*parts, tzinfo=BERLIN, fold=fold).astimezone(dt.UTC)  # type: ignore[misc]


def rota(rotation: RotationKind = "daily", at: dt.time = dt.time(9, 0),
         members: tuple[str, ...] = ("alice", "bob", "carol"),
         anchor: dt.date = dt.date(2026, 3, 23), overrides: tuple[Override, ...] = (),
         zone: str = "Europe/Berlin") -> Schedule:
    return Schedule("primary", zone, rotation, at, anchor, members, overrides)


def utc_hours(start: dt.datetime, end: dt.datetime) -> float:
    return (end - start) / HOURS


# --- across the spring change (29 March 2026) ------------------------------------------

def test_a_daily_hand_off_stays_at_nine_local_across_the_spring_change() -> None:
    schedule = rota()
    saturday, sunday, monday = (handoff(schedule, k) for k in (5, 6, 7))
    assert saturday == berlin(2026, 3, 28, 9) == dt.datetime(2026, 3, 28, 8, tzinfo=dt.UTC)
    assert sunday == berlin(2026, 3, 29, 9) == dt.datetime(2026, 3, 29, 7, tzinfo=dt.UTC)
    assert [utc_hours(saturday, sunday), utc_hours(sunday, monday)] == [23, 24]
    assert local_text(schedule, sunday) == "Sun 29 Mar 2026 09:00 CEST"
    # Saturday's shift (k = 5, carol's) runs to 09:00 CEST on Sunday, alice's starts then.
    assert on_call(schedule, sunday - dt.timedelta(seconds=1)) == "carol"
    assert on_call(schedule, sunday) == "alice"


def test_a_weekly_hand_off_across_the_spring_change_is_a_week_of_167_hours() -> None:
    schedule = rota("weekly", members=("alice", "bob"))
    first, second = handoff(schedule, 0), handoff(schedule, 1)
    assert (first, second) == (berlin(2026, 3, 23, 9), berlin(2026, 3, 30, 9))
    assert utc_hours(first, second) == 167
    assert on_call(schedule, berlin(2026, 3, 29, 3, 30)) == "alice"
    assert on_call(schedule, berlin(2026, 3, 30, 8, 59)) == "alice"
    assert on_call(schedule, berlin(2026, 3, 30, 9)) == "bob"


def test_a_hand_off_in_the_skipped_hour_comes_an_hour_later_by_the_clock() -> None:
    schedule = rota(at=dt.time(2, 30))
    sunday = handoff(schedule, 6)
    assert sunday == dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC)     # 03:30 CEST
    assert local_text(schedule, sunday) == "Sun 29 Mar 2026 03:30 CEST"
    assert local_text(schedule, handoff(schedule, 7)) == "Mon 30 Mar 2026 02:30 CEST"


# --- across the autumn change (25 October 2026) ----------------------------------------

def test_a_daily_hand_off_stays_at_nine_local_across_the_autumn_change() -> None:
    schedule = rota(anchor=dt.date(2026, 10, 19))
    saturday, sunday, monday = (handoff(schedule, k) for k in (5, 6, 7))
    assert (saturday, sunday) == (berlin(2026, 10, 24, 9), berlin(2026, 10, 25, 9))
    assert [utc_hours(saturday, sunday), utc_hours(sunday, monday)] == [25, 24]
    assert local_text(schedule, sunday) == "Sun 25 Oct 2026 09:00 CET"


def test_a_hand_off_in_the_repeated_hour_is_its_first_occurrence() -> None:
    schedule = rota(at=dt.time(2, 30), anchor=dt.date(2026, 10, 19))
    sunday = handoff(schedule, 6)
    assert sunday == berlin(2026, 10, 25, 2, 30, fold=0) == dt.datetime(
        2026, 10, 25, 0, 30, tzinfo=dt.UTC)
    assert local_text(schedule, sunday) == "Sun 25 Oct 2026 02:30 CEST"


def test_a_weekly_hand_off_across_the_autumn_change_is_a_week_of_169_hours() -> None:
    schedule = rota("weekly", dt.time(18, 0), ("alice", "bob"), dt.date(2026, 10, 16))
    assert utc_hours(handoff(schedule, 1), handoff(schedule, 2)) == 169
    assert on_call(schedule, berlin(2026, 10, 30, 17, 59)) == "bob"
    assert on_call(schedule, berlin(2026, 10, 30, 18)) == "alice"


def test_an_override_spanning_the_autumn_change_holds_for_its_37_real_hours() -> None:
    # Saturday 20:00 to Monday 08:00, Berlin time: 37 hours, the night being 25 long.
    starts, ends = berlin(2026, 10, 24, 20), berlin(2026, 10, 26, 8)
    assert utc_hours(starts, ends) == 37
    cover = Override(1, "dave", starts, ends, "alice")
    schedule = rota(anchor=dt.date(2026, 10, 19), overrides=(cover,))
    assert on_call(schedule, starts - dt.timedelta(seconds=1)) == "carol"   # Sat's shift
    assert on_call(schedule, berlin(2026, 10, 25, 2, 30, fold=1)) == "dave"
    assert on_call(schedule, berlin(2026, 10, 25, 9)) == "dave"  # the rotation's Sunday
    assert on_call(schedule, ends) == "alice"            # the rest of Sunday's shift
    assert [(s.person, s.starts_at, s.ends_at) for s in shifts(
        schedule, berlin(2026, 10, 24, 12), berlin(2026, 10, 26, 12))] == [
        ("carol", None, starts), ("dave", starts, ends),
        ("alice", ends, berlin(2026, 10, 26, 9)),
        ("bob", berlin(2026, 10, 26, 9), berlin(2026, 10, 26, 12))]


def test_now_and_next_name_the_person_and_the_hand_off_in_local_time() -> None:
    cover = Override(1, "dave", berlin(2026, 3, 29, 9), berlin(2026, 3, 29, 21), "alice")
    schedule = rota(overrides=(cover,))
    now, following = now_and_next(schedule, berlin(2026, 3, 29, 8))
    assert (now.person, now.starts_at, now.ends_at) == (
        "carol", berlin(2026, 3, 28, 9), berlin(2026, 3, 29, 9))
    assert following is not None and following.override == cover
    assert (following.person, following.ends_at) == ("dave", berlin(2026, 3, 29, 21))
    # Nobody else comes after the only member.
    alone, after = now_and_next(rota(members=("alice",)), berlin(2026, 3, 29, 8))
    assert (alone.person, after) == ("alice", None)


def test_the_newest_of_overlapping_overrides_wins() -> None:
    older = Override(1, "dave", berlin(2026, 3, 28, 0), berlin(2026, 3, 30, 0))
    newer = Override(2, "erin", berlin(2026, 3, 29, 0), berlin(2026, 3, 29, 12))
    schedule = rota(overrides=(newer, older))
    assert [on_call(schedule, berlin(2026, 3, 29, h)) for h in (0, 11, 12)] == [
        "erin", "erin", "dave"]


# --- properties -------------------------------------------------------------------------

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC",
         "America/Santiago", "Pacific/Chatham"]
PEOPLE = ["alice", "bob", "carol", "dave", "erin"]
INSTANTS = st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2035, 1, 1),
                        timezones=st.just(dt.UTC))


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    members = tuple(draw(st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=5)))
    starts = draw(st.lists(INSTANTS, max_size=4))
    overrides = tuple(
        Override(n, draw(st.sampled_from(PEOPLE)), start,
                 start + dt.timedelta(minutes=draw(st.integers(1, 60 * 24 * 10))))
        for n, start in enumerate(starts, start=1))
    return Schedule("s", draw(st.sampled_from(ZONES)), draw(st.sampled_from(["daily", "weekly"])),
                    draw(st.times()).replace(microsecond=0),
                    draw(st.dates(dt.date(2020, 1, 1), dt.date(2034, 1, 1))), members, overrides)


@settings(max_examples=300, deadline=None)
@given(schedule=schedules(), at=INSTANTS)
def test_exactly_one_member_or_overrider_is_on_call_at_any_instant(
        schedule: Schedule, at: dt.datetime) -> None:
    person = on_call(schedule, at)
    assert person in schedule.members or person in {o.person for o in schedule.overrides}
    k = shift_number(schedule, at)
    assert handoff(schedule, k) <= at < handoff(schedule, k + 1)
    current, _ = now_and_next(schedule, at)
    assert current.person == person
    assert (current.starts_at is None or current.starts_at <= at) and at < current.ends_at


@settings(max_examples=300, deadline=None)
@given(schedule=schedules(), k=st.integers(-500, 500))
def test_hand_offs_only_move_forward_and_keep_their_local_time_when_it_exists(
        schedule: Schedule, k: int) -> None:
    first, second = handoff(schedule, k), handoff(schedule, k + 1)
    assert first < second
    local = first.astimezone(ZoneInfo(schedule.zone))
    back = dt.datetime.combine(local.date(), schedule.handoff, tzinfo=ZoneInfo(schedule.zone))
    exists = back.astimezone(dt.UTC).astimezone(ZoneInfo(schedule.zone)).replace(
        tzinfo=None) == back.replace(tzinfo=None)
    if exists:
        assert local.time() == schedule.handoff


@settings(max_examples=200, deadline=None)
@given(schedule=schedules(), since=INSTANTS, hours=st.integers(1, 24 * 30))
def test_shifts_cover_a_window_without_gaps_or_repeats(
        schedule: Schedule, since: dt.datetime, hours: int) -> None:
    until = since + dt.timedelta(hours=hours)
    found = shifts(schedule, since, until)
    assert found[0].starts_at is None and found[-1].ends_at == until
    for before, after in itertools.pairwise(found):
        assert before.ends_at == after.starts_at
        assert before.person != after.person
        assert after.starts_at is not None and since < after.starts_at < until
        assert on_call(schedule, after.starts_at) == after.person


# --- far instants and overrides: never an exception -----------------------------------

ANY_INSTANT = st.datetimes(min_value=dt.datetime.min + dt.timedelta(days=2),
                           max_value=dt.datetime.max - dt.timedelta(days=2),
                           timezones=st.just(dt.UTC))


@st.composite
def far_schedules(draw: st.DrawFn) -> Schedule:
    """Schedules with overrides that may end at any instant, up to the last one a
    datetime holds (as "9999-12-31" typed before overrides were bounded)."""
    overrides = []
    for n, start in enumerate(draw(st.lists(ANY_INSTANT, max_size=4)), start=1):
        ends = draw(st.one_of(
            st.just(dt.datetime.max.replace(tzinfo=dt.UTC)),
            st.datetimes(min_value=start.replace(tzinfo=None) + dt.timedelta(seconds=1),
                         max_value=dt.datetime.max, timezones=st.just(dt.UTC))))
        overrides.append(Override(n, draw(st.sampled_from(PEOPLE)), start, ends))
    members = tuple(draw(st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=5)))
    return Schedule("s", draw(st.sampled_from(ZONES)), draw(st.sampled_from(["daily", "weekly"])),
                    draw(st.times()).replace(microsecond=0),
                    draw(st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31))), members,
                    tuple(overrides))


@settings(max_examples=300, deadline=None)
@given(schedule=far_schedules(), at=st.one_of(ANY_INSTANT, INSTANTS))
def test_any_instant_and_any_override_end_never_raise(schedule: Schedule,
                                                      at: dt.datetime) -> None:
    current, following = now_and_next(schedule, at)
    assert current.person == on_call(schedule, at)
    assert following is None or following.starts_at == current.ends_at
    for shown in (current.starts_at, current.ends_at, at,
                  *(t for o in schedule.overrides for t in (o.starts_at, o.ends_at))):
        assert local_text(schedule, shown)


def test_an_override_until_the_year_9999_shows_its_person_and_no_hand_off() -> None:
    forever = Override(1, "dave", berlin(2026, 3, 28, 18),
                       dt.datetime(9999, 12, 31, 23, 59, tzinfo=dt.UTC))
    schedule = rota(overrides=(forever,))
    current, following = now_and_next(schedule, berlin(2026, 3, 29, 8))
    assert (current.person, current.starts_at, following) == (
        "dave", berlin(2026, 3, 28, 18), None)
    assert local_text(schedule, forever.ends_at) == "Fri 31 Dec 9999 23:59 UTC"
