"""The dns probe against a real dnsmasq on 127.0.0.1, run through the real runner."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from monitord.agent.runner import run_check
from monitord.model import Result, Status
from monitord.probes.base import ProbeContext
from tests.conftest import make_check, unavailable
from tests.probes.readings import number, reading, wait_for
from tests.probes.servers import closed_port, serve_tcp, silent

ZONE = "example.test"


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (dnsmasq listens on both)."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp, \
                    contextlib.suppress(OSError):
                tcp.bind(("127.0.0.1", port))
                return port
    pytest.fail("no port free for both UDP and TCP")


def answers(port: int) -> bool:
    import dns.exception
    import dns.message
    import dns.query

    query = dns.message.make_query(f"shop.{ZONE}", "A")
    try:
        dns.query.udp(query, "127.0.0.1", timeout=0.2, port=port)
    except (dns.exception.Timeout, OSError):
        return False
    return True


@pytest.fixture(scope="module")
def dnsmasq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """dnsmasq answering for example.test only (other names are REFUSED); yields its port."""
    binary = shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq"
                                         if Path("/usr/sbin/dnsmasq").exists() else None)
    if binary is None:
        unavailable("dnsmasq is not installed (apt-get install dnsmasq-base)")
    port = free_port()
    log = tmp_path_factory.mktemp("dnsmasq") / "dnsmasq.log"
    argv = [
        binary, "--no-daemon", "--no-resolv", "--no-hosts", "--pid-file=",
        "--listen-address=127.0.0.1", "--bind-interfaces", f"--port={port}",
        f"--local=/{ZONE}/", f"--address=/shop.{ZONE}/192.0.2.10",
        f"--address=/shop.{ZONE}/2001:db8::10", f"--mx-host={ZONE},mail.{ZONE},10",
        f"--txt-record={ZONE},v=spf1 mx -all", f"--cname=www.{ZONE},shop.{ZONE}",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: process.poll() is not None or answers(port), "dnsmasq to answer")
        if process.poll() is not None:
            pytest.fail(f"dnsmasq exited: {log.read_text()}")
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


async def run_dns(ctx: ProbeContext, port: int, **fields: Any) -> Result:
    return await run_check(make_check("dns", port=port, **fields), ctx)


async def test_expected_address_is_ok(ctx: ProbeContext, dnsmasq: int) -> None:
    result = await run_dns(ctx, dnsmasq, query=f"shop.{ZONE}", expect=["192.0.2.10"])
    assert result.status is Status.OK, result.summary
    assert result.summary.startswith(
        f"DNS A shop.{ZONE} from 127.0.0.1:{dnsmasq} (UDP): 192.0.2.10 in ")
    assert reading(result, "rcode") == "NOERROR"
    assert reading(result, "answers_match") is True
    assert number(result, "answer_records") == 1
    assert number(result, "response_seconds") >= 0


async def test_ipv6_expectation_compares_addresses_not_spelling(
    ctx: ProbeContext, dnsmasq: int
) -> None:
    result = await run_dns(ctx, dnsmasq, query=f"shop.{ZONE}", record_type="AAAA",
                           expect=["2001:0db8:0000::0010"])
    assert result.status is Status.OK, result.summary
    assert ": 2001:db8::10 in " in result.summary


async def test_mx_txt_and_cname_answers(ctx: ProbeContext, dnsmasq: int) -> None:
    mx = await run_dns(ctx, dnsmasq, query=ZONE, record_type="MX",
                       expect=[f"10 MAIL.{ZONE}."])
    txt = await run_dns(ctx, dnsmasq, query=ZONE, record_type="TXT",
                        expect_matches=r"^v=spf1 ")
    cname = await run_dns(ctx, dnsmasq, query=f"www.{ZONE}", record_type="CNAME",
                          expect=[f"shop.{ZONE}"], tcp=True)
    assert mx.status is Status.OK, mx.summary
    assert f": 10 mail.{ZONE} in " in mx.summary
    assert txt.status is Status.OK, txt.summary
    assert ": v=spf1 mx -all in " in txt.summary
    assert cname.status is Status.OK, cname.summary
    assert f"(TCP): shop.{ZONE} in " in cname.summary


async def test_wrong_answer_is_critical(ctx: ProbeContext, dnsmasq: int) -> None:
    result = await run_dns(ctx, dnsmasq, query=f"shop.{ZONE}",
                           expect=["192.0.2.99", "192.0.2.10"])
    assert result.status is Status.CRITICAL
    assert ": 192.0.2.10 in " in result.summary
    assert result.summary.endswith("expected 192.0.2.10, 192.0.2.99")
    assert reading(result, "answers_match") is False


async def test_txt_not_matching_is_critical(ctx: ProbeContext, dnsmasq: int) -> None:
    result = await run_dns(ctx, dnsmasq, query=ZONE, record_type="TXT",
                           expect_matches="include:_spf.example")
    assert result.status is Status.CRITICAL
    assert result.summary.endswith("no answer matches 'include:_spf.example'")


async def test_nxdomain_is_critical(ctx: ProbeContext, dnsmasq: int) -> None:
    result = await run_dns(ctx, dnsmasq, query=f"gone.{ZONE}", expect=["192.0.2.10"])
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(
        f"DNS A gone.{ZONE} from 127.0.0.1:{dnsmasq} (UDP): NXDOMAIN in ")
    assert result.summary.endswith(": expected NOERROR; expected 192.0.2.10")
    assert number(result, "answer_records") == 0


async def test_nxdomain_can_be_the_expected_answer(ctx: ProbeContext, dnsmasq: int) -> None:
    result = await run_dns(ctx, dnsmasq, query=f"gone.{ZONE}", expect_rcode="NXDOMAIN")
    assert result.status is Status.OK, result.summary


async def test_refused_query_is_critical(ctx: ProbeContext, dnsmasq: int) -> None:
    """dnsmasq without upstream servers refuses names it is not local for."""
    result = await run_dns(ctx, dnsmasq, query="shop.example.org")
    assert result.status is Status.CRITICAL
    assert ": REFUSED in " in result.summary
    assert result.summary.endswith(": expected NOERROR")


async def test_name_without_records_of_the_type_is_critical_with_expect(
    ctx: ProbeContext, dnsmasq: int
) -> None:
    result = await run_dns(ctx, dnsmasq, query=ZONE, record_type="NS", expect=[f"ns1.{ZONE}"])
    assert result.status is Status.CRITICAL
    assert f"DNS NS {ZONE} from " in result.summary
    assert result.summary.endswith(f"expected ns1.{ZONE}")


async def test_closed_udp_port_times_out_within_the_deadline(ctx: ProbeContext) -> None:
    port = free_port()
    result = await run_dns(ctx, port, query=f"shop.{ZONE}", timeout="1s")
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(f"no answer from 127.0.0.1:{port} (UDP) within ")


@contextlib.asynccontextmanager
async def silent_udp() -> AsyncIterator[int]:
    """A UDP socket on 127.0.0.1 that receives queries and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


async def test_silent_udp_server_times_out(ctx: ProbeContext) -> None:
    async with silent_udp() as port:
        result = await run_dns(ctx, port, query=f"shop.{ZONE}", timeout="1s")
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(f"no answer from 127.0.0.1:{port} (UDP) within ")


async def test_silent_tcp_server_times_out(ctx: ProbeContext) -> None:
    async with serve_tcp(silent) as port:
        result = await run_dns(ctx, port, query=f"shop.{ZONE}", tcp=True, timeout="1s")
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(f"no answer from 127.0.0.1:{port} (TCP) within ")


async def test_closed_tcp_port_is_refused(ctx: ProbeContext) -> None:
    with closed_port() as port:
        result = await run_dns(ctx, port, query=f"shop.{ZONE}", tcp=True)
    assert result.status is Status.CRITICAL
    assert result.summary == (
        f"nothing listens on 127.0.0.1:{port} (TCP): connection refused")


def test_expect_must_fit_the_record_type() -> None:
    with pytest.raises(ValidationError, match="is not an IPv4 address"):
        make_check("dns", query="shop.example", expect=["mail.example"])
    with pytest.raises(ValidationError, match="expected an IP address"):
        make_check("dns", query="shop.example", server="ns1.example")
