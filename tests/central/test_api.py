"""The central API over a real socket and a real SQLite store: agents' batches, tokens,
refusals that write nothing, and the people's incident endpoints."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from monitord.central import auth
from monitord.central.keys import SWEEPER
from monitord.central.maintenance import window
from monitord.central.views import spec
from monitord.store.protocol import Store
from tests.central.apiclient import (
    MAX_BODY_BYTES,
    OPERATOR,
    T0,
    Api,
    config,
    heartbeat,
    nothing_written,
    problem,
    recovery,
    running,
)


@pytest.fixture
async def api(store: Store) -> AsyncIterator[Api]:
    async with running(store) as started:
        yield started


async def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    body: dict[str, Any] = await response.json()
    assert set(body) == {"error", "message", "problems"}
    return body


# --- events -----------------------------------------------------------------------------

async def test_batch_is_applied_once_however_often_it_is_posted(api: Api) -> None:
    batch = (problem("web"), heartbeat())
    first = await api.post_events(*batch)
    again = await api.post_events(*batch)
    assert first.status == 200
    assert await first.json() == {"applied": 2, "duplicates": 0}
    assert await again.json() == {"applied": 0, "duplicates": 2}
    [incident] = await api.store.incidents()
    assert (incident.key, incident.count) == ("web1/web", 1)


async def test_missing_token_is_401_and_writes_nothing(api: Api) -> None:
    response = await api.client.post("/api/v1/events", json={"events": [problem()]})
    body = await error_of(response, 401)
    assert body["error"] == "unauthorized"
    assert "Authorization: Bearer TOKEN" in body["message"]
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert await nothing_written(api.store)


@pytest.mark.parametrize("header", ["Bearer not-a-token", "Basic d2ViMTpwdw==", "Bearer"])
async def test_wrong_token_is_401_and_writes_nothing(api: Api, header: str) -> None:
    response = await api.client.post("/api/v1/events", json={"events": [problem()]},
                                     headers={"Authorization": header})
    await error_of(response, 401)
    assert await nothing_written(api.store)


async def test_operator_token_cannot_post_events(api: Api) -> None:
    response = await api.client.post("/api/v1/events", json={"events": [problem()]},
                                     headers=api.person())
    body = await error_of(response, 401)
    assert "agent token" in body["message"]
    assert await nothing_written(api.store)


async def test_event_for_another_host_is_403_naming_it(api: Api) -> None:
    response = await api.post_events(problem(host="web1"), problem(host="web2"))
    body = await error_of(response, 403)
    assert body["message"] == 'events[1].host: "web2" is not this token\'s host "web1"'
    assert await nothing_written(api.store)


async def test_malformed_json_is_400(api: Api) -> None:
    response = await api.client.post("/api/v1/events", data=b'{"events": [',
                                     headers=api.agent())
    body = await error_of(response, 400)
    assert body["message"].startswith("body: not valid JSON: ")
    assert await nothing_written(api.store)


@pytest.mark.parametrize(("change", "message"), [
    ({"priority": "P9"}, 'events[1].priority: expected "P1", "P2" or "P3", got "P9"'),
    ({"prority": "P1"}, 'events[1].prority: unknown field; did you mean "priority"?'),
    ({"id": "42"}, 'events[1].id: expected 32 lowercase hexadecimal digits, got "42"'),
    ({"at": "yesterday"},
     'events[1].at: expected a timestamp like "2026-11-25T17:00:00Z", got "yesterday"'),
    ({"priority": None}, "events[1].priority: required for a problem event"),
    ({"title": "x" * 501}, "events[1].title: expected at most 500 characters, got 501"),
])
async def test_wrong_field_is_400_naming_it(api: Api, change: dict[str, Any],
                                            message: str) -> None:
    response = await api.post_events(problem("a"), problem("b") | change)
    body = await error_of(response, 400)
    assert body["message"] == message
    assert body["problems"] == [message]
    assert await nothing_written(api.store)


async def test_every_problem_in_a_batch_is_listed(api: Api) -> None:
    late = {k: v for k, v in heartbeat().items() if k != "interval_seconds"}
    response = await api.post_events(problem(priority="P0"), late, {"kind": "problem"})
    body = await error_of(response, 400)
    assert body["problems"][:2] == [
        'events[0].priority: expected "P1", "P2" or "P3", got "P0"',
        "events[1].interval_seconds: a heartbeat says how often it comes",
    ]
    assert "events[2].id: required field is missing" in body["problems"]
    assert await nothing_written(api.store)


@pytest.mark.parametrize("payload", [b"[]", b'{"events": []}', b'"events"', b"NaN"])
async def test_body_that_is_not_a_batch_is_400(api: Api, payload: bytes) -> None:
    response = await api.client.post("/api/v1/events", data=payload, headers=api.agent())
    await error_of(response, 400)
    assert await nothing_written(api.store)


async def test_oversized_body_is_413(api: Api) -> None:
    big = problem(body="x" * MAX_BODY_BYTES)
    response = await api.post_events(big)
    body = await error_of(response, 413)
    assert f"larger than {MAX_BODY_BYTES} bytes" in body["message"]
    assert await nothing_written(api.store)


async def test_oversized_chunked_body_is_413(api: Api) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(MAX_BODY_BYTES // 1024 + 2):
            yield b" " * 1024

    response = await api.client.post("/api/v1/events", data=chunks(), headers=api.agent())
    await error_of(response, 413)
    assert await nothing_written(api.store)


async def test_tokens_and_bodies_are_never_logged(api: Api,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret_text = "customer-password-in-probe-output"
    await api.post_events(problem(body=secret_text))
    await api.post_events(problem(priority="P7", body=secret_text))
    await api.get("/api/v1/incidents")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert api.agents["web1"] not in logged and api.operator not in logged
    assert secret_text not in logged


# --- people -----------------------------------------------------------------------------

async def test_incidents_are_listed_most_urgent_first(api: Api) -> None:
    await api.post_events(problem("low", "P3"), problem("high", "P1"), problem("mid", "P2"))
    response = await api.get("/api/v1/incidents")
    assert response.status == 200
    listed = (await response.json())["incidents"]
    assert [i["check"] for i in listed] == ["high", "mid", "low"]
    assert [i["priority"] for i in listed] == ["P1", "P2", "P3"]
    assert "timeline" not in listed[0]


async def test_incidents_filter_by_status_priority_and_host(api: Api) -> None:
    await api.post_events(problem("a", "P1"), problem("b", "P2"), problem("c", "P3"),
                          recovery("c"))
    await api.post_events(problem("d", "P2", host="web2"), host="web2")

    async def checks(**query: Any) -> list[str]:
        response = await api.get("/api/v1/incidents", **query)
        assert response.status == 200, await response.text()
        return sorted(i["check"] for i in (await response.json())["incidents"])

    assert await checks() == ["a", "b", "d"]
    assert await checks(status="resolved") == ["c"]
    assert await checks(status="open,resolved") == ["a", "b", "c", "d"]
    assert await checks(priority="P2") == ["b", "d"]
    assert await checks(host="web2") == ["d"]
    assert await checks(priority="P1,P2", host="web1", limit="1") == ["a"]
    repeated = await api.client.get("/api/v1/incidents?status=open&status=resolved",
                                    headers=api.person())
    assert len((await repeated.json())["incidents"]) == 4


@pytest.mark.parametrize(("query", "message"), [
    ("status=closed", 'status: expected "open", "acknowledged" or "resolved", got "closed"'),
    ("priority=P1,P5", 'priority: expected "P1", "P2" or "P3", got "P5"'),
    ("limit=0", 'limit: expected a whole number from 1 to 500, got "0"'),
    ("stauts=open", 'stauts: unknown query parameter; did you mean "status"?'),
])
async def test_bad_incident_query_is_400_naming_it(api: Api, query: str, message: str) -> None:
    response = await api.client.get(f"/api/v1/incidents?{query}", headers=api.person())
    body = await error_of(response, 400)
    assert body["message"] == message


async def test_people_endpoints_refuse_agent_tokens(api: Api) -> None:
    for path in ("/api/v1/incidents", "/api/v1/incidents/1", "/api/v1/hosts"):
        response = await api.client.get(path, headers=api.agent())
        body = await error_of(response, 401)
        assert "operator token" in body["message"]


async def test_incident_comes_with_its_timeline(api: Api) -> None:
    await api.post_events(problem("web", summary="HTTP 502 from http://127.0.0.1/"))
    [incident] = await api.store.incidents()
    response = await api.get(f"/api/v1/incidents/{incident.id}")
    assert response.status == 200
    shown = (await response.json())["incident"]
    assert shown["key"] == "web1/web" and shown["status"] == "open"
    assert shown["opened_at"] == "2026-11-25T17:00:00Z"
    assert shown["due_at"] == "2026-11-25T19:00:00Z"
    assert [e["kind"] for e in shown["timeline"]] == ["problem"]
    assert "HTTP 502" in shown["timeline"][0]["text"]


@pytest.mark.parametrize("incident_id", ["999", str(2**63), str(10**30)])
async def test_unknown_incident_is_404(api: Api, incident_id: str) -> None:
    for response in (await api.get(f"/api/v1/incidents/{incident_id}"),
                     await api.act(int(incident_id), "acknowledge", {}),
                     await api.act(int(incident_id), "comment", {"text": "anyone?"})):
        body = await error_of(response, 404)
        assert body["error"] == "not_found"


async def test_acknowledge_then_resolve_then_conflict(api: Api) -> None:
    await api.post_events(problem())
    [incident] = await api.store.incidents()
    api.clock.advance(60)
    acked = await api.act(incident.id, "acknowledge", {"note": "on it"})
    assert acked.status == 200
    shown = (await acked.json())["incident"]
    assert (shown["status"], shown["acknowledged_by"]) == ("acknowledged", OPERATOR)
    assert shown["acknowledged_at"] == "2026-11-25T17:01:00Z"
    assert shown["timeline"][-1] | {"at": None} == {
        "at": None, "kind": "acknowledged", "who": OPERATOR, "text": "on it",
        "event_id": None, "steps": []}
    resolved = await api.act(incident.id, "resolve", {"who": OPERATOR, "note": "restarted"})
    assert (await resolved.json())["incident"]["resolved_by"] == OPERATOR
    for action in ("acknowledge", "resolve"):
        body = await error_of(await api.act(incident.id, action, {}), 409)
        assert "resolved" in body["message"]


async def test_action_without_body_uses_the_defaults(api: Api) -> None:
    await api.post_events(problem())
    [incident] = await api.store.incidents()
    response = await api.client.post(f"/api/v1/incidents/{incident.id}/acknowledge",
                                     headers=api.person())
    assert response.status == 200
    assert (await response.json())["incident"]["status"] == "acknowledged"


async def test_comment_goes_on_the_timeline(api: Api) -> None:
    await api.post_events(problem())
    [incident] = await api.store.incidents()
    response = await api.act(incident.id, "comment", {"text": "customer called"})
    assert response.status == 200
    entry = (await response.json())["incident"]["timeline"][-1]
    assert (entry["kind"], entry["who"], entry["text"]) == ("comment", OPERATOR,
                                                            "customer called")


@pytest.mark.parametrize(("action", "body", "message"), [
    ("comment", {}, "text: required field is missing"),
    ("comment", {"text": ""}, "text: expected at least 1 characters, got 0"),
    ("acknowledge", {"note": 5}, "note: expected a string, got 5"),
    ("resolve", {"reason": "x"}, "reason: unknown field"),
    ("acknowledge", [], "expected an object, got a list of 0"),
])
async def test_bad_action_body_is_400_and_changes_nothing(api: Api, action: str, body: object,
                                                          message: str) -> None:
    await api.post_events(problem())
    [before] = await api.store.incidents()
    response = await api.act(before.id, action, body)
    assert (await error_of(response, 400))["message"] == message
    after = await api.store.incident(before.id)
    assert after.status == "open" and [e.kind for e in after.timeline] == ["problem"]


async def test_acting_as_someone_else_is_403(api: Api) -> None:
    await api.post_events(problem())
    [incident] = await api.store.incidents()
    response = await api.act(incident.id, "resolve", {"who": "mallory"})
    body = await error_of(response, 403)
    assert body["message"] == 'who: this token belongs to "alice", not "mallory"'
    assert (await api.store.incident(incident.id)).status == "open"


async def test_hosts_show_the_last_heartbeat(api: Api) -> None:
    api.clock.advance(30)
    await api.post_events(heartbeat(interval_seconds=60))
    await api.post_events(problem(host="web2"), host="web2")
    response = await api.get("/api/v1/hosts")
    assert response.status == 200
    assert (await response.json())["hosts"] == [
        {"host": "web1", "last_heartbeat": "2026-11-25T17:00:30Z", "interval_seconds": 60.0,
         "open_incidents": 0, "down": False, "stopped_at": None},
        {"host": "web2", "last_heartbeat": None, "interval_seconds": None,
         "open_incidents": 1, "down": False, "stopped_at": None},
    ]


# --- service ----------------------------------------------------------------------------

async def test_healthz_needs_no_token_and_says_ok(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_healthz_is_503_when_the_store_does_not_answer(api: Api) -> None:
    await api.store.close()
    response = await api.client.get("/healthz")
    assert response.status == 503
    assert await response.json() == {"status": "unavailable"}


async def test_unknown_path_and_method_get_json_errors(api: Api) -> None:
    missing = await error_of(await api.client.get("/api/v1/nothing"), 404)
    assert missing["error"] == "not_found"
    response = await api.client.delete("/api/v1/hosts", headers=api.person())
    assert (await error_of(response, 405))["error"] == "method_not_allowed"
    assert response.headers["Allow"] == "GET"


class LogWatch(logging.Handler):
    """Sets ``seen`` when a record containing ``needle`` is logged (on the loop's thread)."""

    def __init__(self, needle: str) -> None:
        super().__init__()
        self.needle = needle
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.needle in record.getMessage():
            self.seen.set()


async def test_sweeper_opens_server_down_and_logs_it(store: Store) -> None:
    watch = LogWatch("server down: web1")
    logger = logging.getLogger("monitord.central.tasks")
    logger.addHandler(watch)
    try:
        async with running(store, config(sweep_every="10ms")) as api:
            await api.post_events(heartbeat(interval_seconds=60))
            api.clock.advance(3600)
            async with asyncio.timeout(10):
                await watch.seen.wait()
            sweeper = api.app[SWEEPER]
    finally:
        logger.removeHandler(watch)
    assert sweeper.cancelled()
    [down] = await store.incidents()
    assert (down.key, down.priority, down.opened_at) == (
        "web1/server-down", "P1", T0 + dt.timedelta(seconds=3600))


async def test_sweeper_outlives_a_failing_store(store: Store) -> None:
    watch = LogWatch("heartbeat sweep failed")
    logger = logging.getLogger("monitord.central.tasks")
    logger.addHandler(watch)
    try:
        async with running(store, config(sweep_every="10ms")) as api:
            await store.close()
            async with asyncio.timeout(10):
                await watch.seen.wait()
            watch.seen.clear()
            async with asyncio.timeout(10):
                await watch.seen.wait()   # a second round: the sweeper goes on
            assert not api.app[SWEEPER].done()
    finally:
        logger.removeHandler(watch)


# --- maintenance --------------------------------------------------------------------------

async def test_maintenance_set_through_the_api_silences_notices_and_is_listed(
        api: Api) -> None:
    until = api.clock() + dt.timedelta(hours=2)
    response = await api.client.post(
        "/api/v1/maintenance", headers={"Authorization": f"Bearer {api.operator}"},
        json={"host": "web1", "reason": "moving racks", "until": until.isoformat()})
    assert response.status == 201
    await api.post_events(problem("web", "P1"))
    assert await api.store.claim_notices(api.clock(), 60.0) == []
    listed = await (await api.get("/api/v1/maintenance")).json()
    assert listed == {"maintenance": [{
        "host": "web1", "check": None, "until": "2026-11-25T19:00:00Z", "owner": "alice",
        "reason": "moving racks", "set_at": "2026-11-25T17:00:00Z", "source": "person"}]}
    ended = await api.client.delete("/api/v1/maintenance/web1",
                                    headers={"Authorization": f"Bearer {api.operator}"})
    assert ended.status == 200
    assert await (await api.get("/api/v1/maintenance")).json() == {"maintenance": []}


@pytest.mark.parametrize(("body", "message"), [
    ({"host": "web1", "reason": "x", "until": "2026-11-25T16:00:00Z"},
     "until: expected a time in the future"),
    ({"host": "web1", "reason": "x", "until": "2026-11-25T18:00:00"},
     "until: expected a timestamp with a timezone"),
    ({"host": "web1", "until": "2026-11-25T18:00:00Z"}, "reason: required field is missing"),
])
async def test_a_bad_maintenance_window_is_one_clear_error(
        api: Api, body: dict[str, str], message: str) -> None:
    response = await api.client.post("/api/v1/maintenance", json=body,
                                      headers={"Authorization": f"Bearer {api.operator}"})
    assert (await error_of(response, 400))["message"].startswith(message)


async def test_a_host_name_with_a_trailing_newline_is_refused_by_the_maintenance_api(
        api: Api) -> None:
    until = (api.clock() + dt.timedelta(hours=2)).isoformat()
    response = await api.client.post("/api/v1/maintenance", headers=api.person(),
                                      json={"host": "web1\n", "reason": "x", "until": until})
    assert (await error_of(response, 400))["message"].startswith("host:")
    await api.client.post("/api/v1/maintenance", headers=api.person(),
                          json={"host": "web1", "reason": "x", "until": until})
    ended = await api.client.delete("/api/v1/maintenance/web1%0A", headers=api.person())
    assert "host: expected a host name" in (await error_of(ended, 400))["message"]
    assert [w.host for w in await api.store.maintenance(api.clock())] == ["web1"]


def test_a_window_is_refused_for_a_name_that_only_starts_like_a_host() -> None:
    with pytest.raises(ValueError, match="host: expected a host name"):
        window("web1\n", "moving racks", T0 + dt.timedelta(hours=1), OPERATOR, T0)


# --- scrapers ------------------------------------------------------------------------------

async def test_a_scraper_token_reads_metrics_and_is_refused_on_every_other_route(
        api: Api) -> None:
    scraper = {"Authorization": f"Bearer {await auth.add_scraper(api.store, 'prom', T0)}"}
    assert (await api.post_events(problem("web", "P1"))).status == 200
    metrics = await api.client.get("/metrics", headers=scraper)
    assert metrics.status == 200 and "monitord_central_incidents_open" in await metrics.text()
    guarded = [(method.upper(), path.replace("{id}", "1").replace("{host}", "web1"))
               for path, operations in spec()["paths"].items()
               for method, operation in operations.items()
               if operation.get("security", spec().get("security")) and path != "/metrics"]
    assert ("POST", "/api/v1/maintenance") in guarded and len(guarded) >= 10
    for method, path in guarded:
        answer = await api.client.request(method, path, headers=scraper, json={})
        body = await error_of(answer, 403)
        assert body["message"].startswith("a scraper's token may only GET /metrics"), path
    assert [i.status for i in await api.store.incidents()] == ["open"]
    assert await api.store.maintenance(api.clock()) == []
    unknown = await api.client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert "add-scraper NAME" in (await error_of(unknown, 401))["message"]
