"""An SNMP agent (v2c, or v3 authPriv): named OIDs as metrics or facts, counter rates, and
the interfaces that are administratively up but operationally down.

SNMP runs over UDP: an agent that is down, one that ignores a wrong community and one
dropping a wrong SNMPv3 privacy key all look the same, as no answer. Everything is asked
with one engine made for the run, in one GET (sysUpTime and sysName included) and, with
``interfaces = true``, one walk per IF-MIB column. Counter rates come from the previous
run's sample in ``ctx.memory``; an agent restart (sysUpTime went down) gives no rates
for that run, since its counters started again from zero.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from monitord.durations import format_duration
from monitord.errors import ProbeError
from monitord.model import Observation, Status
from monitord.probes.base import (
    CheckBase,
    Expectation,
    ProbeContext,
    Regex,
    read_secret_file,
)

METRICS = {
    "response_seconds": "time to answer the GET of the named OIDs",
    "uptime_seconds": "the agent's sysUpTime",
    "interfaces_down": "interfaces administratively up but operationally down",
    "in_bytes_per_second": "per interface, from ifHCInOctets (interfaces = true)",
    "out_bytes_per_second": "per interface, from ifHCOutOctets (interfaces = true)",
}
SYS_UPTIME, SYS_NAME = "1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.5.0"
IF_DESCR, IF_ADMIN, IF_OPER = "1.3.6.1.2.1.2.2.1.2", "1.3.6.1.2.1.2.2.1.7", "1.3.6.1.2.1.2.2.1.8"
IF_IN, IF_OUT = "1.3.6.1.2.1.31.1.1.1.6", "1.3.6.1.2.1.31.1.1.1.10"
# IF-MIB ifOperStatus values; "testing", "unknown" and "dormant" are not a dead link.
OPER_STATUS = {1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant",
               6: "notPresent", 7: "lowerLayerDown"}
LINK_DOWN = frozenset(["down", "notPresent", "lowerLayerDown"])
ADMIN_UP = 1
BUILTIN = frozenset(["sys_name", *METRICS, "admin_status", "oper_status", "admin_up_oper_down"])
MAX_INTERFACES = 1000
MAX_TEXT = 160  # agent-supplied text (values, errors) is cut to this many characters
MAX_SHOWN = 5
# Share of one try's timeout kept back so that the last retry's answer, or the report of
# none, arrives inside the runner's deadline.
TRY_SHARE = 0.8
# pysnmp checks its timers on a coarse tick, so a loaded machine can see its last retry
# end late; past this share of the runner's deadline the probe gives up on its own.
OWN_DEADLINE_SHARE = 0.85
AUTH = {"MD5": "usmHMACMD5AuthProtocol", "SHA": "usmHMACSHAAuthProtocol",
        "SHA224": "usmHMAC128SHA224AuthProtocol", "SHA256": "usmHMAC192SHA256AuthProtocol",
        "SHA384": "usmHMAC256SHA384AuthProtocol", "SHA512": "usmHMAC384SHA512AuthProtocol"}
PRIV = {"DES": "usmDESPrivProtocol", "3DES": "usm3DESEDEPrivProtocol",
        "AES": "usmAesCfb128Protocol", "AES192": "usmAesCfb192Protocol",
        "AES256": "usmAesCfb256Protocol"}
OID_PATTERN = r"^[0-9]+(\.[0-9]+)+$"


class Config(CheckBase):
    METRICS = METRICS
    probe: Literal["snmp"]
    host: str = "127.0.0.1"
    port: int = Field(default=161, ge=1, le=65535)
    version: Literal["2c", "3"] = "2c"
    community: SecretStr = SecretStr("")
    community_file: str = ""
    user: str = Field(default="", max_length=32)
    auth_protocol: Literal["MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"] = "SHA"
    auth_key_file: str = ""
    priv_protocol: Literal["DES", "3DES", "AES", "AES192", "AES256"] = "AES"
    priv_key_file: str = ""
    retries: int = Field(default=1, ge=0, le=5)
    oids: dict[str, str] = {}
    rates: dict[str, str] = {}
    expect: dict[str, Regex] = {}
    interfaces: bool = False
    interfaces_matching: Regex | None = None

    @field_validator("community_file", "auth_key_file", "priv_key_file")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if value and not os.path.isabs(value):
            raise ValueError('expected an absolute path like "/etc/monitord/snmp-community"')
        return value

    @field_validator("oids", "rates")
    @classmethod
    def _named_oids(cls, value: dict[str, str]) -> dict[str, str]:
        for name, oid in value.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name) or name in BUILTIN:
                raise ValueError(f"{name!r}: expected a snake_case name that is not one of "
                                 f"the probe's own ({', '.join(sorted(BUILTIN))})")
            if not re.fullmatch(OID_PATTERN, oid.lstrip(".")):
                raise ValueError(f"{name}: expected a numeric OID like "
                                 f'"1.3.6.1.4.1.2021.10.1.3.1", got {oid!r}')
        return {name: oid.lstrip(".") for name, oid in value.items()}

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        if self.version == "2c":
            if bool(self.community_file) == bool(self.community.get_secret_value()):
                raise ValueError("community: version 2c needs community or community_file "
                                 "(one of them)")
        elif not (self.user and self.auth_key_file and self.priv_key_file):
            raise ValueError("user: version 3 (authPriv) needs user, auth_key_file and "
                             "priv_key_file")
        for name in self.expect:
            if name != "sys_name" and name not in self.oids:
                raise ValueError(f"expect: {name!r} is not in oids (nor sys_name)")
        if set(self.oids) & set(self.rates):
            raise ValueError("rates: a name is also in oids")
        if self.interfaces_matching is not None and not self.interfaces:
            raise ValueError("interfaces_matching: needs interfaces = true")
        return self

    def metric_names(self) -> set[str]:
        """The probe's own metrics and the names the admin gave in ``oids`` and ``rates``."""
        return {*METRICS, *self.oids, *self.rates}

    def expectations(self) -> list[Expectation]:
        found = [Expectation(f"{name}_matches", frozenset([True]),
                             f"{name} does not match {pattern.pattern!r}")
                 for name, pattern in self.expect.items()]
        if self.interfaces:
            found.append(Expectation("admin_up_oper_down", frozenset([False]),
                                     "is administratively up but operationally down"))
        return found


