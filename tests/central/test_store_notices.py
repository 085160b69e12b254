"""Notices, SLA escalation, people and secrets in the store, against every backend.

The store makes a notice in the transaction of each change people must hear of, leases
due notices to one caller at a time, and climbs escalation chains by the clock it is
given (``minutes(n)`` after T0; P1's target is 15 minutes).
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from monitord.errors import Conflict
from monitord.events import Step
from monitord.store.migrations import schema_files
from monitord.store.protocol import Escalation, Store
from monitord.store.sqlite import SQLiteStore
from tests.central.conftest import POLICY, OpenStore, healed, minutes, problem, recovery, step

LEASE_SECONDS = 300.0
CLIMB = Escalation(escalate_at=0.5, max_level=2)           # a level every 7.5 min of a P1
REMIND = Escalation(renotify_every=600.0)                  # an open P1 every 10 min


async def kinds(store: Store, at_minutes: float = 0) -> list[tuple[int, str, int]]:
    """Claim every due notice and finish it; (incident, kind, level) in claim order."""
    seen = []
    for _ in range(20):                       # bounded: each round finishes what it claims
        claimed = await store.claim_notices(minutes(at_minutes), LEASE_SECONDS)
        if not claimed:
            return seen
        for notice in claimed:
            seen.append((notice.incident_id, notice.kind, notice.level))
            await store.finish_notice(notice, ("mail",), minutes(at_minutes), None)
    raise AssertionError(f"notices kept coming: {seen}")


# --- which changes make notices ----------------------------------------------------------

async def test_each_change_people_must_hear_of_makes_one_notice(store: Store) -> None:
    await store.apply([problem("web", "P2")], minutes(0))
    await store.apply([problem("web", "P2")], minutes(1))            # a repeat: nothing
    await store.apply([problem("web", "P1")], minutes(2))            # raised: escalated
    [incident] = await store.incidents()
    await store.comment(incident.id, "alice", "looking", minutes(3))  # a comment: nothing
    await store.acknowledge(incident.id, "alice", "", minutes(4))
    await store.apply([recovery("web")], minutes(5))
    await store.apply([problem("web", "P3")], minutes(6))            # reopened: opened
    await store.resolve(incident.id, "alice", "done", minutes(7))
    await store.apply([recovery("db")], minutes(8))                  # nothing was open
    assert await kinds(store, 8) == [
        (incident.id, "opened", 0), (incident.id, "escalated", 0),
        (incident.id, "acknowledged", 0), (incident.id, "resolved", 0),
        (incident.id, "opened", 0), (incident.id, "resolved", 0)]


async def test_a_rolled_back_batch_makes_no_notice(open_store: OpenStore) -> None:
    strict = await open_store(replace(POLICY, targets={"P1": 900.0}))   # no P2 target
    with pytest.raises(ValueError):
        await strict.apply([problem("web", "P1"), problem("disk", "P2")], minutes(0))
    assert await strict.claim_notices(minutes(0), LEASE_SECONDS) == []
    assert await strict.incidents() == []


# --- claiming and finishing --------------------------------------------------------------

async def test_a_claimed_notice_is_leased_until_it_is_finished_or_the_lease_runs_out(
        store: Store) -> None:
    await store.apply([problem("web", "P1")], minutes(0))
    [first] = await store.claim_notices(minutes(0), LEASE_SECONDS)
    assert (first.kind, first.attempts, first.done) == ("opened", 1, ())
    assert await store.claim_notices(minutes(1), LEASE_SECONDS) == []       # leased
    [again] = await store.claim_notices(minutes(5), LEASE_SECONDS)         # lease ran out
    assert (again.id, again.attempts) == (first.id, 2)
    await store.finish_notice(again, ("mail",), minutes(5), minutes(7), "HTTP 500")
    assert await store.claim_notices(minutes(6), LEASE_SECONDS) == []       # not yet
    [retry] = await store.claim_notices(minutes(7), LEASE_SECONDS)
    assert (retry.attempts, retry.done) == (3, ("mail",))
    await store.finish_notice(retry, ("mail", "hook"), minutes(7), None)
    assert await store.claim_notices(minutes(60), LEASE_SECONDS) == []      # finished


async def test_a_notice_waits_while_an_older_one_is_on_its_first_round(
        store: Store) -> None:
    await store.apply([problem("web", "P1")], minutes(0))
    await store.apply([problem("db", "P2")], minutes(0))
    await store.apply([recovery("web")], minutes(1))
    web, db = await store.claim_notices(minutes(1), LEASE_SECONDS)
    assert (web.kind, db.kind) == ("opened", "opened")          # web's resolved waits
    assert await store.claim_notices(minutes(1), LEASE_SECONDS) == []
    await store.finish_notice(db, ("mail",), minutes(1), None)
    await store.finish_notice(web, ("hook",), minutes(1), minutes(9), "timeout")
    # web's opened now waits for a retry: that holds back nothing.
    [resolved] = await store.claim_notices(minutes(2), LEASE_SECONDS)
    assert (resolved.incident_id, resolved.kind) == (web.incident_id, "resolved")
    await store.finish_notice(resolved, ("mail", "hook"), minutes(2), None)
    [retried] = await store.claim_notices(minutes(9), LEASE_SECONDS)
    assert (retried.id, retried.done) == (web.id, ("hook",))


async def test_a_claim_that_lost_its_lease_cannot_finish_the_notice(store: Store) -> None:
    await store.apply([problem("web", "P1")], minutes(0))
    [slow] = await store.claim_notices(minutes(0), LEASE_SECONDS)
    [fast] = await store.claim_notices(minutes(6), LEASE_SECONDS)   # the lease ran out
    assert await store.finish_notice(fast, ("mail",), minutes(6), None)
    assert not await store.finish_notice(slow, ("mail",), minutes(7), minutes(8), "late")
    assert await store.claim_notices(minutes(60), LEASE_SECONDS) == []   # still finished


async def test_finishing_with_a_text_puts_it_on_the_timeline(store: Store) -> None:
    await store.apply([problem("web", "P1")], minutes(0))
    [notice] = await store.claim_notices(minutes(0), LEASE_SECONDS)
    await store.finish_notice(notice, ("oncall-mail",), minutes(1), None,
                              text="told oncall-mail")
    incident = await store.incident(notice.incident_id)
    assert [(e.kind, e.who, e.text) for e in incident.timeline][-1] == (
        "notified", "monitord", "told oncall-mail")


# --- escalation --------------------------------------------------------------------------

async def test_an_unacknowledged_incident_climbs_its_chain_by_shares_of_its_target(
        store: Store) -> None:
    await store.apply([problem("web", "P1")], minutes(0))
    await store.apply([problem("db", "P2")], minutes(0))        # 2 h target: 1 h a level
    await kinds(store)
    assert await store.escalate(minutes(7), CLIMB) == []
    [up] = await store.escalate(minutes(7.5), CLIMB)
    assert (up.kind, up.level) == ("escalated", 1)
    assert await store.escalate(minutes(7.5), CLIMB) == []       # once per level
    [top] = await store.escalate(minutes(15), CLIMB)
    assert top.level == 2
    assert await store.escalate(minutes(59), CLIMB) == []        # the chain's end
    [db] = await store.escalate(minutes(60), CLIMB)
    assert db.incident_id != up.incident_id and db.level == 1
    incident = await store.incident(up.incident_id)
    assert incident.escalation_level == 2


async def test_acknowledging_stops_the_climb_and_reopening_starts_it_again(
        store: Store) -> None:
    await store.apply([problem("web", "P1")], minutes(0))
    [incident] = await store.incidents()
    await store.escalate(minutes(8), CLIMB)
    await store.acknowledge(incident.id, "alice", "", minutes(9))
    assert await store.escalate(minutes(30), CLIMB) == []
    await store.apply([recovery("web")], minutes(31))
    await store.apply([problem("web", "P1")], minutes(40))       # reopened at level 0
    assert (await store.incident(incident.id)).escalation_level == 0
    assert await store.escalate(minutes(47), CLIMB) == []
    [again] = await store.escalate(minutes(47.5), CLIMB)
    assert (again.incident_id, again.level) == (incident.id, 1)


async def test_an_incident_has_one_reminder_waiting_at_most(store: Store) -> None:
    await store.apply([problem("web", "P1")], minutes(0))
    [opened] = await store.claim_notices(minutes(0), LEASE_SECONDS)
    await store.finish_notice(opened, (), minutes(0), None)
    [reminder] = await store.escalate(minutes(10), REMIND)
    assert await store.escalate(minutes(20), REMIND) == []      # the first is not out yet
    [claimed] = await store.claim_notices(minutes(20), LEASE_SECONDS)
    await store.finish_notice(claimed, ("mail",), minutes(20), None)
    assert claimed.id == reminder.id
    assert [n.kind for n in await store.escalate(minutes(30), REMIND)] == ["renotify"]


async def test_a_second_acknowledgement_keeps_the_first_and_tells_nobody(
        store: Store) -> None:
    await store.apply([problem("web", "P1")], minutes(0))
    [incident] = await store.incidents()
    await store.acknowledge(incident.id, "alice", "", minutes(10))
    again = await store.acknowledge(incident.id, "bob", "me too", minutes(20))
    assert (again.acknowledged_by, again.acknowledged_at) == ("alice", minutes(10))
    assert [e.who for e in again.timeline if e.kind == "acknowledged"] == ["alice", "bob"]
    assert await kinds(store, 20) == [(incident.id, "opened", 0),
                                      (incident.id, "acknowledged", 0)]


async def test_a_reopened_incident_counts_from_its_reopening(store: Store) -> None:
    await store.apply([problem("web", "P1")], minutes(0))
    await store.apply([recovery("web")], minutes(1))
    await store.apply([problem("web", "P1")], minutes(50))
    [incident] = await store.opened_between(minutes(30), minutes(60))
    assert (incident.opened_at, incident.reopened_at) == (minutes(0), minutes(50))
    assert incident.answer_from == minutes(50)
    assert await store.opened_between(minutes(0), minutes(30)) == []


async def test_an_open_p1_is_reminded_at_its_interval_until_acknowledged(
        store: Store) -> None:
    await store.apply([problem("web", "P1"), problem("db", "P2")], minutes(0))
    [p1] = await store.incidents(priority=("P1",))
    assert await store.escalate(minutes(9), REMIND) == []
    [first] = await store.escalate(minutes(10), REMIND)
    assert (first.incident_id, first.kind) == (p1.id, "renotify")
    assert await store.escalate(minutes(19), REMIND) == []
    await kinds(store, 19)                        # told: the next reminder may be made
    assert len(await store.escalate(minutes(20), REMIND)) == 1
    await store.acknowledge(p1.id, "alice", "", minutes(21))
    assert await store.escalate(minutes(60), REMIND) == []


async def test_an_escalation_counts_as_telling_people(store: Store) -> None:
    await store.apply([problem("web", "P1")], minutes(0))
    both = Escalation(renotify_every=600.0, escalate_at=0.5, max_level=1)
    made = await store.escalate(minutes(10), both)
    assert [n.kind for n in made] == ["escalated"]               # not a reminder as well
    assert [n.kind for n in await store.escalate(minutes(20), both)] == ["renotify"]


async def test_two_processes_escalating_at_once_make_each_notice_once(
        open_store: OpenStore) -> None:
    first, second = await open_store(), await open_store()
    await first.apply([problem(f"site{i}", "P1") for i in range(20)], minutes(0))
    rules = Escalation(renotify_every=300.0, escalate_at=0.5, max_level=1)
    made = await asyncio.gather(first.escalate(minutes(8), rules),
                                second.escalate(minutes(8), rules))
    notices = [n for batch in made for n in batch]
    assert sorted((n.incident_id, n.kind) for n in notices) == sorted(
        {(n.incident_id, n.kind) for n in notices})
    assert len(notices) == 20 and {n.kind for n in notices} == {"escalated"}


async def test_two_processes_claiming_at_once_take_different_notices(
        open_store: OpenStore) -> None:
    first, second = await open_store(), await open_store()
    await first.apply([problem(f"site{i}", "P1") for i in range(30)], minutes(0))
    claims = await asyncio.gather(first.claim_notices(minutes(0), LEASE_SECONDS, limit=20),
                                  second.claim_notices(minutes(0), LEASE_SECONDS, limit=20))
    ids = [n.id for batch in claims for n in batch]
    assert len(ids) == len(set(ids)) == 30


# --- reports -----------------------------------------------------------------------------

async def test_opened_between_gives_every_incident_opened_then(store: Store) -> None:
    await store.apply([problem("a", "P1")], minutes(0))
    await store.apply([problem("b", "P2")], minutes(10))
    await store.apply([problem("c", "P3")], minutes(20))
    await store.apply([recovery("b")], minutes(21))
    found = await store.opened_between(minutes(5), minutes(20))
    assert [(i.check, i.status) for i in found] == [("b", "resolved")]


# --- people and secrets ------------------------------------------------------------------

async def test_people_have_a_password_and_a_token(store: Store) -> None:
    assert await store.password_hash("alice") is None
    await store.set_password("alice", "scrypt$1", minutes(0))
    await store.set_person_token("alice", "a" * 64, minutes(0))
    await store.set_password("alice", "scrypt$2", minutes(1))       # a new password
    assert await store.password_hash("alice") == "scrypt$2"
    assert await store.person_for("a" * 64) == "alice"
    await store.set_person_token("bob", "b" * 64, minutes(0))
    assert await store.password_hash("bob") is None                 # a token, no password
    with pytest.raises(Conflict):
        await store.set_person_token("carol", "a" * 64, minutes(0))
    assert await store.person_for("c" * 64) is None
    assert await store.agent_for("a" * 64) is None                  # people are not agents


async def test_the_first_secret_offered_is_the_one_everybody_gets(
        open_store: OpenStore) -> None:
    first, second = await open_store(), await open_store()
    got = await asyncio.gather(first.secret("session", "x" * 64),
                               second.secret("session", "y" * 64))
    assert got[0] == got[1] and got[0] in ("x" * 64, "y" * 64)
    assert await first.secret("session", "z" * 64) == got[0]
    assert await first.secret("other", "z" * 64) == "z" * 64


def test_a_version_1_file_keeps_its_operators_as_people(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        [(_, _, script)] = [f for f in schema_files("sqlite") if f[0] == 1]
        db.executescript(script)
        db.execute("PRAGMA user_version = 1")
        db.execute("INSERT INTO agent VALUES ('@alice', 'h1', 0), ('web1', 'h2', 0)")
    store = SQLiteStore(path, POLICY)

    async def owners() -> tuple[str | None, str | None, str | None]:
        try:
            return (await store.person_for("h1"), await store.agent_for("h1"),
                    await store.agent_for("h2"))
        finally:
            await store.close()

    assert asyncio.run(owners()) == ("alice", None, "web1")


# --- fix statistics ----------------------------------------------------------------------

async def test_every_fix_step_counts_as_a_run_and_a_passing_reprobe_as_worked(
        store: Store) -> None:
    failed = (step("reload-service"), step("restart-service"))
    await store.apply([problem("web", "P2", steps=failed)], minutes(0))
    await store.apply([healed("web", fixes=("reload-service", "restart-service"))], minutes(1))
    await store.apply([healed("web", fixes=("restart-service",), host="web2")], minutes(2))
    dry = Step(fix="restart-service", argv=["restart-service", "nginx"], exit_code=None,
               duration_seconds=0.0, output="", ended="dry run: not run")
    await store.apply([problem("web", "P2", steps=(dry,))], minutes(3))   # ran nothing
    assert await store.fix_runs() == [
        ("web1", "web", "reload-service", 2, 0), ("web1", "web", "restart-service", 2, 1),
        ("web2", "web", "restart-service", 1, 1)]
