"""Hostile events end to end, on both store backends: a real agent (``monitord run``)
whose outbox holds, between good problems, one event with a NUL byte in every text field
(as an older agent wrote it) and events with a far-future time in each time field,
delivering to a real central service (``monitord central``) on SQLite or PostgreSQL.

The NUL event arrives with each NUL shown as U+FFFD; each far-future event is refused
with a 400 naming its field and ends in the agent's dead letters with that answer; every
other event arrives, in order, and nothing is left waiting.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitord.agent.outbox import Limits, Outbox
from monitord.events import REPLACEMENT, Event, Step, new_id, utc_now
from monitord.model import Priority
from tests.central.test_schemathesis import postgres_database
from tests.processes import HOST, Agent, Central, Json, Processes, processes, read_rows, wait_for

NUL = "bad\x00byte"
SHOWN = f"bad{REPLACEMENT}byte"
FAR_FUTURE = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.timezone(-dt.timedelta(hours=14)))


@pytest.fixture
def running() -> Iterator[Processes]:
    with processes() as started:
        yield started


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with contextlib.ExitStack() as stack:
        yield stack.enter_context(postgres_database()) if request.param == "postgres" else ""


def problem(check: str, **fields: object) -> Event:
    return Event(id=new_id(), kind="problem", host=HOST, check=check, at=utc_now(),
                 priority=Priority.P3, status="CRITICAL", summary=f"{check} failing",
                 **fields)  # type: ignore[arg-type]


def with_nul_everywhere() -> Event:
    """A problem with a NUL in every text field, built without validation: the way an
    agent from before text was made safe on both sides wrote it to its outbox."""
    step = Step.model_construct(fix=NUL, argv=[NUL, NUL], exit_code=1, duration_seconds=0.5,
                                output=NUL, ended=NUL, reprobe_status="CRITICAL",
                                reprobe_summary=NUL)
    return Event.model_construct(
        id=new_id(), kind="problem", host=HOST, check="nul", at=utc_now(),
        priority=Priority.P3, status="CRITICAL", title=NUL, body=NUL, summary=NUL,
        reason=NUL, recurring=False, suppressed_by=None, steps=[step],
        interval_seconds=None, flapping=False, until=None, owner=NUL)


def far_future_events() -> list[Event]:
    """One event per time field, each far in the future."""
    return [problem("future-at").model_copy(update={"at": FAR_FUTURE}),
            Event(id=new_id(), kind="maintenance", host=HOST, check="future-until",
                  at=utc_now(), until=FAR_FUTURE, owner="carol", reason="forever")]


def fill(outbox_path: Path, events: list[Event]) -> None:
    outbox = Outbox(outbox_path, Limits(min_free_bytes=0))
    try:
        for event in events:
            assert outbox.put(event)
    finally:
        outbox.close()


def by_check(central: Central) -> dict[str, Json]:
    return {i["check"]: i for i in central.incidents(host=HOST)}


def test_bad_events_go_to_dead_letters_and_the_rest_arrives(
    running: Processes, tmp_path: Path, store_url: str
) -> None:
    central = Central(running, tmp_path / "central", store_url=store_url)
    central.start()
    agent = Agent(running, tmp_path / "agent", central, f"""
[healer]
grace = "0s"

[[check]]
name = "central-port"
probe = "tcp"
port = {central.port}
every = "1s"
timeout = "1s"
""")
    bad = far_future_events()
    fill(agent.outbox, [problem("first"), with_nul_everywhere(), bad[0], problem("middle"),
                        bad[1], problem("last")])
    raw = "".join(body for (body,) in read_rows(agent.outbox, "SELECT body FROM outbox"))
    assert "\\u0000" in raw                          # the outbox really holds the NULs

    proc = agent.start()
    arrived = wait_for(lambda: (found := by_check(central)).keys() >= {
        "first", "nul", "middle", "last"} and found, "the good events at the central service",
        alive=(proc, central.proc))
    dead = wait_for(lambda: len(rows := dead_letters(agent.outbox)) == 2 and rows,
                    "two dead letters", alive=(proc, central.proc))
    agent.stop()

    assert [json.loads(body)["id"] for body, _ in dead] == [e.id for e in bad]
    assert "400" in dead[0][1] and "events[0].at: expected a time at most a day" in dead[0][1]
    assert "400" in dead[1][1] and "events[0].until: expected a time at most a year" in dead[1][1]
    assert not {"future-at", "future-until"} & arrived.keys()
    assert agent.waiting() == [] and agent.waiting("maintenance") == []

    nul = central.incident(arrived["nul"]["id"])
    assert (nul["title"], nul["summary"]) == (SHOWN, SHOWN)
    [entry] = nul["timeline"]
    [step] = entry["steps"]
    assert step["argv"] == [SHOWN, SHOWN]
    assert {step[k] for k in ("fix", "output", "ended", "reprobe_summary")} == {SHOWN}
    assert "\\u0000" not in json.dumps(nul)
    order = [arrived[c]["id"] for c in ("first", "nul", "middle", "last")]
    assert order == sorted(order)                    # delivered in the outbox's order
    logged = agent.logged() + central.log.read_text()
    assert "Traceback" not in logged


def dead_letters(outbox: Path) -> list[tuple[str, str]]:
    return [(body, answer) for body, answer in
            read_rows(outbox, "SELECT body, answer FROM dead_letter ORDER BY seq")]
