"""Hostile input to the central API, on both store backends: what no store can keep is
made safe visibly (control characters) or refused with a 400 that names the field (times
outside a sane window, loose types, deep nesting, huge numbers, bad ids and filters); a
503 means only that the store is down."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from monitord.events import REPLACEMENT
from monitord.store.protocol import Store
from tests.central.apiclient import T0, Api, heartbeat, nothing_written, problem, running
from tests.central.conftest import problem as event
from tests.central.consoleclient import signed_in

NUL_TEXT = "bad\x00byte \x1b[31mred\x1b[0m\r\nnext\x7f line\ttab"
R = REPLACEMENT
SAFE_TEXT = f"bad{R}byte {R}[31mred{R}[0m\nnext{R} line\ttab"


@pytest.fixture
async def api(store: Store) -> AsyncIterator[Api]:
    async with running(store) as started:
        yield started


async def refused(response: Any, status: int = 400) -> list[str]:
    text = await response.text()
    assert response.status == status, text
    body = json.loads(text)
    assert set(body) == {"error", "message", "problems"}
    return list(body["problems"]) or [body["message"]]


def step(**fields: Any) -> dict[str, Any]:
    return {"fix": "restart-service", "argv": ["restart-service", "nginx"], "exit_code": 1,
            "duration_seconds": 1.5, "output": "failed", "ended": "exit 1", **fields}


# --- text no store can keep ---------------------------------------------------------------

async def test_control_characters_in_every_text_field_are_stored_visibly(api: Api) -> None:
    texts = {name: NUL_TEXT for name in ("title", "body", "summary", "reason")}
    steps = [step(fix=NUL_TEXT, argv=[NUL_TEXT], output=NUL_TEXT, ended=NUL_TEXT,
                  reprobe_status="CRITICAL", reprobe_summary=NUL_TEXT)]
    response = await api.post_events(problem(**texts, steps=steps))
    assert response.status == 200, await response.text()
    [incident] = await api.store.incidents()
    assert (incident.title, incident.summary) == (SAFE_TEXT, SAFE_TEXT)
    shown = await (await api.get(f"/api/v1/incidents/{incident.id}")).json()
    [entry] = shown["incident"]["timeline"]
    assert SAFE_TEXT in entry["text"] and "\x00" not in json.dumps(shown)
    [ladder] = entry["steps"]
    assert {ladder[k] for k in ("fix", "output", "ended", "reprobe_summary")} == {SAFE_TEXT}
    assert ladder["argv"] == [SAFE_TEXT]


@pytest.mark.parametrize(("action", "field"), [("comment", "text"), ("acknowledge", "note"),
                                               ("resolve", "note")])
async def test_control_characters_in_a_note_or_comment_are_stored_visibly(
    api: Api, action: str, field: str
) -> None:
    await api.post_events(problem())
    [incident] = await api.store.incidents()
    response = await api.act(incident.id, action, {field: NUL_TEXT})
    assert response.status == 200, await response.text()
    timeline = (await response.json())["incident"]["timeline"]
    assert timeline[-1]["text"].endswith(SAFE_TEXT)


async def test_nul_in_a_query_parameter_is_a_400_naming_it(api: Api) -> None:
    [problem_] = await refused(await api.get("/api/v1/incidents", host="\x00"))
    assert problem_.startswith("host: expected a host name")
    [problem_] = await refused(await api.get("/api/v1/incidents", status="open\x00"))
    assert problem_.startswith("status: expected")


async def test_a_lone_surrogate_is_a_400_naming_the_field(api: Api) -> None:
    event = json.dumps(problem())[:-1] + ', "body": "\\ud800"}'
    body = ('{"events": [' + event + "]}").encode()
    [problem_] = await refused(await api.client.post("/api/v1/events", data=body,
                                                     headers=api.agent()))
    assert problem_.startswith("events[0].body: ")
    assert await nothing_written(api.store)


# --- times ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "named"), [
    ({"at": "9999-12-31T23:59:59-14:00"}, "events[0].at: expected a time at most a day ahead"),
    ({"at": (T0 + dt.timedelta(days=1, minutes=1)).isoformat()}, "events[0].at: "),
    ({"at": "1999-12-31T23:59:59Z"}, "events[0].at: expected a time from 2000-01-01 on"),
    ({"at": "0001-01-01T00:00:00+14:00"}, "events[0].at: expected a time from 2000-01-01"),
    ({"at": 1764000000}, 'events[0].at: expected a timestamp like "2026-11-25T17:00:00Z"'),
    ({"at": "2026-11-25"}, 'events[0].at: expected a timestamp like'),
    ({"at": "2026-11-25T17:00:00"}, 'events[0].at: expected a timestamp like'),
    ({"kind": "maintenance", "until": "9999-12-31T23:59:59-14:00"},
     "events[0].until: expected a time at most a year ahead"),
])
async def test_a_time_outside_the_sane_window_is_a_400_naming_it(
    api: Api, fields: dict[str, Any], named: str
) -> None:
    [problem_] = await refused(await api.post_events(problem(**fields), heartbeat()))
    assert problem_.startswith(named), problem_
    assert await nothing_written(api.store)


async def test_a_time_within_the_window_is_taken(api: Api) -> None:
    soon = (T0 + dt.timedelta(hours=23)).isoformat()
    maintenance = {"id": uuid.uuid4().hex, "kind": "maintenance", "host": "web1",
                   "at": T0.isoformat(), "until": (T0 + dt.timedelta(days=365)).isoformat(),
                   "owner": "carol", "reason": "moving racks"}
    response = await api.post_events(problem(at=soon), maintenance)
    assert response.status == 200, await response.text()
    assert await response.json() == {"applied": 2, "duplicates": 0}


# --- strict types -----------------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "named"), [
    ({"recurring": "yes"}, "events[0].recurring: expected true or false"),
    ({"recurring": 1}, "events[0].recurring: expected true or false"),
    ({"flapping": "true"}, "events[0].flapping: expected true or false"),
    ({"steps": [step(exit_code="1")]}, "events[0].steps[0].exit_code: expected an integer"),
    ({"steps": [step(exit_code=1.0)]}, "events[0].steps[0].exit_code: expected an integer"),
    ({"steps": [step(duration_seconds="1.5")]},
     "events[0].steps[0].duration_seconds: expected a number"),
    ({"priority": "p1"}, "events[0].priority: "),
    ({"kind": "Problem"}, "events[0].kind: "),
])
async def test_loose_types_are_a_400_naming_the_field(
    api: Api, fields: dict[str, Any], named: str
) -> None:
    problems = await refused(await api.post_events(problem(**fields)))
    assert any(p.startswith(named) for p in problems), problems
    assert await nothing_written(api.store)


async def test_heartbeat_interval_as_text_is_a_400(api: Api) -> None:
    [problem_] = await refused(await api.post_events(heartbeat(interval_seconds="60")))  # type: ignore[arg-type]
    assert problem_.startswith("events[0].interval_seconds: expected a number")


@pytest.mark.parametrize("action", ["acknowledge", "resolve", "comment"])
async def test_who_null_is_refused_as_the_spec_says(api: Api, action: str) -> None:
    await api.post_events(problem())
    [incident] = await api.store.incidents()
    body: dict[str, Any] = {"who": None, **({"text": "x"} if action == "comment" else {})}
    [problem_] = await refused(await api.act(incident.id, action, body))
    assert problem_.startswith("who: expected a name")


# --- the shape of a request ---------------------------------------------------------------------

@pytest.mark.parametrize(("body", "named"), [
    (b"[" * 1000 + b"]" * 1000, "body: expected arrays and objects nested at most 32 deep"),
    (b'{"events": [' + b"{" * 40 + b"}" * 40 + b"]}", "body: expected arrays and objects"),
    (b'{"events": [' + b"9" * 5000 + b"]}", "body: expected numbers of at most 40"),
    (b'{"events": [1e400]}', "body: expected numbers of at most 40 characters that fit"),
    (b'{"events": [NaN]}', "body: not valid JSON"),
    (b'{"events": ["\xff"]}', "body: expected JSON in UTF-8"),
])
async def test_a_body_too_deep_or_with_huge_numbers_is_a_400(
    api: Api, body: bytes, named: str
) -> None:
    [problem_] = await refused(await api.client.post("/api/v1/events", data=body,
                                                     headers=api.agent()))
    assert problem_.startswith(named), problem_


async def test_brackets_inside_strings_do_not_count_as_nesting(api: Api) -> None:
    deep_text = "[{" * 500 + '\\"' + "]}" * 500
    response = await api.post_events(problem(body=deep_text))
    assert response.status == 200, await response.text()


@pytest.mark.parametrize("path", ["/api/v1/incidents/" + "5" * 5000,
                                  "/api/v1/incidents/99999999999999999999",
                                  "/api/v1/incidents/" + "0" * 30 + "1"])
async def test_a_huge_incident_id_is_a_404(api: Api, path: str) -> None:
    await refused(await api.get(path), 404)
    await refused(await api.client.post(path + "/comment", json={"text": "x"},
                                        headers=api.person()), 404)


@pytest.mark.parametrize("query", [{"limit": "9" * 5000}, {"limit": "0"}, {"limit": "-1"},
                                   {"priority": "P4"}, {"status": "closed"},
                                   {"host": "a" * 201}, {"host": "-web"}, {"x" * 5000: "1"}])
async def test_a_bad_filter_is_a_400(api: Api, query: dict[str, str]) -> None:
    await refused(await api.get("/api/v1/incidents", **query))


async def test_a_header_with_a_control_character_is_a_400_without_traceback(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    assert api.client.port is not None
    caplog.set_level(logging.INFO)
    for header in (b"X-Note: a\x00b", b"X-Note: a\x01b", b"Authorization: Bearer \x7f"):
        request = (b"GET /api/v1/hosts HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header
                   + b"\r\nConnection: close\r\n\r\n")
        answer = await _raw(api.client.port, request)
        assert answer.split(b" ", 2)[1] == b"400", answer[:200]
    assert "Traceback" not in caplog.text
    assert "refused a malformed HTTP request (400: Invalid header value char)" in caplog.text
    assert "\x7f" not in caplog.text and "a\x00b" not in caplog.text


async def _raw(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(10):
            return await reader.read(65536)
    finally:
        writer.close()



# --- the store ----------------------------------------------------------------------------------

async def test_event_ids_are_unique_per_host_not_across_hosts(store: Store) -> None:
    first = event("web", host="web1")
    second = first.model_copy(update={"host": "web2", "title": "web2/web: down"})
    assert (await store.apply([first], T0)).applied == 1
    report = await store.apply([second, first], T0)
    assert (report.applied, report.duplicates) == (1, 1)
    assert sorted(i.key for i in await store.incidents()) == ["web1/web", "web2/web"]
    assert (await store.apply([second], T0)).duplicates == 1


async def test_another_hosts_token_cannot_preempt_an_id(api: Api) -> None:
    taken = problem(host="web2")
    assert (await api.post_events(taken, host="web2")).status == 200
    mine = {**problem(host="web1"), "id": taken["id"]}
    response = await api.post_events(mine)
    assert await response.json() == {"applied": 1, "duplicates": 0}


async def test_the_store_refuses_a_batch_with_an_insane_time(store: Store) -> None:
    late = event("web", at=dt.datetime(9999, 12, 31, 23, 59, 59,
                                      tzinfo=dt.timezone(-dt.timedelta(hours=14))))
    with pytest.raises(ValueError, match=r"events\[1\]\.at: expected a time at most a day"):
        await store.apply([event("db"), late], T0)
    assert await store.incidents() == []


@pytest.mark.parametrize("kind", ["stopped", "maintenance"])
async def test_kinds_without_a_store_rule_are_recorded_not_a_503(api: Api, kind: str) -> None:
    event = {"id": uuid.uuid4().hex, "kind": kind, "host": "web1", "at": T0.isoformat()}
    first = await api.post_events(event)
    assert first.status == 200, await first.text()
    assert await (await api.post_events(event)).json() == {"applied": 0, "duplicates": 1}


async def test_fix_steps_on_an_event_of_a_whole_host_are_no_503(api: Api) -> None:
    # Found by schemathesis: the fix statistics are per check, and a maintenance event of
    # a whole host has none; its steps used to break a NOT NULL constraint (a 503).
    event = {"id": uuid.uuid4().hex, "kind": "maintenance", "host": "web1",
             "at": T0.isoformat(), "steps": [step()]}
    response = await api.post_events(event)
    assert response.status == 200, await response.text()
    assert await api.store.fix_runs() == []


@pytest.mark.parametrize(("action", "field"), [("comment", "text"), ("acknowledge", "note"),
                                               ("resolve", "note")])
async def test_control_characters_in_a_console_form_are_stored_visibly(
    api: Api, action: str, field: str
) -> None:
    person = await signed_in(api)
    await api.post_events(problem())
    [incident] = await api.store.incidents()
    page = await person.act(incident.id, action, **{field: NUL_TEXT})
    assert page.status == 303, page.text
    timeline = (await api.store.incident(incident.id)).timeline
    assert timeline[-1].text == SAFE_TEXT.strip()
    shown = await person.get(f"/console/incidents/{incident.id}")
    assert shown.status == 200 and "\x00" not in shown.text


async def test_a_huge_incident_number_in_the_console_is_a_404(api: Api) -> None:
    person = await signed_in(api)
    page = await person.get("/console/incidents/" + "5" * 5000)
    assert page.status == 404


async def test_nul_in_the_console_queue_filter_is_a_400(api: Api) -> None:
    person = await signed_in(api)
    assert (await person.get("/console/?host=%00")).status == 400


@pytest.mark.parametrize("at", ["\u0662\u0660\u0662\u0666-11-25T17:00:00Z",   # Arabic digits
                                "2026-11-25T17:00Z", "20261125T170000Z", "yesterday"])
async def test_a_time_that_is_not_rfc_3339_is_a_400(api: Api, at: str) -> None:
    [problem_] = await refused(await api.post_events(problem(at=at)))
    assert problem_.startswith('events[0].at: expected a timestamp like'), problem_


async def test_a_broken_escape_cannot_hide_deep_nesting(api: Api) -> None:
    body = b'["\\\n", "' + b"[" * 5000 + b'"]'
    await refused(await api.client.post("/api/v1/events", data=body, headers=api.agent()))
