"""The nagios probe: the perfdata parser on its own, then the standard Debian plugins
against real listeners on 127.0.0.1, and small plugins written into tmp_path for the
cases a real plugin cannot be made to show (odd perfdata, bad exit codes, hangs)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from aiohttp import web
from pydantic import ValidationError

from monitord.agent.runner import run_check
from monitord.model import Result, Status
from monitord.probes.base import ProbeContext
from monitord.probes.nagios import PerfDatum, metric_name, parse_output, parse_perfdata, scale_range
from tests.conftest import make_check, unavailable
from tests.probes.readings import has_reading, number, reading, wait_for
from tests.probes.servers import closed_port, serve_app, serve_tcp, silent

PLUGINS = Path("/usr/lib/nagios/plugins")


def plugin(name: str) -> str:
    path = PLUGINS / name
    if not path.exists():
        unavailable(f"{path} is not installed (Debian monitoring-plugins-basic/-standard)")
    return str(path)


async def run_nagios(ctx: ProbeContext, *argv: str, **fields: Any) -> Result:
    return await run_check(make_check("nagios", command=list(argv), **fields), ctx)


def script(folder: Path, name: str, body: str) -> str:
    """An executable shell script ``name`` in ``folder``: a plugin of the test's own."""
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


# --- the parser -------------------------------------------------------------------------


def test_first_line_text_and_perfdata_are_split() -> None:
    out = parse_output("PROCS OK: 93 processes | procs=93;500;1000;0;\n")
    assert out.text == "PROCS OK: 93 processes"
    assert out.perfdata == [PerfDatum("procs", 93.0, "", "500", "1000", 0.0, None)]


def test_quoted_labels_keep_spaces_and_doubled_quotes() -> None:
    data = parse_perfdata("'free space /var'=12GB;;;0;100 'it''s'=1 'a=b'=2s")
    assert [(d.label, d.value, d.uom) for d in data] == [
        ("free space /var", 12.0, "GB"), ("it's", 1.0, ""), ("a=b", 2.0, "s")]
    assert data[0].max == 100.0


def test_every_field_and_many_values_are_parsed() -> None:
    data = parse_perfdata("time=0.5s;1;2;0;10 size=-1.5e3B;;;; pct=99.9% hits=42c x=U;1;2")
    assert data[0] == PerfDatum("time", 0.5, "s", "1", "2", 0.0, 10.0)
    assert (data[1].value, data[1].uom) == (-1500.0, "B")
    assert [d.uom for d in data[2:4]] == ["%", "c"]
    assert data[4] == PerfDatum("x", None, "", "1", "2")


def test_long_output_perfdata_on_later_lines_is_collected() -> None:
    out = parse_output("DISK OK | a=1\nfirst detail\nsecond detail | b=2ms\nc=3KB d=4\n"
                       "'e f'=5%\n")
    assert out.text == "DISK OK"
    assert out.long_text == ["first detail", "second detail"]
    assert [d.label for d in out.perfdata] == ["a", "b", "c", "d", "e f"]


def test_malformed_items_are_skipped_and_the_rest_kept() -> None:
    data = parse_perfdata("junk a=1 =3 b=notanumber ''=4 c=2;;; 'open=5 d=6")
    assert [d.label for d in data] == ["a", "c", "d"]


def test_text_without_perfdata_has_none() -> None:
    out = parse_output("CHECK OK - all fine\n")
    assert (out.text, out.perfdata, out.long_text) == ("CHECK OK - all fine", [], [])


@pytest.mark.parametrize(("label", "uom", "name", "factor"), [
    ("time", "ms", "time_seconds", 1e-3),
    ("time", "us", "time_seconds", 1e-6),
    ("rta", "s", "rta_seconds", 1.0),
    ("/", "%", "root_ratio", 0.01),
    ("/var/www", "MB", "var_www_bytes", 1024.0**2),
    ("Free Space", "KB", "free_space_bytes", 1024.0),
    ("size", "B", "size_bytes", 1.0),
    ("disk", "TB", "disk_bytes", 1024.0**4),
    ("requests", "c", "requests_total", 1.0),
    ("load1", "", "load1", 1.0),
    ("fan", "rpm", "fan_rpm", 1.0),
    ("5min", "", "m_5min", 1.0),
    ("???", "", "value", 1.0),
])
def test_metric_names_are_snake_case_with_base_units(
    label: str, uom: str, name: str, factor: float
) -> None:
    assert metric_name(label, uom) == (name, factor)


