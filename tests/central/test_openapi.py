"""The service against its OpenAPI document: every documented operation and answer is
exercised and each response validated against the spec (openapi-core), the app's routes
and the spec's paths are the same set, and the spec's wire schemas match the models."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import jsonschema
import pytest
from aiohttp import web
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from pydantic import BaseModel, ValidationError

from monitord.central import auth
from monitord.central.app import create_app
from monitord.central.console import is_console
from monitord.central.maintenance import MaintenanceBody
from monitord.central.payloads import ActionBody, CommentBody
from monitord.central.views import spec
from monitord.events import Batch, Event, Step
from monitord.store.protocol import Store
from tests.central.apiclient import MAX_BODY_BYTES, Api, config, heartbeat, problem, running

SPEC = spec()
STEP = {"fix": "restart-service", "argv": ["restart-service", "nginx"], "exit_code": 0,
        "duration_seconds": 1.5, "output": "done", "ended": "exit 0 in 1.5s",
        "reprobe_status": "OK", "reprobe_summary": "HTTP 200"}
SERVER = SPEC["servers"][0]["url"]
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def openapi() -> OpenAPI:
    return OpenAPI.from_dict(SPEC)   # also validates the document itself


@pytest.fixture
async def api(store: Store) -> AsyncIterator[Api]:
    async with running(store) as started:
        yield started


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in SPEC["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def documented() -> set[tuple[str, int]]:
    return {(op["operationId"], int(status)) for _, _, op in operations()
            for status in op["responses"]}


class Exerciser:
    """Sends requests, validates each answer against the spec, and notes what it saw."""

    def __init__(self, api: Api, openapi: OpenAPI) -> None:
        self.api = api
        self.openapi = openapi
        self.seen: set[tuple[str, int]] = set()

    async def call(self, operation: str, method: str, path: str, status: int, *,
                   token: str | None = None, body: object = None, raw: bytes | None = None,
                   query: dict[str, str] | None = None) -> Any:
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        response = await self.api.client.request(method, path, params=query, data=data,
                                                 headers=headers)
        content = await response.read()
        assert response.status == status, content
        request = MockRequest(SERVER, method.lower(), path, args=query, headers=headers,
                              data=data)
        if status < 300:
            self.openapi.validate_request(request)
        self.openapi.validate_response(request, MockResponse(
            content, status_code=response.status, headers=dict(response.headers),
            content_type=response.content_type))
        self.seen.add((operation, status))
        return json.loads(content) if response.content_type == "application/json" else content


async def test_every_documented_answer_matches_the_spec(api: Api, openapi: OpenAPI) -> None:
    x = Exerciser(api, openapi)
    agent, person = api.agents["web1"], api.operator
    events = "/api/v1/events"
    await x.call("postEvents", "POST", events, 200, token=agent,
                 body={"events": [problem("web", steps=[STEP]), problem("db", "P1"),
                                  heartbeat()]})
    await x.call("postEvents", "POST", events, 400, token=agent, raw=b"{")
    await x.call("postEvents", "POST", events, 401, token="wrong", body={"events": []})
    await x.call("postEvents", "POST", events, 403, token=agent,
                 body={"events": [problem(host="web2")]})
    await x.call("postEvents", "POST", events, 413, token=agent,
                 raw=b" " * (MAX_BODY_BYTES + 1))

    listed = await x.call("listIncidents", "GET", "/api/v1/incidents", 200, token=person,
                          query={"status": "open,acknowledged", "priority": "P1,P2",
                                 "host": "web1", "limit": "10"})
    first, second = (i["id"] for i in listed["incidents"])
    await x.call("listIncidents", "GET", "/api/v1/incidents", 400, token=person,
                 query={"status": "closed"})
    await x.call("listIncidents", "GET", "/api/v1/incidents", 401)

    one = f"/api/v1/incidents/{first}"
    await x.call("getIncident", "GET", one, 200, token=person)
    await x.call("getIncident", "GET", one, 401, token=agent)
    await x.call("getIncident", "GET", "/api/v1/incidents/999", 404, token=person)

    for action, operation in (("acknowledge", "acknowledgeIncident"),
                              ("resolve", "resolveIncident"), ("comment", "commentIncident")):
        good = {"text": "seen"} if action == "comment" else {"note": "seen"}
        path = f"{one}/{action}"
        await x.call(operation, "POST", path, 200, token=person, body=good)
        await x.call(operation, "POST", path, 400, token=person, body={"note": 1, "text": 1})
        await x.call(operation, "POST", path, 401, body=good)
        await x.call(operation, "POST", path, 403, token=person, body=good | {"who": "bob"})
        await x.call(operation, "POST", f"/api/v1/incidents/999/{action}", 404,
                     token=person, body=good)
        await x.call(operation, "POST", path, 413, token=person,
                     raw=b" " * (MAX_BODY_BYTES + 1))
    await x.call("acknowledgeIncident", "POST", f"{one}/acknowledge", 409, token=person,
                 body={})
    await x.call("resolveIncident", "POST", f"{one}/resolve", 409, token=person, body={})
    await x.call("resolveIncident", "POST", f"/api/v1/incidents/{second}/resolve", 200,
                 token=person)

    await x.call("listHosts", "GET", "/api/v1/hosts", 200, token=person)
    await x.call("listHosts", "GET", "/api/v1/hosts", 401, token=agent)
    stats = await x.call("getFixStats", "GET", "/api/v1/fix-stats", 200, token=person,
                         query={"since": "30d"})
    assert stats["totals"]["runs"] == 1
    await x.call("getFixStats", "GET", "/api/v1/fix-stats", 400, token=person,
                 query={"since": "forever"})
    await x.call("getFixStats", "GET", "/api/v1/fix-stats", 401, token=agent)
    await x.call("getMetrics", "GET", "/metrics", 200, token=person)
    await x.call("getMetrics", "GET", "/metrics", 401)

    windows, until = "/api/v1/maintenance", "2999-01-01T00:00:00Z"
    soon = (api.clock() + dt.timedelta(hours=1)).isoformat()
    window = {"host": "web1", "reason": "disk swap", "until": soon}
    await x.call("setMaintenance", "POST", windows, 201, token=person, body=window)
    await x.call("setMaintenance", "POST", windows, 400, token=person,
                 body=window | {"until": until})
    await x.call("setMaintenance", "POST", windows, 401, token=agent, body=window)
    await x.call("setMaintenance", "POST", windows, 413, token=person,
                 raw=b" " * (MAX_BODY_BYTES + 1))
    await x.call("listMaintenance", "GET", windows, 200, token=person)
    await x.call("listMaintenance", "GET", windows, 401)
    await x.call("endMaintenance", "DELETE", f"{windows}/web1", 200, token=person)
    await x.call("endMaintenance", "DELETE", f"{windows}/web1", 404, token=person)
    await x.call("endMaintenance", "DELETE", f"{windows}/-web1", 400, token=person)
    await x.call("endMaintenance", "DELETE", f"{windows}/web1", 401, token=agent)
    await x.call("getOpenapi", "GET", "/api/v1/openapi.json", 200)
    await x.call("healthz", "GET", "/healthz", 200)

    scraper = await auth.add_scraper(api.store, "prometheus", api.clock())
    await x.call("getMetrics", "GET", "/metrics", 200, token=scraper)
    capped = await x.call("getFixStats", "GET", "/api/v1/fix-stats", 200, token=person,
                          query={"since": "30d", "host": "web1", "check": "web",
                                 "limit": "1"})
    assert (capped["limit"], capped["truncated"]) == (1, False)
    for operation, method, path in (
            ("listIncidents", "GET", "/api/v1/incidents"), ("getIncident", "GET", one),
            ("listHosts", "GET", "/api/v1/hosts"),
            ("getFixStats", "GET", "/api/v1/fix-stats"),
            ("listMaintenance", "GET", windows), ("setMaintenance", "POST", windows),
            ("endMaintenance", "DELETE", f"{windows}/web1")):
        await x.call(operation, method, path, 403, token=scraper,
                     body=window if method == "POST" else None)

    await api.store.close()   # from here on the store does not answer
    await x.call("postEvents", "POST", events, 503, token=agent,
                 body={"events": [heartbeat()]})
    await x.call("listIncidents", "GET", "/api/v1/incidents", 503, token=person)
    await x.call("getIncident", "GET", one, 503, token=person)
    for action, operation in (("acknowledge", "acknowledgeIncident"),
                              ("resolve", "resolveIncident"), ("comment", "commentIncident")):
        await x.call(operation, "POST", f"{one}/{action}", 503, token=person,
                     body={"text": "x"} if action == "comment" else {})
    await x.call("listHosts", "GET", "/api/v1/hosts", 503, token=person)
    await x.call("getFixStats", "GET", "/api/v1/fix-stats", 503, token=person)
    await x.call("getMetrics", "GET", "/metrics", 503, token=person)
    await x.call("listMaintenance", "GET", windows, 503, token=person)
    await x.call("setMaintenance", "POST", windows, 503, token=person, body=window)
    await x.call("endMaintenance", "DELETE", f"{windows}/web1", 503, token=person)
    await x.call("healthz", "GET", "/healthz", 503)

    assert x.seen == documented()


async def test_served_document_is_the_spec(api: Api) -> None:
    response = await api.client.get("/api/v1/openapi.json")
    assert await response.json() == SPEC


def test_every_route_is_in_the_spec_and_every_path_is_a_route(store: Store) -> None:
    # The web console's pages (/ and /console/...) answer HTML to browsers, not the API.
    app = create_app(config(), store)
    routes = {(r.method.lower(), _template(r.resource)) for r in app.router.routes()
              if not is_console(_template(r.resource))}
    assert routes == {(method, path) for path, method, _ in operations()}


def _template(resource: web.AbstractResource | None) -> str:
    assert resource is not None
    return resource.canonical


@pytest.mark.parametrize(("model", "schema"), [
    (Batch, "Batch"), (Event, "Event"), (Step, "Step"),
    (ActionBody, "ActionBody"), (CommentBody, "CommentBody"),
    (MaintenanceBody, "MaintenanceBody"),
])
def test_spec_schema_has_the_models_fields(model: type[BaseModel], schema: str) -> None:
    described = SPEC["components"]["schemas"][schema]
    assert set(described["properties"]) == set(model.model_fields)
    required = {name for name, f in model.model_fields.items() if f.is_required()}
    assert set(described.get("required", [])) == required


@pytest.mark.parametrize(("event", "valid"), [
    ({"kind": "heartbeat", "interval_seconds": 60}, True),
    ({"kind": "heartbeat"}, False),
    ({"kind": "heartbeat", "check": "web", "interval_seconds": 60}, False),
    ({"kind": "stopped", "check": "web"}, False),
    ({"kind": "problem", "check": "web", "priority": "P1"}, True),
    ({"kind": "problem", "check": "web"}, False),
    ({"kind": "problem", "check": "web", "priority": None}, False),
    ({"kind": "recovery"}, False),
    ({"kind": "maintenance"}, True),
])
def test_spec_and_model_agree_on_each_kinds_fields(event: dict[str, Any], valid: bool) -> None:
    full = {"id": "0" * 32, "host": "web1", "at": "2026-11-25T17:00:00Z", **event}
    schema = {**SPEC["components"]["schemas"]["Event"], "components": SPEC["components"]}
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(full))
    assert (errors == []) is valid, errors
    try:
        Event.model_validate(full)
        model_valid = True
    except ValidationError:
        model_valid = False
    assert model_valid is valid
