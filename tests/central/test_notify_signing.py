"""Signed webhooks against a receiver process that verifies them as README.md shows: the
notifier's POST is taken, the same request again is refused, so is one with an old
timestamp or a changed body; custom headers come from secret files and are never logged."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from monitord.central.notify.settings import ChannelConfig, check_channel
from monitord.central.notify.signing import signature
from monitord.store.protocol import Store
from tests.central.test_notify import central, hook, open_incident, round_at, settings

RECEIVER = Path(__file__).with_name("signed_receiver.py")
SECRET = "whsec-0123456789abcdef0123456789abcdef"
AUTHORIZATION = "Bearer hook-token-5f3a9c"
START_SECONDS = 10.0


@asynccontextmanager
async def receiver(tmp_path: Path, secret: str = SECRET) -> AsyncIterator[tuple[str, Path]]:
    """The receiver process: its URL and its log."""
    (tmp_path / "receiver.secret").write_text(secret + "\n")
    (tmp_path / "receiver.auth").write_text(AUTHORIZATION + "\n")
    log = tmp_path / "receiver.log"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(RECEIVER), str(tmp_path / "receiver.secret"),
        str(tmp_path / "receiver.auth"), str(log), stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(START_SECONDS):
            line = (await proc.stdout.readline()).decode()
        assert line.startswith("listening "), line
        yield f"http://127.0.0.1:{int(line.split()[1])}/hook", log
    finally:
        proc.terminate()
        async with asyncio.timeout(START_SECONDS):
            await proc.wait()


def signed_channel(url: str, tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "hook.secret").write_text(SECRET + "\n")
    (tmp_path / "hook.auth").write_text(AUTHORIZATION + "\n")
    return hook("ops", url, secret_file=str(tmp_path / "hook.secret"),
                header_files={"Authorization": str(tmp_path / "hook.auth")})


def logged(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code


async def test_a_receiver_verifies_the_signature_and_refuses_replays(
        store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with receiver(tmp_path) as (url, log):
        async with central(store, settings(signed_channel(url, tmp_path))) as api:
            await open_incident(api, "P1")
            [delivery] = await round_at(api, 0)
            assert delivery.told == ["ops"]
        [taken] = logged(log)
        assert taken["verdict"] == "accepted"
        headers, body = taken["headers"], taken["body"].encode()
        assert headers["Authorization"] == AUTHORIZATION
        assert headers["X-Monitord-Signature"].startswith("v1=")
        assert json.loads(body)["incident"]["key"] == "web1/shop"
        sent = {k: headers[k] for k in ("Authorization", "Content-Type",
                                        "X-Monitord-Timestamp", "X-Monitord-Signature")}

        replay = await asyncio.to_thread(post, url, body, sent)
        old = int(time.time()) - 3600
        stale = await asyncio.to_thread(post, url, body, sent | {
            "X-Monitord-Timestamp": str(old),
            "X-Monitord-Signature": signature(SECRET, old, body)})
        changed = await asyncio.to_thread(post, url, body.replace(b"P1", b"P3"), sent)
    assert (replay, stale, changed) == (409, 409, 401)
    assert [entry["verdict"] for entry in logged(log)[1:]] == [
        "replay: this signature was seen before",
        "replay: the timestamp is too old (or too new)", "bad signature"]
    assert SECRET not in caplog.text and AUTHORIZATION not in caplog.text


async def test_a_wrong_secret_is_refused_by_the_receiver(store: Store, tmp_path: Path) -> None:
    async with receiver(tmp_path, secret="another-secret-entirely") as (url, _):
        async with central(store, settings(signed_channel(url, tmp_path))) as api:
            await open_incident(api, "P1")
            [delivery] = await round_at(api, 0)
    assert delivery.refused == {"ops": "HTTP 401"}


def test_the_signature_is_an_hmac_of_the_timestamp_and_the_body() -> None:
    expected = hmac.new(b"k", b"1764090000.{}", hashlib.sha256).hexdigest()
    assert signature("k", 1764090000, b"{}") == f"v1={expected}"


@pytest.mark.parametrize(("keys", "problem"), [
    ({"type": "slack", "secret_file": "/etc/monitord/s"},
     "secret_file: only webhook channels have one, not a slack channel"),
    ({"header_files": {"Content-Type": "/etc/monitord/h"}},
     'header_files: "Content-Type": monitord sets this header itself; choose another'),
    ({"header_files": {"X Auth": "/etc/monitord/h"}},
     'header_files: "X Auth": expected a header name of letters, digits and "-", like '
     '"Authorization"'),
])
def test_signing_keys_are_checked(keys: dict[str, Any], problem: str) -> None:
    channel = ChannelConfig.model_validate(
        {"name": "ops", "type": "webhook", "url": "https://hooks.example/x", **keys})
    assert check_channel(channel, mail_section=False) == [problem]


def test_the_readme_shows_the_receivers_own_verifier() -> None:
    source = RECEIVER.read_text().split("# --- the README's snippet")[1]
    snippet = source.split("\n", 1)[1].split("# -----")[0]
    readme = (RECEIVER.parents[2] / "README.md").read_text()
    assert _lines(snippet) in _lines(readme)


def _lines(text: str) -> str:
    """The text without its blank lines (PEP 8 wants two between classes, a README one)."""
    return "\n".join(line for line in text.splitlines() if line.strip())