def test_plugin_ranges_are_scaled_to_base_units() -> None:
    assert scale_range("100:200", 1e-3) == "0.1:0.2"
    assert scale_range("@~:80", 0.01) == "@~:0.8"
    assert scale_range("10", 1.0) == "10"


# --- config -----------------------------------------------------------------------------


def test_command_needs_an_absolute_plugin_path() -> None:
    with pytest.raises(ValidationError, match="absolute path"):
        make_check("nagios", command=["check_disk", "-w", "20%"])


def test_thresholds_must_name_listed_metrics() -> None:
    with pytest.raises(ValidationError, match="list it in metrics first"):
        make_check("nagios", command=["/bin/true"], crit={"time_seconds": 1})
    check = make_check("nagios", command=["/bin/true"], metrics=["time_seconds"],
                       crit={"time_seconds": 1})
    assert "time_seconds" in check.crit


# --- the standard plugins against real listeners ----------------------------------------


async def test_check_tcp_on_a_listener_is_ok_with_its_time(ctx: ProbeContext) -> None:
    check_tcp = plugin("check_tcp")
    async with serve_tcp(silent) as port:
        result = await run_nagios(ctx, check_tcp, "-H", "127.0.0.1", "-p", str(port))
    assert result.status is Status.OK, result.summary
    assert result.summary.startswith("TCP OK - ")
    assert reading(result, "plugin_status") == "OK"
    assert number(result, "time_seconds") >= 0


async def test_check_tcp_refused_is_critical_from_the_exit_code(ctx: ProbeContext) -> None:
    check_tcp = plugin("check_tcp")
    with closed_port() as port:
        result = await run_nagios(ctx, check_tcp, "-H", "127.0.0.1", "-p", str(port))
    assert result.status is Status.CRITICAL
    assert result.summary == (f"connect to address 127.0.0.1 and port {port}: Connection "
                              "refused: plugin exited 2 (CRITICAL)")


async def test_check_tcp_expecting_a_banner_from_a_silent_server_is_critical(
    ctx: ProbeContext,
) -> None:
    check_tcp = plugin("check_tcp")
    async with serve_tcp(silent) as port:
        result = await run_nagios(ctx, check_tcp, "-H", "127.0.0.1", "-p", str(port),
                                  "-e", "220", "-t", "1", timeout="5s")
    assert result.status is Status.CRITICAL
    assert "timeout" in result.summary.lower()
    assert result.summary.endswith("plugin exited 2 (CRITICAL)")


def _site() -> web.Application:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="welcome\n")

    async def missing(request: web.Request) -> web.Response:
        raise web.HTTPNotFound()

    async def broken(request: web.Request) -> web.Response:
        raise web.HTTPInternalServerError()

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/missing", missing)
    app.router.add_get("/broken", broken)
    return app


@contextlib.asynccontextmanager
async def site() -> AsyncIterator[list[str]]:
    """A real aiohttp site; yields check_http's argv up to the URL path."""
    check_http = plugin("check_http")
    async with serve_app(_site()) as port:
        yield [check_http, "-H", "127.0.0.1", "-p", str(port), "-t", "5"]


async def test_check_http_on_a_healthy_site_is_ok_with_time_and_size(
    ctx: ProbeContext,
) -> None:
    async with site() as argv:
        result = await run_nagios(ctx, *argv, "-u", "/")
    assert result.status is Status.OK, result.summary
    assert result.summary.startswith("HTTP OK: HTTP/1.1 200 OK")
    assert number(result, "size_bytes") > 0
    assert 0 <= number(result, "time_seconds") < 10


async def test_check_http_404_is_a_warning_and_500_critical(ctx: ProbeContext) -> None:
    async with site() as argv:
        missing = await run_nagios(ctx, *argv, "-u", "/missing")
        broken = await run_nagios(ctx, *argv, "-u", "/broken")
    assert missing.status is Status.WARNING
    assert missing.summary.endswith("plugin exited 1 (WARNING)")
    assert "404" in missing.summary
    assert broken.status is Status.CRITICAL
    assert "500" in broken.summary