@dataclass(frozen=True, slots=True)
class _Session:
    engine: Any
    auth: Any
    target: Any
    where: str
    tries: str
    deadline: float = float("inf")    # the event loop's time after which a get gives up


async def probe(cfg: Config, ctx: ProbeContext) -> Observation:
    from pysnmp.hlapi.v3arch.asyncio import SnmpEngine, UdpTransportTarget

    deadline = asyncio.get_running_loop().time() + ctx.budget(OWN_DEADLINE_SHARE)
    auth = _auth(cfg)
    per_try = ctx.budget(TRY_SHARE) / (cfg.retries + 1)
    engine = SnmpEngine()
    try:
        target = await UdpTransportTarget.create((cfg.host, cfg.port), timeout=per_try,
                                                 retries=cfg.retries)
        tries = f"{cfg.retries + 1} {'try' if cfg.retries == 0 else 'tries'}"
        session = _Session(engine, auth, target, f"{cfg.host}:{cfg.port}", tries, deadline)
        return await _observe(cfg, ctx, session, per_try)
    finally:
        engine.close_dispatcher()


async def _observe(cfg: Config, ctx: ProbeContext, s: _Session, per_try: float) -> Observation:
    names = {"uptime": SYS_UPTIME, "sys_name": SYS_NAME, **cfg.oids, **cfg.rates}
    start = time.monotonic()
    values = await _get(cfg, s, names, per_try)
    answered = time.monotonic() - start
    uptime = int(values.pop("uptime"))
    obs = Observation(f"SNMP {s.where} answered in {answered * 1000:.0f} ms")
    obs.add("response_seconds", round(answered, 6))
    obs.add("uptime_seconds", uptime / 100)
    for name, value in values.items():
        if name not in cfg.rates:
            _add_value(cfg, obs, name, value)
    counters = {name: values[name] for name in cfg.rates}
    if cfg.interfaces:
        counters |= await _interfaces(cfg, s, obs)
    _rates(ctx, obs, uptime, counters, cfg.rates)
    return obs


