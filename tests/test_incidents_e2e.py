"""Incidents end to end, under faults: a real agent (``monitord run``) delivering to a real
central service (``monitord central``), both processes on 127.0.0.1, read back through the
operator API and the store's file.

- a failing site whose fix fails opens exactly one incident, transcript included, and
  it is resolved when the site comes back;
- problems that happen while the central service is stopped all arrive once it starts,
  none twice;
- an agent SIGKILLed at random moments of its delivery loses nothing and doubles nothing;
- a host whose heartbeats stop gets a P1 "server down" that closes when they resume.
"""

from __future__ import annotations

import functools
import json
import random
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitord.agent.outbox import Limits, Outbox
from monitord.events import Event, new_id, utc_now
from tests.nginx import Nginx
from tests.processes import (
    HOST,
    Agent,
    Central,
    Json,
    Processes,
    processes,
    read_rows,
    wait_for,
)

# An outage ends for the agent at its next retry: its backoff (full jitter) tops out at a
# minute, so a wait for delivery after an outage allows more than that.
AFTER_OUTAGE_SECONDS = 90.0


@pytest.fixture
def running() -> Iterator[Processes]:
    with processes() as started:
        yield started


def by_key(central: Central, key: str) -> list[Json]:
    return [i for i in central.incidents(host=HOST) if i["key"] == key]


def heard_from(central: Central) -> bool:
    """Whether the central service has a heartbeat of the agent's host."""
    hosts = central.get("/api/v1/hosts")["hosts"]
    return any(h["host"] == HOST and h["last_heartbeat"] for h in hosts)


def one_incident(central: Central, key: str, status: str) -> Json | None:
    """The only incident for ``key``, once it has ``status`` (None until then)."""
    found = by_key(central, key)
    assert len(found) <= 1, found
    return found[0] if found and found[0]["status"] == status else None


# --- a failing site -----------------------------------------------------------------------

def test_failing_site_opens_one_incident_with_its_transcript_and_resolves(
    running: Processes, tmp_path: Path
) -> None:
    site = Nginx(tmp_path / "nginx", broken=True)   # down, and `start` cannot bring it up
    central = Central(running, tmp_path / "central")
    central.start()
    agent = Agent(running, tmp_path / "agent", central, f"""
[healer]
grace = "0s"

[[check]]
name = "site"
probe = "http"
url = "http://127.0.0.1:{site.port}/"
every = "500ms"
timeout = "500ms"
fail_after = 2
recover_after = 2
priority = "P1"
start = {json.dumps(site.argv)}
heal = [{{ run = "start", settle = "200ms" }}]
""")
    try:
        proc = agent.start()
        opened = wait_for(lambda: one_incident(central, f"{HOST}/site", "open"),
                          "an open incident for the site", alive=(proc, central.proc))
        assert opened["priority"] == "P1"
        assert opened["count"] == 1
        problem = central.incident(opened["id"])["timeline"]
        assert [entry["kind"] for entry in problem] == ["problem"]
        [step] = problem[0]["steps"]
        assert step["fix"] == "start" and step["argv"] == site.argv
        assert step["exit_code"] not in (0, None)
        assert "unknown directive" in step["output"]
        assert "not fixed: 1 fix tried" in problem[0]["text"]

        Nginx(site.prefix, port=site.port).start()   # an admin repairs the config
        resolved = wait_for(lambda: one_incident(central, f"{HOST}/site", "resolved"),
                            "the site's incident to be resolved", alive=(proc, central.proc))
        assert resolved["id"] == opened["id"] and resolved["count"] == 1
        assert resolved["resolved_by"] == "monitord"
        timeline = central.incident(resolved["id"])["timeline"]
        assert [entry["kind"] for entry in timeline] == ["problem", "recovery"]
        assert "HTTP 200" in timeline[1]["text"]
        assert central.incidents() == [resolved]   # nothing else: no server down, no other
        agent.stop()
    finally:
        running.close()   # the agent first: its `start` fix would bring nginx back up
        site.stop()
    assert "Traceback" not in agent.logged() + central.log.read_text()


# --- an outage of the central service -------------------------------------------------------

SITES = 200


def sites_config(port: int) -> str:
    checks = "".join(f'[[check]]\nname = "site-{n:03d}"\nprobe = "tcp"\nport = {port}\n'
                     for n in range(SITES))
    return f"""
[healer]
grace = "0s"

[defaults]
every = "1s"
timeout = "1s"
fail_after = 1
priority = "P1"

{checks}"""


def first_results(agent: Agent) -> set[str]:
    """Checks that have logged their first result ("site-007: OK: ...")."""
    return set(re.findall(r" (site-\d+): OK: ", agent.logged()))


