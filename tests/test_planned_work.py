"""Planned work and flapping end to end: a real agent (``monitord run``) delivering to a
real central service (``monitord central``), both on 127.0.0.1, read back through the
operator API and the central store's file.

- a clean stop of the agent (SIGTERM) shows the host as stopped by an admin and pages
  no "server down"; a stop longer than ``[policy] stop_limit`` pages as silence does;
- a host put in maintenance through the API has its incidents opened and nobody told;
- ``monitord maintenance on`` on the agent's host reaches the central service;
- an agent that starts tells its windows again (one the outbox never had reaches the
  store) and the end of one that expired while it was down;
- a check flapping for 60 s makes at most 2 notices.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitord.agent.statestore import HOST_SCOPE, Maintenance, StateStore
from tests.processes import (
    HOST,
    Agent,
    Central,
    Json,
    Processes,
    monitord,
    processes,
    read_rows,
    wait_for,
)

FLAP_SECONDS = 60.0
CLOSED_PORT_CHECK = """
[healer]
grace = "0s"

[[check]]
name = "shop"
probe = "tcp"
host = "127.0.0.1"
port = 1
every = "500ms"
timeout = "500ms"
retry_every = "200ms"
fail_after = 2
priority = "P1"
"""


@pytest.fixture
def running() -> Iterator[Processes]:
    with processes() as started:
        yield started


def host_info(central: Central, host: str = HOST) -> Json | None:
    return next((h for h in central.get("/api/v1/hosts")["hosts"] if h["host"] == host), None)


def server_down(central: Central, host: str) -> Json | None:
    found = [i for i in central.incidents(host=host) if i["check"] == "server-down"]
    return found[0] if found else None


def notices(central: Central) -> list[str]:
    """The kinds of the notices the central store made, oldest first."""
    return [kind for (kind,) in read_rows(central.db, "SELECT kind FROM notice ORDER BY id")]


def post(central: Central, path: str, body: Json) -> Json:
    request = urllib.request.Request(
        f"{central.url}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {central.operator_token}",
                 "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: Json = json.load(response)
        return answer


# --- a clean stop -----------------------------------------------------------------------

def test_clean_agent_stop_is_shown_as_stopped_and_pages_no_server_down(
    running: Processes, tmp_path: Path
) -> None:
    central = Central(running, tmp_path / "central", central='sweep_every = "200ms"',
                      policy='missed_heartbeats = 2\nmin_silence = "2s"')
    central.start()
    beats = '[heartbeat]\nevery = "300ms"\n'
    stopped = Agent(running, tmp_path / "stopped", central, beats)
    hung = Agent(running, tmp_path / "hung", central, beats, host="web2")
    stopped_proc, hung_proc = stopped.start(), hung.start()
    wait_for(lambda: host_info(central) and host_info(central, "web2"),
             "both agents' first heartbeats", alive=(stopped_proc, hung_proc, central.proc))
    stopped.stop()                               # SIGTERM: systemctl stop
    hung_proc.send_signal(signal.SIGSTOP)        # silent without a word
    info = wait_for(lambda: (h := host_info(central)) and h["stopped_at"] and h,
                    "the central service to hear of the stop", alive=(central.proc,))
    # The hung host's silence is long enough to page, and the sweep has paged it ...
    wait_for(lambda: server_down(central, "web2"), "server down for the hung host",
             alive=(central.proc,))
    # ... and the stopped one, silent as long, is shown as stopped, not paged.
    assert server_down(central, HOST) is None
    info = host_info(central)
    assert info is not None and info["down"] is False and info["stopped_at"]
    hung_proc.send_signal(signal.SIGCONT)
    assert "Traceback" not in stopped.logged() + central.log.read_text()


def test_a_stop_longer_than_the_stop_limit_pages(running: Processes, tmp_path: Path) -> None:
    central = Central(running, tmp_path / "central", central='sweep_every = "200ms"',
                      policy='missed_heartbeats = 2\nmin_silence = "1s"\nstop_limit = "2s"')
    central.start()
    agent = Agent(running, tmp_path / "agent", central, '[heartbeat]\nevery = "300ms"\n')
    proc = agent.start()
    wait_for(lambda: host_info(central), "the agent's first heartbeat", alive=(proc,))
    agent.stop()
    down = wait_for(lambda: server_down(central, HOST), "server down after the stop limit",
                    alive=(central.proc,))
    assert down["priority"] == "P1" and "stopped by an admin" in down["title"]
    assert "opened" in notices(central)


# --- maintenance --------------------------------------------------------------------------

def test_maintenance_set_centrally_opens_the_incident_and_tells_nobody(
    running: Processes, tmp_path: Path
) -> None:
    central = Central(running, tmp_path / "central")
    central.start()
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    post(central, "/api/v1/maintenance", {"host": HOST, "reason": "new disks", "until": until})
    agent = Agent(running, tmp_path / "agent", central, CLOSED_PORT_CHECK)
    proc = agent.start()
    opened = wait_for(lambda: central.incidents(host=HOST), "the shop's incident",
                      alive=(proc, central.proc))
    [incident] = opened
    timeline = central.incident(incident["id"])["timeline"]
    assert timeline[-1]["kind"] == "silenced" and "new disks" in timeline[-1]["text"]
    assert notices(central) == []
    agent.stop()


def test_maintenance_on_the_agents_host_reaches_the_central_service(
    running: Processes, tmp_path: Path
) -> None:
    central = Central(running, tmp_path / "central")
    central.start()
    agent = Agent(running, tmp_path / "agent", central, CLOSED_PORT_CHECK)
    said = monitord("maintenance", "-c", str(agent.config), "--state-dir",
                    str(agent.state_dir), "on", "--for", "2h", "--reason", "PHP upgrade")
    assert "maintenance on for the whole host" in said
    proc = agent.start()
    windows = wait_for(lambda: central.get("/api/v1/maintenance")["maintenance"],
                       "the agent's window at the central service", alive=(proc,))
    assert [(w["host"], w["check"], w["reason"]) for w in windows] == [
        (HOST, None, "PHP upgrade")]
    monitord("maintenance", "-c", str(agent.config), "--state-dir", str(agent.state_dir),
             "off")
    wait_for(lambda: not central.get("/api/v1/maintenance")["maintenance"],
             "the window to end at the central service", alive=(proc,))
    agent.stop()


def central_windows(central: Central) -> list[tuple[str, str, str, float]]:
    """(host, check, reason, set_at) of every window in the central store's file, expired
    ones included (the API lists running ones only)."""
    rows = read_rows(central.db, "SELECT host, check_name, reason, set_at FROM maintenance "
                                 "ORDER BY host, check_name")
    return [(host, check, reason, set_at) for host, check, reason, set_at in rows]


def test_a_starting_agent_tells_its_windows_again_and_the_end_of_expired_ones(
    running: Processes, tmp_path: Path
) -> None:
    central = Central(running, tmp_path / "central")
    central.start()
    agent = Agent(running, tmp_path / "agent", central, CLOSED_PORT_CHECK)
    monitord("maintenance", "-c", str(agent.config), "--state-dir", str(agent.state_dir),
             "on", "shop", "--for", "3s", "--reason", "cache flush")
    until = time.time() + 3
    proc = agent.start()
    wait_for(lambda: [w for w in central_windows(central) if w[1] == "shop"],
             "the shop's window at the central service", alive=(proc, central.proc))
    agent.stop()
    # While the agent is down the shop's window expires, and a window is set for the
    # whole host that never went through the outbox (as one set before an upgrade, or
    # whose event was lost): only the agent's state file has it.
    wait_for(lambda: time.time() > until + 0.5, "the shop's window to expire")
    state = StateStore(agent.state_dir / "state.db")
    try:
        now = time.time()
        state.set_maintenance(Maintenance(HOST_SCOPE, now + 7200, "PHP upgrade", "root", now))
    finally:
        state.close()
    proc = agent.start()
    windows = wait_for(lambda: (found := central_windows(central)) and found[0][1] == ""
                       and len(found) == 1 and found,
                       "the host's window told and the shop's ended", alive=(proc,))
    [(host, check, reason, _)] = windows
    assert (host, check, reason) == (HOST, "", "PHP upgrade")
    listed = central.get("/api/v1/maintenance")["maintenance"]
    assert [(w["host"], w["check"], w["reason"]) for w in listed] == [
        (HOST, None, "PHP upgrade")]
    agent.stop()
    # Told again at the next start: the same window, nothing changed.
    told = len(central.applied("maintenance"))
    proc = agent.start()
    wait_for(lambda: len(central.applied("maintenance")) > told,
             "the window told once more", alive=(proc,))
    assert central_windows(central) == windows
    assert "maintenance windows told to the store again" in agent.logged()
    agent.stop()
    assert "Traceback" not in agent.logged() + central.log.read_text()


# --- flapping -----------------------------------------------------------------------------

class Flapping(http.server.BaseHTTPRequestHandler):
    """Fails twice, then answers once, over and over: a check that flaps."""

    served = 0
    answered = threading.Event()     # set at each answer: the check's next probe came

    def do_GET(self) -> None:
        Flapping.served += 1
        self.send_response(500 if Flapping.served % 3 else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        Flapping.answered.set()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.mark.timeout(FLAP_SECONDS + 60)
def test_a_check_flapping_for_a_minute_makes_at_most_two_notices(
    running: Processes, tmp_path: Path
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Flapping)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        central = Central(running, tmp_path / "central", policy='flap_quiet = "5m"')
        central.start()
        agent = Agent(running, tmp_path / "agent", central, f"""
[healer]
grace = "0s"

[[check]]
name = "shop"
probe = "http"
url = "http://127.0.0.1:{server.server_address[1]}/"
every = "500ms"
retry_every = "500ms"
timeout = "400ms"
fail_after = 2
priority = "P2"
""")
        proc = agent.start()
        deadline = time.monotonic() + FLAP_SECONDS
        while time.monotonic() < deadline:          # bounded: a minute of flapping
            assert proc.poll() is None and central.proc is not None
            assert central.proc.poll() is None
            assert len(notices(central)) <= 2, notices(central)
            Flapping.answered.wait(timeout=FLAP_SECONDS)   # looked at after every probe
            Flapping.answered.clear()
        assert Flapping.served >= 60                 # it really flapped all along
        [incident] = central.incidents(host=HOST)
        assert (incident["status"], incident["flapping"]) == ("open", True)
        assert notices(central) == ["opened", "flapping"]
        agent.stop()
    finally:
        server.shutdown()
        server.server_close()
