"""The running central service against its own OpenAPI file, with requests schemathesis
generates from that file: a real ``monitord central`` process on 127.0.0.1, on each store
backend, every operation, bounded in examples.

Positive examples (valid by the file) must get an answer the file documents: no 5xx, a
documented status code, content type, headers and body. Negative examples (each breaking
the file somewhere: a wrong type, a missing field, a value out of its enum or range) must
be refused with a 4xx, so the service takes nothing the file does not allow.

Generated events are steered a little so that they can be applied: their host is the
token's, their times are the service's present (the sane window is tested by hand in
test_hostile.py), and about half the incident ids name incidents that exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from pydantic import TypeAdapter, ValidationError
from schemathesis import GenerationMode, checks
from schemathesis.config import SchemathesisConfig

from monitord.central.views import spec
from monitord.events import Name, Time
from tests.central.apiclient import heartbeat, problem
from tests.central.conftest import POSTGRES_ADMIN, _admin
from tests.processes import HOST, Central, Processes, processes

EXAMPLES = 40                     # per operation and generation mode
BACKENDS = ["sqlite", "postgres"]
# A request that breaks the file is refused: 400 for its body or query, 401 for a header
# that is no token, 404 for a path that is no incident id, 413 for a body over the limit.
REFUSALS = ["400", "401", "404", "413"]
SCHEMA = schemathesis.openapi.from_dict(spec(), config=SchemathesisConfig.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}}}))
OPERATIONS = [(path, method.upper()) for path, item in spec()["paths"].items()
              for method in ("get", "post", "put", "patch", "delete") if method in item]
CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_headers_conformance,
          checks.response_schema_conformance]


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A new PostgreSQL database for the module's service (its DSN); dropped afterwards."""
    name = f"monitord_test_{uuid.uuid4().hex[:16]}"
    # CREATE DATABASE takes no parameters; the name is made here, from hex digits only.
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield urlsplit(POSTGRES_ADMIN)._replace(path=f"/{name}").geturl()
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class Service:
    central: Central
    agent_token: str

    @property
    def url(self) -> str:
        return self.central.url


@pytest.fixture(scope="module", params=BACKENDS)
def service(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One service per backend for the module, with a few incidents of HOST to act on."""
    with contextlib.ExitStack() as stack:
        store_url = (stack.enter_context(postgres_database())
                     if request.param == "postgres" else "")
        running: Processes = stack.enter_context(processes())
        central = Central(running, tmp_path_factory.mktemp(f"central-{request.param}"),
                          store_url=store_url)
        started = Service(central, central.add_agent(HOST))
        central.start()
        _seed(started)
        yield started
        assert "Traceback" not in central.log.read_text(errors="replace")


def _seed(service: Service) -> None:
    now = dt.datetime.now(dt.UTC).isoformat()
    events = [{**problem(f"check-{n}", host=HOST), "at": now} for n in range(3)]
    body = json.dumps({"events": [*events, {**heartbeat(HOST), "at": now}]}).encode()
    request = urllib.request.Request(
        f"{service.url}/api/v1/events", data=body, method="POST",
        headers={"Authorization": f"Bearer {service.agent_token}",
                 "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def steer(case: Any, rank: int, mode: GenerationMode) -> None:
    """Events of the token's host at the present time; for positive cases, every other id
    an existing one. Only what is valid is steered: a negative case's broken host, time
    or id may be what it breaks, and stays broken."""
    now = dt.datetime.now(dt.UTC)
    if isinstance(case.body, dict) and isinstance(case.body.get("events"), list):
        for event in case.body["events"]:
            if not isinstance(event, dict):
                continue
            if _valid(Name, event.get("host")):
                event["host"] = HOST
            if _valid(Time, event.get("at")):
                event["at"] = now.isoformat()
            if _valid(Time, event.get("until")):
                event["until"] = (now + dt.timedelta(hours=1)).isoformat()
    ids = case.path_parameters or {}
    if "id" in ids and rank % 2 == 0 and mode == GenerationMode.POSITIVE:
        ids["id"] = 1 + rank % 3


def _valid(kind: Any, value: object) -> bool:
    try:
        TypeAdapter(kind).validate_python(value)
    except ValidationError:
        return False
    return True


def token_for(path: str, service: Service) -> dict[str, str]:
    token = service.agent_token if path == "/api/v1/events" else service.central.operator_token
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=["positive", "negative"])
@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_service_answers_as_its_openapi_file_says(
    service: Service, path: str, method: str, mode: GenerationMode
) -> None:
    operation = SCHEMA[path][method]
    headers = token_for(path, service)
    calls = [0]

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        calls[0] += 1
        steer(case, calls[0], mode)
        # A negative case may break the request by leaving its token out: keep it out.
        given_token = "authorization" in {h.lower() for h in case.headers or {}}
        sent = headers if mode == GenerationMode.POSITIVE or given_token else {}
        response = case.call(base_url=service.url, headers=sent, timeout=20)
        negative = [checks.negative_data_rejection] if mode == GenerationMode.NEGATIVE else []
        case.validate_response(response, checks=CHECKS + negative)

    try:
        check()
    except Unsatisfiable:
        # Nothing of the operation can be broken (no parameters, no body): no negatives.
        assert mode == GenerationMode.NEGATIVE and not _breakable(operation), path


def _breakable(operation: Any) -> bool:
    return bool(operation.body or operation.query or operation.path_parameters)