@pytest.mark.timeout(AFTER_OUTAGE_SECONDS + 30)
def test_problems_while_central_is_down_all_arrive_once(
    running: Processes, tmp_path: Path
) -> None:
    nginx = Nginx(tmp_path / "nginx")
    nginx.start()
    central = Central(running, tmp_path / "central")
    central.start()
    agent = Agent(running, tmp_path / "agent", central, sites_config(nginx.port))
    try:
        proc = agent.start()
        wait_for(lambda: len(first_results(agent)) == SITES, f"{SITES} checks to be OK",
                 alive=(proc,))
        wait_for(lambda: heard_from(central), "the agent's heartbeat", alive=(proc,))
        central.stop()
        nginx.kill()                       # every site goes down while nobody listens
        wait_for(lambda: len(agent.waiting()) == SITES, f"{SITES} problems in the outbox",
                 alive=(proc,))
        waiting = agent.waiting()
    finally:
        nginx.stop()
    assert central.applied() == []
    central.start()
    wait_for(lambda: not agent.waiting(), "the outbox to be delivered",
             limit=AFTER_OUTAGE_SECONDS, alive=(proc, central.proc))

    applied = central.applied()
    assert sorted(applied) == sorted(waiting)
    incidents = central.incidents(limit="500")
    assert sorted(i["key"] for i in incidents) == [f"{HOST}/site-{n:03d}" for n in range(SITES)]
    assert {(i["status"], i["count"], i["priority"]) for i in incidents} == {("open", 1, "P1")}
    entries = read_rows(central.db, "SELECT incident_id, kind, event_id FROM timeline")
    assert sorted(e[2] for e in entries) == sorted(waiting)
    assert {e[1] for e in entries} == {"problem"}
    assert len({e[0] for e in entries}) == SITES
    agent.stop()
    assert "Traceback" not in agent.logged() + central.log.read_text()


# --- an agent killed during delivery --------------------------------------------------------

KILLS = 20
BATCH = 2                    # small batches: many deliveries, each one a place to die
KEEP_PENDING = 1000          # events in the outbox at each start: every kill finds work
KILL_WITHIN_SECONDS = 0.3    # the kill comes this long at most after delivery is seen


def fill(outbox_path: Path, count: int, first: int) -> list[str]:
    """``count`` problems of distinct checks put in the agent's outbox; their ids."""
    outbox = Outbox(outbox_path, Limits(min_free_bytes=0))
    try:
        ids = []
        for n in range(first, first + count):
            event = Event(id=new_id(), kind="problem", host=HOST, check=f"check-{n:05d}",
                          at=utc_now(), priority="P3", status="CRITICAL",
                          summary=f"problem {n}")
            outbox.put(event)
            ids.append(event.id)
        return ids
    finally:
        outbox.close()


def more_applied(central: Central, than: int) -> bool:
    return len(central.applied()) > than


def test_agent_killed_during_delivery_loses_and_doubles_nothing(
    running: Processes, tmp_path: Path
) -> None:
    central = Central(running, tmp_path / "central")
    central.start()
    agent = Agent(running, tmp_path / "agent", central, "", batch=BATCH)
    rng = random.Random()
    ids: list[str] = []
    interrupted = in_window = 0
    for _ in range(KILLS):
        ids += fill(agent.outbox, KEEP_PENDING - len(agent.waiting()), len(ids))
        before = len(central.applied())
        proc = agent.start()
        wait_for(functools.partial(more_applied, central, before), "the agent to deliver",
                 alive=(proc, central.proc))
        time.sleep(rng.uniform(0, KILL_WITHIN_SECONDS))   # the fault's random moment
        agent.kill()
        left = set(agent.waiting())
        interrupted += bool(left)
        in_window += bool(left & set(central.applied()))   # stored, not yet removed
    print(f"{KILLS} kills: {interrupted} while delivering, {in_window} after the store's "
          f"commit and before the outbox's delete")   # pytest -rP shows it
    assert interrupted >= KILLS // 2, f"only {interrupted} kills landed during delivery"

    proc = agent.start()
    wait_for(lambda: not agent.waiting(), "the outbox to be delivered",
             alive=(proc, central.proc))
    agent.stop()
    applied = central.applied()
    assert len(applied) == len(set(applied)) == len(ids)
    assert set(applied) == set(ids)
    counts = read_rows(central.db, "SELECT key, count FROM incident")
    assert sorted(counts) == [(f"{HOST}/check-{n:05d}", 1) for n in range(len(ids))]
    entries = read_rows(central.db, "SELECT event_id FROM timeline")
    assert sorted(e[0] for e in entries) == sorted(ids)
    assert "Traceback" not in agent.logged() + central.log.read_text()


# --- heartbeats ---------------------------------------------------------------------------

def test_silent_host_gets_server_down_until_heartbeats_resume(
    running: Processes, tmp_path: Path
) -> None:
    central = Central(running, tmp_path / "central", central='sweep_every = "200ms"',
                      policy='missed_heartbeats = 2\nmin_silence = "3s"')
    central.start()
    agent = Agent(running, tmp_path / "agent", central, '[heartbeat]\nevery = "500ms"\n')
    proc = agent.start()
    wait_for(lambda: heard_from(central), "the agent's first heartbeat", alive=(proc,))
    key = f"{HOST}/server-down"
    proc.send_signal(signal.SIGSTOP)       # a hung server: alive, silent
    down = wait_for(lambda: one_incident(central, key, "open"), "a server-down incident",
                    alive=(central.proc,))
    assert down["priority"] == "P1" and "server down" in down["title"]
    assert central.get("/api/v1/hosts")["hosts"][0]["down"] is True
    proc.send_signal(signal.SIGCONT)
    up = wait_for(lambda: one_incident(central, key, "resolved"),
                  "the server-down incident to be resolved", alive=(proc, central.proc))
    assert up["id"] == down["id"] and up["resolved_by"] == "monitord"
    assert central.incident(up["id"])["timeline"][-1]["text"] == "heartbeats resumed"
    assert central.get("/api/v1/hosts")["hosts"][0]["down"] is False
    agent.stop()
    assert "Traceback" not in agent.logged() + central.log.read_text()