async def _get(cfg: Config, s: _Session, names: dict[str, str],
               per_try: float) -> dict[str, Any]:
    from pysnmp.hlapi.v3arch.asyncio import ContextData, ObjectIdentity, ObjectType, get_cmd
    from pysnmp.proto import errind

    binds = [ObjectType(ObjectIdentity(oid)) for oid in names.values()]
    try:
        async with asyncio.timeout_at(s.deadline):
            error, status, index, varbinds = await get_cmd(
                s.engine, s.auth, s.target, ContextData(), *binds, lookupMib=False)
    except TimeoutError:
        error, status, index, varbinds = errind.requestTimedOut, 0, 0, []
    _raise_for(cfg, s, error, status, index, per_try)
    values = dict(zip(names, (value for _, value in varbinds), strict=True))
    missing = [f"{name} ({names[name]})" for name, value in values.items() if _absent(value)]
    if missing:
        raise ProbeError(f"{s.where} has no value for {', '.join(missing[:MAX_SHOWN])}; "
                         "check the OID and the agent's view", Status.UNKNOWN)
    return {name: _plain(value) for name, value in values.items()}


def _raise_for(cfg: Config, s: _Session, error: Any, status: Any, index: Any,
               per_try: float) -> None:
    from pysnmp.proto import errind

    if isinstance(error, errind.RequestTimedOut):
        raise ProbeError(f"no answer from SNMP agent {s.where} within "
                         f"{format_duration(round(per_try, 3))} ({s.tries}): it is down, "
                         "or it ignores this " + ("community" if cfg.version == "2c" else
                                                  "user's keys") + " or this address")
    if isinstance(error, errind.WrongDigest):
        raise ProbeError(f"{s.where} rejected the authentication key of user {cfg.user}; "
                         "check auth_key_file and auth_protocol", Status.UNKNOWN)
    if isinstance(error, errind.UnknownUserName):
        raise ProbeError(f"{s.where} has no SNMPv3 user {cfg.user}", Status.UNKNOWN)
    if error:
        raise ProbeError(f"SNMP error from {s.where}: {str(error)[:MAX_TEXT]}")
    if status:
        raise ProbeError(f"{s.where} answered {status.prettyPrint()[:MAX_TEXT]} "
                         f"(item {int(index)}); check the OIDs and the agent's access rules",
                         Status.UNKNOWN)


async def _interfaces(cfg: Config, s: _Session, obs: Observation) -> dict[str, Any]:
    """Status facts per interface; returns its octet counters keyed for _rates."""
    names = {i: str(v)[:MAX_TEXT] for i, v in (await _walk(cfg, s, IF_DESCR)).items()}
    if cfg.interfaces_matching is not None:
        names = {i: n for i, n in names.items() if cfg.interfaces_matching.search(n)}
    admin, oper = await _walk(cfg, s, IF_ADMIN), await _walk(cfg, s, IF_OPER)
    down = []
    for index, name in names.items():
        is_up = admin.get(index) == ADMIN_UP
        state = OPER_STATUS.get(oper.get(index, 4), "unknown")
        obs.add("admin_status", "up" if is_up else "down", interface=name)
        obs.add("oper_status", state, interface=name)
        obs.add("admin_up_oper_down", is_up and state in LINK_DOWN, interface=name)
        if is_up and state in LINK_DOWN:
            down.append(name)
    obs.add("interfaces_down", len(down))
    obs.summary += f", {len(names)} interface{'' if len(names) == 1 else 's'}, {len(down)} down"
    counters = {}
    for column, metric in ((IF_IN, "in_bytes_per_second"), (IF_OUT, "out_bytes_per_second")):
        for index, value in (await _walk(cfg, s, column)).items():
            if index in names:
                counters[f"{metric}\0{names[index]}"] = value
    return counters


async def _walk(cfg: Config, s: _Session, column: str) -> dict[str, Any]:
    """One IF-MIB column by GETBULK: row index -> plain value, at most MAX_INTERFACES."""
    from pysnmp.hlapi.v3arch.asyncio import (
        ContextData,
        ObjectIdentity,
        ObjectType,
        bulk_walk_cmd,
    )

    rows: dict[str, Any] = {}
    walk = bulk_walk_cmd(s.engine, s.auth, s.target, ContextData(), 0, 25,
                         ObjectType(ObjectIdentity(column)), lookupMib=False,
                         lexicographicMode=False, maxRows=MAX_INTERFACES)
    async for error, status, index, varbinds in walk:
        _raise_for(cfg, s, error, status, index, s.target.timeout)
        for oid, value in varbinds:
            if not _absent(value):
                rows[str(oid)[len(column) + 1:]] = _plain(value)
    return rows


