"""An incident reaches whoever is on call, end to end: people, a schedule and a policy set
up with the ``monitord central`` commands, a real ``monitord central`` process (on SQLite
and on PostgreSQL) and a real webhook receiver on 127.0.0.1 as the person's contact."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.central.conftest import fresh_database
from tests.central.receivers import receiving
from tests.central.test_server import (
    central,
    free_port,
    post_until_told,
)

ALICE = "/hooks/alice-XXXXsecretXXXX"
BOB = "/hooks/bob-XXXXsecretXXXX"


@contextlib.asynccontextmanager
async def store_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    if backend == "postgres":
        async with fresh_database() as dsn:
            yield dsn
    else:
        yield f"sqlite://{tmp_path / 'db' / 'central.db'}"


def run(config: Path, *args: str) -> str:
    done = central(*args, "-c", str(config))
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_notice_reaches_the_on_call_persons_webhook(
        tmp_path: Path, backend: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = tmp_path / "central.toml"
    log = tmp_path / "central.log"
    async with store_url(backend, tmp_path) as url, receiving() as hooks:
        config.write_text(f'[central]\nlisten = "127.0.0.1:{port}"\nstore_url = "{url}"\n'
                          '[escalation]\ncheck_every = "100ms"\n'
                          # The receiver is on loopback, which people's webhooks may not
                          # reach unless the config says so.
                          '[notify]\nallow_internal_webhooks = ["127.0.0.1/32"]\n')
        token = run(config, "add-agent", "web1").strip()
        for name, path in (("alice", ALICE), ("bob", BOB)):
            run(config, "person", "add", name)
            run(config, "contact", "add", name, "webhook", hooks.url + path)
        # alice alone on the rotation, so she is on call whatever the time of the test;
        # bob is the second step, long after the test ends.
        run(config, "schedule", "add", "primary", "alice", "--zone", "Europe/Berlin",
            "--rotation", "daily", "--handoff", "09:00")
        run(config, "policy", "set", "default", "--priority", "P2",
            "--step", "0: schedule:primary", "--step", "0.9: person:bob")
        assert run(config, "oncall").splitlines()[:2] == ["primary", "  now:  alice"]
        problem = {"id": uuid.uuid4().hex, "kind": "problem", "host": "web1", "check": "shop",
                   "at": "2026-11-25T17:00:00Z", "priority": "P2", "status": "CRITICAL",
                   "title": "shop failing", "summary": "HTTP 502"}
        await post_until_told(config, log, base, token, [problem], lambda: hooks.at(ALICE))
    [document] = hooks.at(ALICE)
    assert (document["kind"], document["incident"]["key"]) == ("opened", "web1/shop")
    assert hooks.at(BOB) == []
    logged = log.read_text()
    assert "central: incident 1 (web1/shop, opened): told alice:webhook" in logged
    assert "Traceback" not in logged
    assert "XXXXsecretXXXX" not in logged