async def test_check_http_with_its_server_down_is_critical(ctx: ProbeContext) -> None:
    check_http = plugin("check_http")
    with closed_port() as port:
        result = await run_nagios(ctx, check_http, "-H", "127.0.0.1", "-p", str(port))
    assert result.status is Status.CRITICAL
    assert "Connection refused" in result.summary


async def test_check_http_on_a_silent_server_is_killed_at_the_deadline(
    ctx: ProbeContext,
) -> None:
    check_http = plugin("check_http")
    async with serve_tcp(silent) as port:
        result = await run_nagios(ctx, check_http, "-H", "127.0.0.1", "-p", str(port),
                                  "-t", "60", timeout="1s")
    assert result.status is Status.CRITICAL
    assert result.summary.startswith("check_http timed out after ")
    assert result.summary.endswith("; its process group was killed")


async def test_check_disk_reports_root_in_bytes_with_its_own_bounds(ctx: ProbeContext) -> None:
    check_disk = plugin("check_disk")
    ok = await run_nagios(ctx, check_disk, "-w", "1%", "-c", "1%", "-p", "/")
    warning = await run_nagios(ctx, check_disk, "-w", "100%", "-c", "1%", "-p", "/")
    assert ok.status is Status.OK, ok.summary
    assert ok.summary.startswith("DISK OK")
    assert number(ok, "root_bytes") > 0
    assert isinstance(reading(ok, "root_bytes_warn"), str)
    assert warning.status is Status.WARNING
    assert warning.summary.startswith("DISK WARNING")


async def test_check_load_reports_three_load_metrics(ctx: ProbeContext) -> None:
    check_load = plugin("check_load")
    result = await run_nagios(ctx, check_load, "-w", "1000,1000,1000", "-c", "2000,2000,2000")
    assert result.status is Status.OK, result.summary
    for name in ("load1", "load5", "load15"):
        assert number(result, name) >= 0
    assert reading(result, "load1_warn") == "1000.000"


async def test_check_procs_warning_and_critical_follow_the_plugin(ctx: ProbeContext) -> None:
    check_procs = plugin("check_procs")
    warning = await run_nagios(ctx, check_procs, "-w", "1", "-c", "1000000")
    critical = await run_nagios(ctx, check_procs, "-w", "1", "-c", "1")
    assert warning.status is Status.WARNING
    assert warning.summary.startswith("PROCS WARNING: ")
    assert number(warning, "procs") >= 1
    assert critical.status is Status.CRITICAL


async def test_a_check_threshold_on_perfdata_can_raise_the_status(ctx: ProbeContext) -> None:
    check_procs = plugin("check_procs")
    result = await run_nagios(ctx, check_procs, "-w", "1000000", "-c", "1000000",
                              metrics=["procs"], crit={"procs": 1})
    assert result.status is Status.CRITICAL
    assert result.summary.startswith("PROCS OK: ")
    assert result.summary.endswith("> 1")


# --- plugins of the test's own ------------------------------------------------------------


async def test_tricky_perfdata_becomes_base_unit_metrics(
    ctx: ProbeContext, tmp_path: Path
) -> None:
    path = script(tmp_path, "check_tricky", """\
echo "APP OK - 3 sites | 'time to first byte'=120ms;500;1000;0; 'it''s'=2"
echo "site a fine"
echo "site b fine | '/var'=50%;80;90 cache=3KB;;;0;1024"
echo "hits=17c temp=41C missing=U"
exit 0
""")
    result = await run_nagios(ctx, path)
    assert result.status is Status.OK, result.summary
    assert result.summary == "APP OK - 3 sites"
    assert number(result, "time_to_first_byte_seconds") == pytest.approx(0.12)
    assert reading(result, "time_to_first_byte_seconds_warn") == "0.5"
    assert reading(result, "time_to_first_byte_seconds_crit") == "1"
    assert number(result, "it_s") == 2
    assert number(result, "var_ratio") == pytest.approx(0.5)
    assert reading(result, "var_ratio_crit") == "0.9"
    assert number(result, "cache_bytes") == 3072
    assert number(result, "hits_total") == 17
    assert number(result, "temp_c") == 41
    assert not has_reading(result, "missing")


