"""Log lines: syslog priorities for the journal, timestamps elsewhere, JSON, no secrets."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from monitord.logs import register_secret, setup


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def emit(log_format: str, environ: dict[str, str]) -> str:
    out = io.StringIO()
    setup(logging.INFO, log_format, stream=out, environ=environ)
    log = logging.getLogger("monitord.test")
    log.error("db: CRITICAL")
    log.warning("web: WARNING")
    log.info("web: OK")
    log.debug("not shown")
    return out.getvalue()


def test_journal_lines_carry_syslog_priorities(restore_logging: None) -> None:
    text = emit("auto", {"JOURNAL_STREAM": "8:1234"})
    assert text.splitlines() == ["<3>db: CRITICAL", "<4>web: WARNING", "<6>web: OK"]


def test_plain_lines_are_timestamped_off_the_journal(restore_logging: None) -> None:
    lines = emit("auto", {}).splitlines()
    assert len(lines) == 3
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ERROR db: CRITICAL", lines[0])


def test_json_lines_for_log_shippers(restore_logging: None) -> None:
    entries = [json.loads(line) for line in emit("json", {}).splitlines()]
    assert [(e["level"], e["message"]) for e in entries] == [
        ("error", "db: CRITICAL"), ("warning", "web: WARNING"), ("info", "web: OK")]
    assert all(e["logger"] == "monitord.test" and e["time"] for e in entries)


def test_registered_secrets_never_reach_a_line(restore_logging: None) -> None:
    register_secret("tok-5e3c1a9f")
    out = io.StringIO()
    setup(logging.INFO, "plain", stream=out, environ={})
    logging.getLogger("monitord.test").error("cannot reach central with tok-5e3c1a9f")
    assert "tok-5e3c1a9f" not in out.getvalue() and "with ***" in out.getvalue()
