"""The snmp probe against net-snmp's snmpd, started per test on a high UDP port of 127.0.0.1
with its own config and persistent directory under tmp_path."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from monitord.agent.runner import run_check
from monitord.model import Result, Status
from monitord.probes.base import ProbeContext
from monitord.probes.snmp import counter_delta
from tests.conftest import make_check, unavailable
from tests.probes.readings import has_reading, number, reading

SNMPD = "/usr/sbin/snmpd"
COMMUNITY = "monitord-ro"
USER, AUTH_KEY, PRIV_KEY = "monitor", "auth-secret-1", "priv-secret-1"
LA_LOAD_1 = "1.3.6.1.4.1.2021.10.1.3.1"  # UCD-SNMP-MIB laLoad.1, the 1-minute load as text
IF_NUMBER = "1.3.6.1.2.1.2.1.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
LO_IN_OCTETS = "1.3.6.1.2.1.31.1.1.1.6.1"  # ifHCInOctets of ifIndex 1, the loopback
READY_SECONDS = 15.0
POLL_SECONDS = 0.05

CONFIG = f"""\
rocommunity {COMMUNITY} 127.0.0.1
sysName web1
createUser {USER} SHA "{AUTH_KEY}" AES "{PRIV_KEY}"
rouser {USER} priv
"""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Snmpd:
    """snmpd in the foreground, reading only ``folder/snmpd.conf`` (-C -c), no MIB files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_udp_port()
        self.proc: subprocess.Popen[bytes] | None = None
        (folder / "snmpd.conf").write_text(CONFIG)
        (folder / "state").mkdir()
        self.log = folder / "snmpd.log"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [SNMPD, "-f", "-Lo", "-C", "-c", str(self.folder / "snmpd.conf"),
                 f"--persistentDir={self.folder / 'state'}", "-M", "/nonexistent", "-m", "",
                 f"udp:127.0.0.1:{self.port}"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    async def ready(self) -> None:
        """Poll a GET of sysUpTime until it answers (bounded), failing if snmpd exits."""
        deadline = time.monotonic() + READY_SECONDS
        while await get(self.port, SYS_UPTIME) is None:
            assert self.proc is not None and self.proc.poll() is None, \
                f"snmpd exited: {self.log.read_text(errors='replace')[-2000:]}"
            if time.monotonic() > deadline:
                pytest.fail(f"snmpd on port {self.port} did not answer in {READY_SECONDS} s")
            await asyncio.sleep(POLL_SECONDS)


async def get(port: int, oid: str) -> int | None:
    """One v2c GET of an integer value, or None when there is no answer yet."""
    from pysnmp.hlapi.v3arch.asyncio import (
        CommunityData,
        ContextData,
        ObjectIdentity,
        ObjectType,
        SnmpEngine,
        UdpTransportTarget,
        get_cmd,
    )

    engine = SnmpEngine()
    try:
        target = await UdpTransportTarget.create(("127.0.0.1", port), timeout=0.2, retries=0)
        error, status, _, binds = await get_cmd(
            engine, CommunityData(COMMUNITY), target, ContextData(),
            ObjectType(ObjectIdentity(oid)), lookupMib=False)
    finally:
        engine.close_dispatcher()
    return None if error or status else int(binds[0][1])


async def poll(condition: Any, what: str, limit: float = 20.0) -> None:
    """Await ``condition()`` until it is true, for at most ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        await asyncio.sleep(POLL_SECONDS)


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, str]:
    files = {"community_file": COMMUNITY, "auth_key_file": AUTH_KEY, "priv_key_file": PRIV_KEY}
    for key, secret in files.items():
        (tmp_path / key).write_text(secret + "\n")
    return {key: str(tmp_path / key) for key in files}


@pytest.fixture
async def snmpd(tmp_path: Path) -> AsyncIterator[Snmpd]:
    async with running_snmpd(tmp_path) as agent:
        yield agent


@contextlib.asynccontextmanager
async def running_snmpd(tmp_path: Path) -> AsyncIterator[Snmpd]:
    if shutil.which(SNMPD) is None:
        unavailable("net-snmp's snmpd is not installed (apt-get install snmpd)")
    folder = tmp_path / "snmpd"
    folder.mkdir()
    agent = Snmpd(folder)
    try:
        agent.start()
        await agent.ready()
        yield agent
    finally:
        agent.stop()


async def run_snmp(ctx: ProbeContext, port: int, **fields: Any) -> Result:
    return await run_check(make_check("snmp", port=port, **fields), ctx)


def v3(keys: dict[str, str], **changes: str) -> dict[str, Any]:
    return {"version": "3", "user": USER, "auth_key_file": keys["auth_key_file"],
            "priv_key_file": keys["priv_key_file"], **changes}


# --- v2c and v3 GET ---------------------------------------------------------------------


async def test_v2c_get_of_named_oids_is_ok(ctx: ProbeContext, snmpd: Snmpd,
                                           keys: dict[str, str]) -> None:
    result = await run_snmp(ctx, snmpd.port, community_file=keys["community_file"],
                            oids={"cpu_load": LA_LOAD_1, "interface_count": IF_NUMBER},
                            expect={"sys_name": "^web1$"})
    assert result.status is Status.OK, result.summary
    assert result.summary.startswith(f"SNMP 127.0.0.1:{snmpd.port} answered in ")
    assert number(result, "cpu_load") >= 0  # laLoad is text ("0.16"), reported as a number
    assert number(result, "interface_count") >= 1
    assert number(result, "uptime_seconds") >= 0
    assert reading(result, "sys_name") == "web1"
    assert reading(result, "sys_name_matches") is True


async def test_value_over_threshold_is_warning(ctx: ProbeContext, snmpd: Snmpd) -> None:
    result = await run_snmp(ctx, snmpd.port, community=COMMUNITY,
                            oids={"interface_count": IF_NUMBER}, warn={"interface_count": 0})
    assert result.status is Status.WARNING
    assert "interface_count" in result.summary.split(": ", 1)[1]


async def test_string_not_matching_expect_is_critical(ctx: ProbeContext, snmpd: Snmpd) -> None:
    result = await run_snmp(ctx, snmpd.port, community=COMMUNITY, expect={"sys_name": "^db1$"})
    assert result.status is Status.CRITICAL
    assert result.summary.endswith("sys_name does not match '^db1$'")


async def test_oid_the_agent_lacks_is_unknown(ctx: ProbeContext, snmpd: Snmpd) -> None:
    result = await run_snmp(ctx, snmpd.port, community=COMMUNITY,
                            oids={"nothing": "1.3.6.1.4.1.99999.1.0"})
    assert result.status is Status.UNKNOWN
    assert result.summary == (f"127.0.0.1:{snmpd.port} has no value for nothing "
                              "(1.3.6.1.4.1.99999.1.0); check the OID and the agent's view")


async def test_wrong_community_gets_no_answer(ctx: ProbeContext, snmpd: Snmpd) -> None:
    result = await run_snmp(ctx, snmpd.port, community="wrong", timeout="1s")
    assert result.status is Status.CRITICAL
    assert result.summary == (f"no answer from SNMP agent 127.0.0.1:{snmpd.port} within "
                              "400ms (2 tries): it is down, or it ignores this community "
                              "or this address")


async def test_v3_auth_priv_is_ok(ctx: ProbeContext, snmpd: Snmpd, keys: dict[str, str]) -> None:
    result = await run_snmp(ctx, snmpd.port, **v3(keys), expect={"sys_name": "^web1$"})
    assert result.status is Status.OK, result.summary
    assert reading(result, "sys_name_matches") is True


async def test_v3_wrong_auth_key_is_unknown(ctx: ProbeContext, snmpd: Snmpd,
                                            keys: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "bad-key").write_text("not-the-key\n")
    result = await run_snmp(ctx, snmpd.port, **v3(keys, auth_key_file=str(tmp_path / "bad-key")))
    assert result.status is Status.UNKNOWN
    assert result.summary == (f"127.0.0.1:{snmpd.port} rejected the authentication key of "
                              f"user {USER}; check auth_key_file and auth_protocol")


async def test_v3_wrong_priv_key_gets_no_answer(ctx: ProbeContext, snmpd: Snmpd,
                                                keys: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "bad-key").write_text("not-the-key\n")
    result = await run_snmp(ctx, snmpd.port, timeout="1s",
                            **v3(keys, priv_key_file=str(tmp_path / "bad-key")))
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(f"no answer from SNMP agent 127.0.0.1:{snmpd.port} ")
    assert "user's keys" in result.summary


async def test_v3_unknown_user_is_unknown(ctx: ProbeContext, snmpd: Snmpd,
                                          keys: dict[str, str]) -> None:
    result = await run_snmp(ctx, snmpd.port, **v3(keys, user="nobody"))
    assert result.status is Status.UNKNOWN
    assert result.summary == f"127.0.0.1:{snmpd.port} has no SNMPv3 user nobody"


async def test_stopped_agent_gets_no_answer(ctx: ProbeContext, snmpd: Snmpd) -> None:
    snmpd.stop()
    result = await run_snmp(ctx, snmpd.port, community=COMMUNITY, timeout="1s", retries=0)
    assert result.status is Status.CRITICAL
    # 80 % of the 1 s deadline, less the few ms the probe took to get there
    assert re.match(rf"no answer from SNMP agent 127\.0\.0\.1:{snmpd.port} within "
                    r"(7\d\d|800)ms \(1 try\)", result.summary), result.summary


async def test_silent_udp_server_is_reported_inside_the_deadline(ctx: ProbeContext) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))  # bound, so datagrams are queued and never answered
        port = sock.getsockname()[1]
        result = await run_snmp(ctx, port, community=COMMUNITY, timeout="1s")
    assert result.status is Status.CRITICAL
    # The probe's own message, not the runner's "timed out after 1s": it ended in time.
    assert result.summary.startswith(f"no answer from SNMP agent 127.0.0.1:{port} within ")


async def test_unreadable_community_file_is_unknown(ctx: ProbeContext, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-file"
    result = await run_snmp(ctx, 161, community_file=str(missing))
    assert result.status is Status.UNKNOWN
    assert result.summary == f"cannot read community_file {missing}: No such file or directory"


# --- interfaces and rates -----------------------------------------------------------------


async def test_loopback_interface_up_is_ok(ctx: ProbeContext, snmpd: Snmpd) -> None:
    result = await run_snmp(ctx, snmpd.port, community=COMMUNITY, interfaces=True,
                            interfaces_matching="^lo$")
    assert result.status is Status.OK, result.summary
    assert result.summary.endswith(", 1 interface, 0 down")
    assert reading(result, "admin_status", interface="lo") == "up"
    assert reading(result, "oper_status", interface="lo") == "up"
    assert number(result, "interfaces_down") == 0
    assert not has_reading(result, "in_bytes_per_second", interface="lo")  # first sample


@contextlib.contextmanager
def veth_with_peer_down() -> Iterator[str]:
    """A veth pair whose first end is up and whose peer is down: admin up, oper down."""
    name = f"mdt{os.getpid() % 100000}a"
    peer = name[:-1] + "b"
    if shutil.which("ip") is None:
        pytest.skip("iproute2's ip is not installed")
    made = subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", peer],
                          capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot create a veth pair here (needs CAP_NET_ADMIN): {made.stderr}")
    try:
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "link", "del", name], check=False)  # removes the peer too


async def test_interface_up_but_link_down_is_critical_and_named(
        ctx: ProbeContext, tmp_path: Path) -> None:
    with veth_with_peer_down() as name:
        # snmpd reads the interface list at start, so the veth exists first.
        async with running_snmpd(tmp_path) as agent:
            result = await run_snmp(ctx, agent.port, community=COMMUNITY, interfaces=True,
                                    interfaces_matching=f"^(lo|{name[:-1]}.)$")
    assert result.status is Status.CRITICAL
    assert result.summary.endswith(
        f", 3 interfaces, 1 down: {name} is administratively up but operationally down")
    assert reading(result, "oper_status", interface=name) in ("down", "lowerLayerDown")
    peer = name[:-1] + "b"  # down on purpose: not a problem
    assert reading(result, "admin_status", interface=peer) == "down"
    assert reading(result, "admin_up_oper_down", interface=peer) is False
    assert reading(result, "admin_up_oper_down", interface="lo") is False
    assert number(result, "interfaces_down") == 1


async def test_loopback_octet_rates_over_two_runs(ctx: ProbeContext, snmpd: Snmpd) -> None:
    check = {"community": COMMUNITY, "interfaces": True, "interfaces_matching": "^lo$",
             "rates": {"lo_in_bytes_per_second": LO_IN_OCTETS}}
    before = await get(snmpd.port, LO_IN_OCTETS)
    first = await run_snmp(ctx, snmpd.port, **check)
    assert first.status is Status.OK, first.summary
    assert not has_reading(first, "lo_in_bytes_per_second")
    send_loopback_traffic(200_000)

    async def agent_saw_traffic() -> bool:
        now = await get(snmpd.port, LO_IN_OCTETS)  # the agent caches counters a few seconds
        return now is not None and before is not None and now > before + 200_000

    await poll(agent_saw_traffic, "snmpd to report the loopback traffic")
    second = await run_snmp(ctx, snmpd.port, **check)
    assert second.status is Status.OK, second.summary
    assert number(second, "in_bytes_per_second", interface="lo") > 0
    assert number(second, "out_bytes_per_second", interface="lo") > 0
    assert number(second, "lo_in_bytes_per_second") > 0


async def test_agent_restart_gives_no_rates_that_run(ctx: ProbeContext, snmpd: Snmpd) -> None:
    check = {"community": COMMUNITY, "interfaces": True, "interfaces_matching": "^lo$"}

    async def up_a_while() -> bool:  # so that the restarted agent's sysUpTime is lower
        ticks = await get(snmpd.port, SYS_UPTIME)
        return ticks is not None and ticks >= 100

    await poll(up_a_while, "snmpd's sysUpTime to pass 1 s")
    first = await run_snmp(ctx, snmpd.port, **check)
    assert first.status is Status.OK, first.summary
    snmpd.stop()
    snmpd.start()
    await snmpd.ready()
    second = await run_snmp(ctx, snmpd.port, **check)
    assert second.status is Status.OK, second.summary
    assert second.summary.endswith(", agent restarted since the last run (no rates this run)")
    assert not has_reading(second, "in_bytes_per_second", interface="lo")
    third = await run_snmp(ctx, snmpd.port, **check)
    assert number(third, "in_bytes_per_second", interface="lo") >= 0


async def test_rate_of_a_value_that_is_no_counter_is_unknown(ctx: ProbeContext,
                                                             snmpd: Snmpd) -> None:
    result = await run_snmp(ctx, snmpd.port, community=COMMUNITY,
                            rates={"interfaces_per_second": IF_NUMBER})
    assert result.status is Status.UNKNOWN
    assert result.summary == (f"rates: interfaces_per_second ({IF_NUMBER}) is not a "
                              "Counter32 or Counter64")


def send_loopback_traffic(total_bytes: int) -> None:
    """UDP datagrams to a bound socket on 127.0.0.1, counted by lo both ways."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as source:
        sink.bind(("127.0.0.1", 0))
        for _ in range(total_bytes // 10_000 + 1):
            source.sendto(b"x" * 10_000, sink.getsockname())


@pytest.mark.parametrize(("old", "new", "bits", "delta"), [
    (100, 250, 32, 150),
    (2**32 - 100, 50, 32, 150),          # a Counter32 wrapped once
    (2**64 - 1, 9, 64, 10),              # a Counter64 wrapped once
    (5, 5, 64, 0),
])
def test_counter_delta_crosses_one_wrap(old: int, new: int, bits: int, delta: int) -> None:
    assert counter_delta(old, new, bits) == delta


# --- config -------------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "message"), [
    ({}, "version 2c needs community or community_file"),
    ({"community": "x", "version": "3"}, "version 3 (authPriv) needs user"),
    ({"community": "x", "expect": {"model": "^x"}}, "'model' is not in oids"),
    ({"community": "x", "oids": {"cpu": "iso.3.6"}}, "expected a numeric OID"),
    ({"community": "x", "oids": {"uptime_seconds": "1.3.6.1"}}, "not one of the probe's own"),
    ({"community": "x", "interfaces_matching": "^eth"}, "needs interfaces = true"),
])
def test_config_mistakes_are_rejected(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_check("snmp", port=161, **fields)