async def test_exit_3_is_unknown_with_the_plugin_text(ctx: ProbeContext, tmp_path: Path) -> None:
    path = script(tmp_path, "check_confused", 'echo "CONFUSED UNKNOWN - no such host"\nexit 3\n')
    result = await run_nagios(ctx, path)
    assert result.status is Status.UNKNOWN
    assert result.summary == "CONFUSED UNKNOWN - no such host: plugin exited 3 (UNKNOWN)"


async def test_exit_code_outside_0_to_3_is_unknown(ctx: ProbeContext, tmp_path: Path) -> None:
    path = script(tmp_path, "check_four", 'echo "something broke"\nexit 4\n')
    result = await run_nagios(ctx, path)
    assert result.status is Status.UNKNOWN
    assert result.summary == "check_four exited 4, not a plugin status 0-3: something broke"


async def test_plugin_killed_by_a_signal_is_unknown(ctx: ProbeContext, tmp_path: Path) -> None:
    path = script(tmp_path, "check_dies", 'echo "about to die"\nkill -KILL $$\n')
    result = await run_nagios(ctx, path)
    assert result.status is Status.UNKNOWN
    assert result.summary == f"check_dies was killed by signal {signal.SIGKILL.value}: about to die"


async def test_plugin_that_cannot_start_is_unknown(ctx: ProbeContext, tmp_path: Path) -> None:
    result = await run_nagios(ctx, str(tmp_path / "check_absent"))
    assert result.status is Status.UNKNOWN
    assert result.summary.startswith("cannot run check_absent: ")
    assert "No such file" in result.summary


async def test_plugin_that_prints_nothing_says_so(ctx: ProbeContext, tmp_path: Path) -> None:
    result = await run_nagios(ctx, script(tmp_path, "check_mute", "exit 0\n"))
    assert result.status is Status.OK
    assert result.summary == "check_mute printed nothing"


async def test_flood_of_output_is_bounded(ctx: ProbeContext, tmp_path: Path) -> None:
    path = script(tmp_path, "check_flood", """\
printf 'OK %05000d |' 0
i=0
while [ $i -lt 3000 ]; do printf " m$i=$i"; i=$((i+1)); done
echo
exit 0
""")
    result = await run_nagios(ctx, path)
    assert result.status is Status.OK
    assert len(result.summary) <= 300
    assert 0 < len(result.readings) <= 101


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _pid(pidfile: Path) -> int:
    return int(pidfile.read_text())


@pytest.fixture
def leftovers(tmp_path: Path) -> Iterator[Path]:
    """A pid file a plugin writes for its child; the child is killed at the end if alive."""
    pidfile = tmp_path / "child.pid"
    yield pidfile
    if pidfile.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(_pid(pidfile), signal.SIGKILL)


async def test_hung_plugin_and_its_child_are_killed_at_the_deadline(
    ctx: ProbeContext, tmp_path: Path, leftovers: Path
) -> None:
    # The child keeps the plugin's stdout open; only a kill of the whole group ends it.
    path = script(tmp_path, "check_hangs", f"""\
echo "starting"
sleep 300 &
echo $! > {leftovers}
wait
""")
    result = await run_nagios(ctx, path, timeout="2s")
    assert result.status is Status.CRITICAL
    assert result.summary.startswith("check_hangs timed out after ")
    child = _pid(leftovers)
    wait_for(lambda: _gone(child), "the plugin's child to be killed")


async def test_plugin_exiting_while_its_child_holds_stdout_still_reports(
    ctx: ProbeContext, tmp_path: Path, leftovers: Path
) -> None:
    path = script(tmp_path, "check_forks", f"""\
echo "FORK OK | kids=1"
sleep 300 &
echo $! > {leftovers}
exit 0
""")
    result = await run_nagios(ctx, path, timeout="5s")
    assert result.status is Status.OK, result.summary
    assert result.summary == "FORK OK"
    assert number(result, "kids") == 1
    child = _pid(leftovers)
    wait_for(lambda: _gone(child), "the lingering child to be killed")
