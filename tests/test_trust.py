"""Everything run or rendered as root passes one rule: owned by root, writable by nobody
else, all the way up its path and up its links' targets."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from monitord.agent.events import event_renderer
from monitord.agent.runner import run_check
from monitord.commands import run_command
from monitord.model import Status
from monitord.probes.base import ProbeContext, Shared
from monitord.trust import unsafe_reason
from tests.conftest import make_check


def script(path: Path, body: str = "echo ran", mode: int = 0o755) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(mode)
    return path


def writable_by_all(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o777)        # no sticky bit: anyone may replace what is in it
    return directory


def test_a_link_to_a_root_owned_file_in_a_world_writable_directory_is_refused(
        tmp_path: Path) -> None:
    target = script(writable_by_all(tmp_path / "drop") / "fix")
    link = tmp_path / "safe" / "fix"
    link.parent.mkdir()
    link.symlink_to(target)
    assert unsafe_reason(link) == f"{tmp_path / 'drop'} is writable by group or others"


def test_a_link_in_a_world_writable_directory_is_refused_wherever_it_points(
        tmp_path: Path) -> None:
    target = script(tmp_path / "safe" / "fix")
    link = writable_by_all(tmp_path / "drop") / "fix"
    link.symlink_to(target)
    assert unsafe_reason(target) == ""
    assert unsafe_reason(link) == f"{tmp_path / 'drop'} is writable by group or others"


def test_a_root_owned_file_below_a_sticky_directory_is_safe(tmp_path: Path) -> None:
    sticky = tmp_path / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)          # like /tmp: others may add files, not replace ours
    assert unsafe_reason(script(sticky / "own" / "fix")) == ""


async def test_a_world_writable_plugin_is_refused_with_the_reason(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    plugin = script(tmp_path / "plugins" / "check_x", body=f"touch {marker}", mode=0o777)
    check = make_check("nagios", command=[str(plugin)])
    result = await run_check(check, ProbeContext(Shared()))
    assert result.status is Status.UNKNOWN
    assert result.summary == (f"cannot run check_x: refused: {plugin} is writable by group "
                              "or others")
    assert not marker.exists()


async def test_a_start_command_in_a_group_writable_directory_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    directory = tmp_path / "bin"
    start = script(directory / "start-app", body=f"touch {marker}")
    directory.chmod(0o775)
    done = await run_command([str(start)], timeout=10)
    assert done.error == f"refused: {directory} is writable by group or others"
    assert done.describe().startswith("could not run: refused:") and not marker.exists()


@pytest.mark.parametrize(("mode", "text", "why"), [
    (0o666, "{{ host }} PWNED", "is writable by group or others"),
    (0o644, "{{ ''.__class__.__mro__[1].__subclasses__() }}", "SecurityError"),
])
def test_an_unsafe_admin_template_is_not_rendered(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int, text: str,
        why: str) -> None:
    template = tmp_path / "problem.title.j2"
    template.write_text(text)
    template.chmod(mode)
    title, _ = event_renderer(str(tmp_path)).render("problem", _context())
    assert title.startswith("web1/site: CRITICAL")      # the stock template's
    assert why in caplog.text and "using the stock one" in caplog.text
    assert caplog.records[-1].levelno == logging.ERROR


def _context() -> dict[str, object]:
    return {"host": "web1", "check": "site", "priority": "P1", "status": "CRITICAL",
            "summary": "HTTP 502", "reason": "no fix configured", "recurring": False,
            "suppressed_by": None, "steps": [], "fix": "", "failure": "", "flapping": False,
            "readings": ""}
