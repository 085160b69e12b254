"""The on-call view: due times at a glance, and the same commands against both stores."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from monitord.errors import MonitordError
from monitord.oncall import HttpDesk, StoreDesk, run, table
from monitord.store.protocol import Incident, Store
from monitord.texts import due_text
from tests.central.apiclient import problem, running

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 11, 25, 18, 0, tzinfo=dt.UTC)


def incident(**changes: object) -> Incident:
    base = Incident(
        id=7, key="web1/shop", host="web1", check="shop", priority="P1", status="open",
        title="P1 web1/shop", summary="HTTP 502", opened_at=NOW - dt.timedelta(minutes=10),
        due_at=NOW + dt.timedelta(hours=1, minutes=12), last_seen_at=NOW, count=1)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_due_and_overdue_read_at_a_glance() -> None:
    assert due_text(incident().due_at, NOW) == "due in 1h12m"
    assert due_text(NOW - dt.timedelta(minutes=25), NOW) == "overdue 25m"
    assert due_text(incident().due_at, NOW, resolved=True) == "resolved"


def test_table_lists_priority_host_check_age_and_due() -> None:
    lines = table([incident(), incident(id=8, status="acknowledged", check="blog")],
                  NOW).splitlines()
    assert lines[0].split() == ["ID", "PRI", "STATUS", "HOST", "CHECK", "AGE", "DUE", "SUMMARY"]
    assert lines[1].split() == ["7", "P1", "open", "web1", "shop", "10m", "due", "in", "1h12m",
                                "HTTP", "502"]
    assert lines[2].split()[2] == "ack"


async def exercise(desk: StoreDesk | HttpDesk) -> None:
    listed = await run(desk, "list", None, "", False, [], None)
    assert "web1  shop" in listed and "P1" in listed
    (first,) = await desk.incidents(("open",), [], None)
    said = await run(desk, "ack", first.id, "on it", False, [], None)
    assert said.endswith("now acknowledged)")
    await run(desk, "comment", first.id, "nginx config broken", False, [], None)
    shown = await run(desk, "show", first.id, "", False, [], None)
    assert "acknowledged" in shown and "nginx config broken" in shown
    assert (await run(desk, "resolve", first.id, "fixed", False, [], None)).endswith(
        "now resolved)")
    assert await run(desk, "list", None, "", False, [], None) == "no incidents"
    with pytest.raises(MonitordError, match="no incident #999"):
        await run(desk, "show", 999, "", False, [], None)
    with pytest.raises(MonitordError, match="resolved"):
        await run(desk, "ack", first.id, "", False, [], None)


async def test_commands_against_the_central_service(store: Store) -> None:
    async with running(store) as api:
        response = await api.post_events(problem("shop", "P1"))
        assert response.status == 200
        base = str(api.client.make_url("/")).rstrip("/")
        desk = HttpDesk(base, api.operator)
        try:
            await exercise(desk)
        finally:
            await desk.close()


async def test_commands_against_the_embedded_store(store: Store) -> None:
    async with running(store) as api:  # fill it the way agents do
        assert (await api.post_events(problem("shop", "P1"))).status == 200
    await exercise(StoreDesk(store))


def test_incidents_command_without_a_store_says_so(tmp_path: Path) -> None:
    config = tmp_path / "m.toml"
    config.write_text(f'[agent]\nstate_dir = "{tmp_path}"\n')
    done = subprocess.run([sys.executable, "-m", "monitord", "incidents", "list", "-c",
                           str(config)], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          check=False)
    assert done.returncode == 2
    assert done.stderr == (f"monitord: no incident store at {tmp_path}/incidents.db yet: the "
                           "agent makes it when it first starts\n")


def test_escape_sequences_in_untrusted_text_are_defused() -> None:
    from monitord.oncall import printable

    assert printable("ok\x1b]0;pwned\x07\x1b[2Jline\n\tnext") == "ok?]0;pwned??[2Jline\n\tnext"


def test_overdue_unacknowledged_incidents_stand_out_and_are_counted() -> None:
    late = dt.timedelta(minutes=25)
    lines = table([incident(due_at=NOW - late),
                   incident(id=8, status="acknowledged", due_at=NOW - late),
                   incident(id=9)], NOW).splitlines()
    assert "OVERDUE 25m" in lines[1]
    assert "overdue 25m" in lines[2] and "OVERDUE" not in lines[2]   # somebody has it
    assert "OVERDUE" not in lines[3]
    assert lines[-1] == "1 OVERDUE: past the due time and nobody has acknowledged it"


def test_no_footer_when_nothing_is_overdue() -> None:
    assert "OVERDUE" not in table([incident()], NOW)


def test_show_prints_each_fix_transcript_once() -> None:
    from monitord.oncall import details
    from monitord.store.protocol import TimelineEntry

    step = {"fix": "restart-service", "argv": ["/x/restart-service", "nginx"], "exit_code": 1,
            "ended": "exit 1 in 0.3s", "output": "Job for nginx.service failed\n"}
    told = TimelineEntry(NOW, "problem", "web1", "What was tried:\n1. restart-service: "
                         "/x/restart-service nginx\n   output:\n      Job for nginx.service "
                         "failed", "e1", (step,))
    bare = TimelineEntry(NOW, "problem", "web1", "HTTP 502", "e2", (step,))
    for entry in (told, bare):
        shown = details(dataclasses.replace(incident(), timeline=(entry,)), NOW)
        assert shown.count("Job for nginx.service failed") == 1, shown