def _rates(ctx: ProbeContext, obs: Observation, uptime: int, counters: dict[str, Any],
           named: dict[str, str]) -> None:
    """Per-second rates of ``counters`` against the previous run's sample, then keep this
    one. Keys are a metric name, or a metric name and an interface after a NUL."""
    for name in named:
        if not isinstance(counters.get(name), _Counter):
            raise ProbeError(f"rates: {name} ({named[name]}) is not a Counter32 or "
                             "Counter64", Status.UNKNOWN)
    now = time.monotonic()
    sample = {key: value for key, value in counters.items() if isinstance(value, _Counter)}
    previous = ctx.memory.get("sample")
    ctx.memory["sample"] = (now, uptime, sample)
    if previous is None or not sample:
        return
    then, then_uptime, before = previous
    if uptime < then_uptime:
        obs.summary += ", agent restarted since the last run (no rates this run)"
        return
    for key, counter in sample.items():
        old = before.get(key)
        if old is not None and old.bits == counter.bits and now > then:
            name, _, interface = key.partition("\0")
            labels = {"interface": interface} if interface else {}
            obs.add(name, round(counter_delta(old.value, counter.value, counter.bits)
                                / (now - then), 3), **labels)


def counter_delta(old: int, new: int, bits: int) -> int:
    """How far a counter of ``bits`` bits went from ``old`` to ``new``, across one wrap."""
    return (new - old) % (1 << bits)


@dataclass(frozen=True, slots=True)
class _Counter:
    value: int
    bits: int


def _plain(value: Any) -> Any:
    """A pysnmp value as a counter, an int, or text (bounded)."""
    from pyasn1.type import univ
    from pysnmp.proto import rfc1902

    if isinstance(value, rfc1902.Counter64):
        return _Counter(int(value), 64)
    if isinstance(value, rfc1902.Counter32):
        return _Counter(int(value), 32)
    if isinstance(value, univ.Integer):
        return int(value)
    if isinstance(value, univ.OctetString) and not isinstance(value, rfc1902.IpAddress):
        return bytes(value).decode("utf-8", "replace")[:MAX_TEXT]
    return str(value.prettyPrint())[:MAX_TEXT]


def _absent(value: Any) -> bool:
    from pysnmp.proto import rfc1905

    return isinstance(value, rfc1905.NoSuchObject | rfc1905.NoSuchInstance
                      | rfc1905.EndOfMibView)


def _add_value(cfg: Config, obs: Observation, name: str, value: Any) -> None:
    """A named value: text judged by ``expect``, else a number if it reads as one."""
    if name in cfg.expect:
        text = str(value.value if isinstance(value, _Counter) else value)
        obs.add(name, text)
        obs.add(f"{name}_matches", bool(cfg.expect[name].search(text)))
        return
    if isinstance(value, _Counter):
        obs.add(name, value.value)
    elif isinstance(value, int):
        obs.add(name, value)
    else:
        number = _number(value)
        obs.add(name, value if number is None else number)


def _number(text: str) -> float | None:
    """UCD-SNMP-MIB gives loads as text ("0.16"); such values are metrics too."""
    try:
        return float(text)
    except ValueError:
        return None


def _auth(cfg: Config) -> Any:
    from pysnmp.hlapi.v3arch import asyncio as hlapi

    if cfg.version == "2c":
        community = (read_secret_file(cfg.community_file, "community_file") if cfg.community_file
                     else cfg.community.get_secret_value())
        return hlapi.CommunityData(community, mpModel=1)
    return hlapi.UsmUserData(
        cfg.user, read_secret_file(cfg.auth_key_file, "auth_key_file"),
        read_secret_file(cfg.priv_key_file, "priv_key_file"),
        authProtocol=getattr(hlapi, AUTH[cfg.auth_protocol]),
        privProtocol=getattr(hlapi, PRIV[cfg.priv_protocol]))

