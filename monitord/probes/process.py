"""Processes found by name, command line or pidfile: how many, their CPU and memory.

Zombies are not counted: a zombie has exited and only waits for its parent to reap it.
Reading ``/proc/PID/cmdline`` of a process stuck in the kernel can block, so the scan
runs in the shared blocking pool; a scan from an earlier run that has not returned makes
this run UNKNOWN at once instead of starting another.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import Any, Literal

import psutil
from pydantic import model_validator

from monitord.durations import format_duration
from monitord.errors import ProbeError
from monitord.model import Observation, Status
from monitord.probes.base import CheckBase, ProbeContext, Range, Regex, Stuck, parse_range

METRICS = {
    "count": "number of matching processes",
    "cpu_ratio": "CPU used by them since the last run, in CPUs (1.0 = one core busy)",
    "rss_bytes": "resident memory of them all",
    "max_rss_bytes": "resident memory of the largest one",
}

PID_MAX = 4_194_304  # the kernel's upper limit for pid_max (proc(5), /proc/sys/kernel/pid_max)


class Config(CheckBase):
    METRICS = METRICS
    probe: Literal["process"]
    process: str = ""
    cmdline: Regex | None = None
    pidfile: str = ""
    user: str = ""

    @model_validator(mode="after")
    def _one_way_to_match(self) -> Config:
        if not (self.process or self.cmdline or self.pidfile):
            raise ValueError("give process (a name), cmdline (a pattern) or pidfile")
        return self

    def default_thresholds(self) -> tuple[dict[str, Range], dict[str, Range]]:
        return {}, {"count": parse_range("1:")}


@dataclass(frozen=True)
class _Proc:
    pid: int
    started: float
    cpu_seconds: float
    rss_bytes: int


async def probe(cfg: Config, ctx: ProbeContext) -> Observation:
    found, note = await _scan(cfg, ctx)
    now = time.monotonic()
    obs = Observation(_describe(cfg, found, note))
    obs.add("count", len(found))
    obs.add("rss_bytes", sum(p.rss_bytes for p in found))
    obs.add("max_rss_bytes", max((p.rss_bytes for p in found), default=0))
    previous: dict[tuple[int, float], float] = ctx.memory.get("cpu", {})
    then = ctx.memory.get("at")
    current = {(p.pid, p.started): p.cpu_seconds for p in found}
    if then is not None and now > then:
        used = sum(c - previous[k] for k, c in current.items() if k in previous)
        obs.add("cpu_ratio", round(max(used, 0.0) / (now - then), 4))
    ctx.memory["cpu"], ctx.memory["at"] = current, now
    return obs


async def _scan(cfg: Config, ctx: ProbeContext) -> tuple[list[_Proc], str]:
    budget = ctx.timeout * 0.8
    try:
        async with asyncio.timeout(budget):
            return await ctx.shared.blocking.call(f"process:{cfg.name}", _find, cfg)
    except Stuck as e:
        stuck = format_duration(round(time.monotonic() - e.since, 1))
        raise ProbeError(f"the process scan of an earlier run has not returned for {stuck}; "
                         "a process may be stuck in the kernel (state D)", Status.UNKNOWN) from None
    except TimeoutError:
        raise ProbeError(f"the process scan did not finish within {format_duration(budget)}; "
                         "a process may be stuck in the kernel (state D)", Status.UNKNOWN) from None


def _describe(cfg: Config, found: list[_Proc], note: str) -> str:
    what = cfg.process or (cfg.cmdline.pattern if cfg.cmdline else "") or cfg.pidfile
    if note:
        return note
    if not found:
        return f"no process matches {what!r}"
    pids = ", ".join(str(p.pid) for p in found[:5]) + (", ..." if len(found) > 5 else "")
    verb = "matches" if len(found) == 1 else "match"
    return f"{len(found)} process{'es' if len(found) != 1 else ''} {verb} {what!r} (PID {pids})"


def _find(cfg: Config) -> tuple[list[_Proc], str]:
    """Matching processes and, for a stale or unreadable pidfile, a note saying so."""
    if cfg.pidfile:
        return _from_pidfile(cfg)
    own = os.getpid()
    found = []
    for proc in psutil.process_iter():
        if proc.pid != own and (snap := _inspect(cfg, proc)) is not None:
            found.append(snap)
    return found, ""


def _from_pidfile(cfg: Config) -> tuple[list[_Proc], str]:
    try:
        with open(cfg.pidfile, encoding="ascii") as f:
            pid = int(f.read(64).split()[0])
    except FileNotFoundError:
        return [], f"pidfile {cfg.pidfile} does not exist"
    except (OSError, ValueError, IndexError):
        pid = 0
    if not 0 < pid <= PID_MAX:
        return [], f"pidfile {cfg.pidfile} holds no PID"
    try:
        proc = psutil.Process(pid)
        snap = _inspect(cfg, proc)
        alive = proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return [], f"pidfile {cfg.pidfile} names PID {pid}, which is not running"
    if not alive:
        return [], f"pidfile {cfg.pidfile} names PID {pid}, which is not running (a zombie)"
    if snap is None:
        return [], f"pidfile {cfg.pidfile} names PID {pid}, which is another program"
    return [snap], ""


def _inspect(cfg: Config, proc: psutil.Process) -> _Proc | None:
    """A snapshot of ``proc`` if it is alive and matches; None otherwise."""
    # as_dict into a local dict, not process_iter(attrs): process_iter shares its Process
    # objects (and their .info) between threads, and checks scan concurrently.
    try:
        with proc.oneshot():
            info = proc.as_dict(_attrs(cfg))
            if info["status"] == psutil.STATUS_ZOMBIE or not _matches(cfg, info):
                return None
            times, memory = proc.cpu_times(), proc.memory_info()
            return _Proc(proc.pid, proc.create_time(), times.user + times.system, memory.rss)
    except psutil.Error:  # it exited while being read, or we may not read it
        return None


def _attrs(cfg: Config) -> list[str]:
    """What matching needs: name and status come from one cheap read of /proc/PID/stat."""
    attrs = ["name", "status"]
    if cfg.user:
        attrs.append("username")
    if cfg.cmdline is not None:
        attrs.append("cmdline")
    return attrs


def _matches(cfg: Config, info: dict[str, Any]) -> bool:
    if cfg.process and info.get("name") != cfg.process:
        return False
    if cfg.user and info.get("username") != cfg.user:
        return False
    if cfg.cmdline is not None:
        args = info.get("cmdline") or []
        if not cfg.cmdline.search(" ".join(str(a) for a in args)):
            return False
    return True
