"""``monitord central`` as a real process tells a webhook of an incident by itself: the
notifier runs on the service's own clock and loop, and stops cleanly with it."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.central.receivers import receiving
from tests.central.test_server import (
    central,
    free_port,
    post_until_told,
    write_config,
)

SECRET_PATH = "/hooks/XXXXsecretXXXX"


async def test_the_service_delivers_notices_on_its_own(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, port)
    token = central("add-agent", "web1", "-c", str(config)).stdout.strip()
    base = f"http://127.0.0.1:{port}"
    problem = {"id": uuid.uuid4().hex, "kind": "problem", "host": "web1", "check": "shop",
               "at": "2026-11-25T17:00:00Z", "priority": "P2", "status": "CRITICAL",
               "title": "shop failing", "summary": "HTTP 502"}
    log = tmp_path / "central.log"
    async with receiving() as hooks:
        with config.open("a") as f:
            f.write(f'\n[[channel]]\nname = "ops"\ntype = "webhook"\n'
                    f'url = "{hooks.url}{SECRET_PATH}"\n'
                    '\n[escalation]\ncheck_every = "100ms"\n')
        await post_until_told(config, log, base, token, [problem],
                              lambda: hooks.at(SECRET_PATH))
    [document] = hooks.at(SECRET_PATH)
    assert (document["kind"], document["incident"]["key"]) == ("opened", "web1/shop")
    logged = log.read_text()
    assert "central: incident 1 (web1/shop, opened): told ops" in logged
    assert "Traceback" not in logged
    assert SECRET_PATH not in logged
