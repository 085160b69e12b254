"""The central app on a real loopback socket, over a real SQLite store, for the API tests:
a clock the test moves, tokens for one agent per host and one operator, and wire events."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request

from monitord.central import auth
from monitord.central.app import create_app
from monitord.central.config import CentralConfig, CentralSection
from monitord.schema import PolicyConfig
from monitord.store.protocol import Store

T0 = dt.datetime(2026, 11, 25, 17, 0, tzinfo=dt.UTC)
OPERATOR = "alice"
MAX_BODY_BYTES = 65536


@dataclass
class Clock:
    now: dt.datetime = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@dataclass
class Api:
    """A running app and who may talk to it: ``agents[host]`` and ``operator`` tokens."""

    client: TestClient[Request, Application]
    app: Application
    store: Store
    clock: Clock
    operator: str
    agents: dict[str, str] = field(default_factory=dict)

    def agent(self, host: str = "web1") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.agents[host]}"}

    def person(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.operator}"}

    async def post_events(self, *events: dict[str, Any], host: str = "web1") -> ClientResponse:
        return await self.client.post("/api/v1/events", json={"events": list(events)},
                                      headers=self.agent(host))

    async def get(self, path: str, **params: Any) -> ClientResponse:
        return await self.client.get(path, params=params, headers=self.person())

    async def act(self, incident_id: int, action: str, body: object = None) -> ClientResponse:
        return await self.client.post(f"/api/v1/incidents/{incident_id}/{action}",
                                      json=body, headers=self.person())


def config(sweep_every: str = "1h", max_body_bytes: int = MAX_BODY_BYTES) -> CentralConfig:
    """Validated like a file's [central]; the store is handed in, so store_url is unused."""
    central = CentralSection.model_validate(
        {"sweep_every": sweep_every, "max_body_bytes": max_body_bytes})
    # The store in these tests has its own policy; here min_silence only delays the first
    # sweep after start, which the tests do not want to wait for.
    return CentralConfig(central, PolicyConfig.model_validate({"min_silence": "10ms"}))


@asynccontextmanager
async def running(store: Store, cfg: CentralConfig | None = None,
                  hosts: tuple[str, ...] = ("web1", "web2")) -> AsyncIterator[Api]:
    clock = Clock()
    app = create_app(cfg or config(), store, clock)
    agents = {host: await auth.add_agent(store, host, T0) for host in hosts}
    operator = await auth.add_operator(store, OPERATOR, T0)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield Api(client, app, store, clock, operator, agents)


# --- wire events (JSON, as an agent sends them) -----------------------------------------

def problem(check: str = "web", priority: str = "P2", host: str = "web1",
            **fields: Any) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "kind": "problem", "host": host, "check": check,
            "at": T0.isoformat(), "priority": priority, "status": "CRITICAL",
            "title": f"{check} failing", "summary": f"{check}: HTTP 502", **fields}


def recovery(check: str = "web", host: str = "web1") -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "kind": "recovery", "host": host, "check": check,
            "at": T0.isoformat(), "status": "OK"}


def heartbeat(host: str = "web1", interval_seconds: float = 60.0) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "kind": "heartbeat", "host": host, "at": T0.isoformat(),
            "interval_seconds": interval_seconds}


async def nothing_written(store: Store, now: dt.datetime = T0) -> bool:
    """No incident in any state and no host heard of: a refused request left no trace."""
    everything = await store.incidents(status=("open", "acknowledged", "resolved"))
    return everything == [] and await store.hosts(now) == []
