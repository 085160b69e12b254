"""Processes found by name, command line or pidfile: how many, their CPU and memory."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Literal

import psutil
from pydantic import model_validator

from monitord.model import Observation
from monitord.probes.base import CheckBase, ProbeContext, Range, Regex, parse_range

METRICS = {
    "count": "number of matching processes",
    "cpu_ratio": "CPU used by them since the last run, in CPUs (1.0 = one core busy)",
    "rss_bytes": "resident memory of them all",
    "max_rss_bytes": "resident memory of the largest one",
}


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
    found, note = await ctx.shared.blocking.call(f"process:{cfg.name}", _find, cfg)
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


def _describe(cfg: Config, found: list[_Proc], note: str) -> str:
    what = cfg.process or (cfg.cmdline.pattern if cfg.cmdline else "") or cfg.pidfile
    if note:
        return note
    if not found:
        return f"no process matches {what!r}"
    pids = ", ".join(str(p.pid) for p in found[:5]) + (", ..." if len(found) > 5 else "")
    return f"{len(found)} process{'es' if len(found) != 1 else ''} match {what!r} (PID {pids})"


def _find(cfg: Config) -> tuple[list[_Proc], str]:
    """Matching processes and, for a stale or unreadable pidfile, a note saying so."""
    if cfg.pidfile:
        return _from_pidfile(cfg)
    found = []
    own = os.getpid()
    attrs = ["pid", "name", "cmdline", "username", "create_time", "cpu_times", "memory_info"]
    for proc in psutil.process_iter(attrs):
        info = proc.info
        if info["pid"] != own and _matches(cfg, info):
            found.append(_snapshot(info))
    return found, ""


def _from_pidfile(cfg: Config) -> tuple[list[_Proc], str]:
    try:
        with open(cfg.pidfile, encoding="ascii") as f:
            pid = int(f.read().split()[0])
    except FileNotFoundError:
        return [], f"pidfile {cfg.pidfile} does not exist"
    except (OSError, ValueError, IndexError):
        return [], f"pidfile {cfg.pidfile} holds no PID"
    try:
        proc = psutil.Process(pid)
        attrs = ["pid", "name", "cmdline", "username", "create_time", "cpu_times", "memory_info"]
        info = proc.as_dict(attrs)
    except psutil.Error:
        return [], f"pidfile {cfg.pidfile} names PID {pid}, which is not running"
    if not _matches(cfg, info):
        return [], f"pidfile {cfg.pidfile} names PID {pid}, which is another program"
    return [_snapshot(info)], ""


def _matches(cfg: Config, info: dict[str, object]) -> bool:
    if cfg.process and info.get("name") != cfg.process:
        return False
    if cfg.user and info.get("username") != cfg.user:
        return False
    if cfg.cmdline is not None:
        args = info.get("cmdline") or []
        if not cfg.cmdline.search(" ".join(str(a) for a in args)):  # type: ignore[attr-defined]
            return False
    return True


def _snapshot(info: dict[str, object]) -> _Proc:
    times = info.get("cpu_times")
    memory = info.get("memory_info")
    cpu = (times.user + times.system) if times is not None else 0.0  # type: ignore[attr-defined]
    rss = memory.rss if memory is not None else 0  # type: ignore[attr-defined]
    return _Proc(int(info["pid"]), float(info.get("create_time") or 0), cpu, rss)  # type: ignore[arg-type]
