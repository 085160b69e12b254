"""Central ingest benchmark: M agents posting event batches to ``monitord central``.

For each M, in a fresh temp dir: writes a ``central.toml`` (127.0.0.1, a new SQLite
store), registers M agents with ``monitord central add-agent HOST``, starts the real
service as a separate process (``python -m monitord central -c FILE``), then simulates
the M agents from ``--loaders`` load-generator processes (aiohttp, one kept-alive
connection per agent). Every agent posts one untimed warm-up batch, then ``--batches``
timed batches of ``--events`` events back to back (closed loop: the next batch as soon as
the last was answered). The mix per agent: heartbeats and problems for a bounded set of
checks, some recoveries and healed events, with bodies shaped like the stock templates'.

Reports accepted events per second, batch latency (p50/p99), the store's size after
(main file + WAL), the server's CPU and peak RSS (from /proc/PID) and the load
generators' own CPU, then verifies the store: every posted event id applied exactly once
(the answers' counts, the event table, a re-post of already applied batches), one
incident per key, each incident's count and final status as the agent's sequence implies.

Run: ``.venv/bin/python benchmarks/central_ingest.py --agents 10,200``.
This is a measurement, not a test: it prints a table and asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import io
import json
import os
import platform
import random
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from http_sweep import stop

ROOT = Path(__file__).resolve().parents[1]
ADDRESS = "127.0.0.1"
READY_SECONDS = 30.0
LOAD_SECONDS = 300.0
POLL_SECONDS = 0.05
STOP_SECONDS = 15.0
MIB = 1024 * 1024
PYSPY = ("/tmp/pyspy/bin/py-spy", "py-spy")

# The checks an agent runs: its problems, recoveries and healed events are for these keys.
CHECKS = ("web", "php-fpm", "mysql", "disk-root", "ssl-expiry", "smtp", "load", "backup")
# (kind, weight) of an event in a batch: mostly heartbeats and problems.
MIX = (("heartbeat", 0.35), ("problem", 0.45), ("recovery", 0.12), ("healed", 0.08))
HEARTBEAT_SECONDS = 60.0


# -------------------------------------------------------------------------- events


@dataclass
class KeyState:
    """What the store should end with for one key, from the order the agent sent."""

    problems: int = 0
    last: str = ""          # "problem" or "recovery": the last of either sent


@dataclass
class AgentScript:
    """One agent's batches as JSON bodies, ready to post, and what they should do."""

    host: str
    token: str
    bodies: list[bytes]     # [0] is the warm-up batch
    ids: list[list[str]]
    keys: dict[str, KeyState] = field(default_factory=dict)
    healed: int = 0


def stamp() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


def step_json(fix: str, ok: bool, output: str) -> dict[str, Any]:
    return {"fix": fix, "argv": [fix, "nginx"], "exit_code": 0 if ok else 1,
            "duration_seconds": 1.5, "output": output, "ended": "exit 0 in 1.5s",
            "reprobe_status": "OK" if ok else "CRITICAL", "reprobe_summary": "HTTP 502"}


def problem_body(host: str, check: str, summary: str, steps: list[dict[str, Any]]) -> str:
    """Shaped like templates/events/problem.body.j2 renders it."""
    tried = "\n".join(
        f"{i}. {s['fix']}: {' '.join(s['argv'])}\n   {s['ended']}; re-probe: "
        f"{s['reprobe_status']}: {s['reprobe_summary']}\n   output:\n      {s['output']}"
        for i, s in enumerate(steps, 1))
    return (f"{check} on {host} is CRITICAL and the junior tier could not fix it.\n\n"
            f"What it sees: {summary}\nWhy it is escalated: the fixes did not help\n\n"
            f"What was tried:\n{tried}")


def make_event(rng: random.Random, host: str, kind: str, script: AgentScript) -> dict[str, Any]:
    event: dict[str, Any] = {"id": uuid.UUID(int=rng.getrandbits(128)).hex, "kind": kind,
                             "host": host, "at": stamp()}
    if kind == "heartbeat":
        event["interval_seconds"] = HEARTBEAT_SECONDS
        return event
    check = rng.choice(CHECKS)
    if kind == "recovery":     # mostly for a key that is failing, as in life
        failing = [k for k, s in script.keys.items() if s.last == "problem"]
        if failing and rng.random() < 0.9:
            check = rng.choice(failing).split("/", 1)[1]
    key = f"{host}/{check}"
    state = script.keys.setdefault(key, KeyState())
    summary = f"HTTP 502 from http://127.0.0.1/{check} in 0.{rng.randrange(100, 999)}s"
    output = "Job for nginx.service failed because the control process exited with error "
    output += "code.\nSee \"systemctl status nginx.service\" and \"journalctl -xeu\" for details."
    event["check"] = check
    if kind == "problem":
        priority = rng.choices(("P1", "P2", "P3"), (0.1, 0.6, 0.3))[0]
        steps = [step_json("reload-service", False, output),
                 step_json("restart-service", False, output)]
        event.update(priority=priority, status="CRITICAL", summary=summary,
                     title=f"{priority} {key}: CRITICAL - {summary}",
                     reason="the fixes did not help", steps=steps,
                     body=problem_body(host, check, summary, steps))
        state.problems += 1
        state.last = "problem"
    elif kind == "recovery":
        event.update(status="OK", summary="HTTP 200 in 0.012s", title=f"{key}: OK again",
                     body=f"{check} on {host} is OK again.\nNow: HTTP 200 in 0.012s")
        if state.problems:
            state.last = "recovery"
    else:
        steps = [step_json("reload-service", False, output), step_json("restart-service",
                                                                       True, "")]
        event.update(status="OK", summary="HTTP 200 in 0.012s", steps=steps,
                     title=f"{key}: healed by restart-service",
                     body=f"{check} on {host} failed ({summary}) and was fixed by "
                          "restart-service.\nNow: HTTP 200 in 0.012s")
        script.healed += 1
    return event


def agent_script(host: str, token: str, seed: int, batches: int, size: int) -> AgentScript:
    rng = random.Random(seed)
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    script = AgentScript(host, token, [], [])
    for index in range(batches + 1):
        picked = rng.choices(kinds, weights, k=size)
        if index == 0:
            picked[0] = "heartbeat"   # an agent says hello first
        events = [make_event(rng, host, kind, script) for kind in picked]
        script.bodies.append(json.dumps({"events": events}).encode())
        script.ids.append([e["id"] for e in events])
    return script


# ---------------------------------------------------------------------- load generator


@dataclass
class LoadSpec:
    port: int
    agents: list[tuple[str, str, int]]     # host, token, seed
    batches: int
    events: int
    result: str


async def post(session: Any, url: str, script: AgentScript, body: bytes) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {script.token}", "Content-Type": "application/json"}
    async with session.post(url, data=body, headers=headers) as resp:
        text = await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{script.host}: POST answered {resp.status}: {text[:300]!r}")
        answer: dict[str, Any] = json.loads(text)
        return answer


async def load_main(spec: LoadSpec) -> dict[str, Any]:
    import aiohttp

    url = f"http://{ADDRESS}:{spec.port}/api/v1/events"
    started = time.monotonic()
    scripts = [agent_script(host, token, seed, spec.batches, spec.events)
               for host, token, seed in spec.agents]
    prepare = time.monotonic() - started
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        # Warm-up: one batch per agent opens its connection and registers the host.
        warm = await asyncio.gather(*(post(session, url, s, s.bodies[0]) for s in scripts))
        print(json.dumps({"ready": True, "prepare_seconds": prepare}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "go"

        latencies: list[float] = []
        answers: list[dict[str, Any]] = []

        async def agent(script: AgentScript) -> None:
            for body in script.bodies[1:]:
                sent = time.perf_counter()
                answers.append(await post(session, url, script, body))
                latencies.append(time.perf_counter() - sent)

        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.monotonic()
        await asyncio.gather(*(agent(s) for s in scripts))
        end = time.monotonic()
        after = resource.getrusage(resource.RUSAGE_SELF)
        # At-least-once delivery: the same batches again must all come back duplicates.
        again = await asyncio.gather(*(post(session, url, s, s.bodies[1]) for s in scripts))
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {
        "start": start, "end": end, "cpu_seconds": cpu, "latencies": latencies,
        "applied": sum(a["applied"] for a in answers),
        "duplicates": sum(a["duplicates"] for a in answers),
        "warm_applied": sum(a["applied"] for a in warm),
        "warm_duplicates": sum(a["duplicates"] for a in warm),
        "repost_applied": sum(a["applied"] for a in again),
        "repost_duplicates": sum(a["duplicates"] for a in again),
        "repost_events": sum(len(s.ids[1]) for s in scripts),
        "ids": [i for s in scripts for batch in s.ids for i in batch],
        "keys": {k: [st.problems, st.last] for s in scripts for k, st in s.keys.items()},
        "healed": sum(s.healed for s in scripts),
    }


# ---------------------------------------------------------------------------- service


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((ADDRESS, 0))
        return int(sock.getsockname()[1])


def write_config(directory: Path, port: int) -> Path:
    path = directory / "central.toml"
    path.write_text(f'[central]\nlisten = "{ADDRESS}:{port}"\n'
                    f'store_url = "sqlite://{directory / "db" / "central.db"}"\n')
    return path


def host_name(index: int) -> str:
    return f"agent{index:04d}"


def register(config: Path, hosts: list[str]) -> dict[str, str]:
    """Tokens from ``monitord central add-agent HOST``: the first from the command itself,
    the rest from the same CLI entry point looped in one process (an interpreter start
    per agent would cost ~0.3 s each)."""
    argv = [sys.executable, "-m", "monitord", "central", "-c", str(config), "add-agent"]
    first = subprocess.run([*argv, hosts[0]], cwd=ROOT, capture_output=True, text=True,
                           timeout=60, check=False)
    if first.returncode != 0:
        raise RuntimeError(f"add-agent failed: {first.stderr.strip()}")
    tokens = {hosts[0]: first.stdout.strip()}
    if len(hosts) > 1:
        rest = subprocess.run(
            [sys.executable, __file__, "--role", "register", "--config", str(config),
             *hosts[1:]], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
        if rest.returncode != 0:
            raise RuntimeError(f"add-agent failed: {rest.stderr.strip()}")
        tokens.update(json.loads(rest.stdout))
    return tokens


def register_main(config: str, hosts: list[str]) -> None:
    from monitord.cli import main

    tokens = {}
    for host in hosts:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["central", "-c", config, "add-agent", host])
        if code != 0:
            raise SystemExit(f"monitord central add-agent {host} exited with {code}")
        tokens[host] = out.getvalue().strip()
    print(json.dumps(tokens))


@contextlib.contextmanager
def service(config: Path, log: Path, profile_out: Path | None,
            pyspy: str | None) -> Iterator[subprocess.Popen[bytes]]:
    """The real service; under cProfile when profiling without py-spy."""
    argv = [sys.executable, "-m", "monitord", "central", "-c", str(config)]
    if profile_out is not None and pyspy is None:
        argv[1:1] = ["-m", "cProfile", "-o", str(profile_out)]
    with log.open("wb") as err:
        process = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=err,
                                   start_new_session=True)
    try:
        yield process
    finally:
        stop(process, STOP_SECONDS)


def wait_healthy(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"monitord central exited with {process.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(
                f"http://{ADDRESS}:{port}/healthz", timeout=1) as resp:
            if resp.status == 200:
                return
        time.sleep(POLL_SECONDS)
    raise RuntimeError(f"monitord central not healthy after {READY_SECONDS:g} s")


# ------------------------------------------------------------------------------- /proc


@dataclass
class ProcSample:
    """A process's counters at one moment, from /proc/PID (CPU in clock ticks: 10 ms)."""

    user: float
    system: float
    main_thread: float      # CPU of the thread whose id is the pid: the event loop
    write_bytes: int        # what it sent to the block layer (the WAL, checkpoints)

    def __sub__(self, other: ProcSample) -> ProcSample:
        return ProcSample(self.user - other.user, self.system - other.system,
                          self.main_thread - other.main_thread,
                          self.write_bytes - other.write_bytes)

    @property
    def cpu(self) -> float:
        return self.user + self.system


def stat_fields(path: Path) -> list[str]:
    return path.read_text().rsplit(")", 1)[1].split()


def sample(pid: int) -> ProcSample:
    """utime and stime of the whole process (exited threads included), its main thread's."""
    tick = os.sysconf("SC_CLK_TCK")
    fields = stat_fields(Path(f"/proc/{pid}/stat"))
    main = stat_fields(Path(f"/proc/{pid}/task/{pid}/stat"))
    io_counters = dict(line.split(": ") for line in
                       Path(f"/proc/{pid}/io").read_text().splitlines())
    return ProcSample(int(fields[11]) / tick, int(fields[12]) / tick,
                      (int(main[11]) + int(main[12])) / tick,
                      int(io_counters["write_bytes"]))


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def store_bytes(db: Path) -> tuple[int, int]:
    """(main file, WAL) sizes."""
    wal = db.with_name(db.name + "-wal")
    return db.stat().st_size, wal.stat().st_size if wal.exists() else 0


# --------------------------------------------------------------------------------- run


@dataclass
class Row:
    agents: int
    loaders: int
    events: int
    wall_seconds: float
    p50_ms: float
    p99_ms: float
    store_bytes: int
    wal_bytes: int
    server: ProcSample
    peak_rss: int
    load_cpu: float
    batch_events: int
    note: str = ""

    @property
    def rate(self) -> float:
        return self.events / self.wall_seconds


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def start_loaders(directory: Path, port: int, tokens: dict[str, str], batches: int,
                  events: int, loaders: int) -> list[tuple[subprocess.Popen[str], Path]]:
    hosts = sorted(tokens)
    started = []
    for n in range(loaders):
        mine = hosts[n::loaders]
        if not mine:
            continue
        spec = LoadSpec(port, [(h, tokens[h], hosts.index(h)) for h in mine], batches,
                        events, str(directory / f"load{n}.json"))
        spec_file = directory / f"load{n}.spec.json"
        spec_file.write_text(json.dumps(spec.__dict__))
        process = subprocess.Popen(
            [sys.executable, __file__, "--role", "load", "--spec", str(spec_file)], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
        started.append((process, Path(spec.result)))
    return started


@contextlib.contextmanager
def recording(pyspy: str | None, pid: int, out: Path | None) -> Iterator[None]:
    """py-spy sampling ``pid`` (every thread, on-CPU samples only) into ``out``.txt."""
    if pyspy is None or out is None:
        yield
        return
    argv = [pyspy, "record", "--pid", str(pid), "--threads", "--nolineno", "--rate", "200",
            "--format", "raw", "--output", f"{out}.txt", "--nonblocking"]
    spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    try:
        time.sleep(0.5)   # attached before the run starts
        yield
    finally:
        spy.send_signal(signal.SIGINT)   # py-spy writes its file on SIGINT
        with contextlib.suppress(subprocess.TimeoutExpired):
            spy.wait(30)
        stop(spy, STOP_SECONDS)


def drive(procs: list[tuple[subprocess.Popen[str], Path]], server: int, pyspy: str | None,
          profile_out: Path | None) -> ProcSample:
    """Wait until every load generator is warm, start them at once, wait for the end;
    the server's counters over the timed part."""
    for process, _ in procs:
        line = process.stdout.readline() if process.stdout else ""
        if not line.startswith('{"ready"'):
            raise RuntimeError(f"a load generator failed before the run "
                               f"(exit {process.wait(10)})")
    with recording(pyspy, server, profile_out):
        before = sample(server)
        for process, _ in procs:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        for process, _ in procs:
            if process.wait(LOAD_SECONDS) != 0:
                raise RuntimeError(f"a load generator exited with {process.returncode}")
        return sample(server) - before


def run_one(agents: int, batches: int, events: int, loaders: int, pyspy: str | None,
            profile_dir: Path | None) -> tuple[Row, dict[str, Any]]:
    profile_out = None if profile_dir is None else profile_dir / f"central-M{agents}"
    if profile_out is not None and pyspy is None:
        profile_out = profile_out.with_suffix(".pstats")
    with tempfile.TemporaryDirectory(prefix="central-ingest-") as tmp:
        directory = Path(tmp)
        port = free_port()
        config = write_config(directory, port)
        tokens = register(config, [host_name(i) for i in range(agents)])
        db = directory / "db" / "central.db"
        log = directory / "central.log"
        with service(config, log, profile_out, pyspy) as server:
            wait_healthy(port, server)
            procs = start_loaders(directory, port, tokens, batches, events, loaders)
            try:
                used = drive(procs, server.pid, pyspy, profile_out)
                peak = peak_rss_bytes(server.pid)
                sizes = store_bytes(db)
            finally:
                for process, _ in procs:
                    stop(process, 5.0)
            results = [json.loads(path.read_text()) for _, path in procs]
            code = stop(server, STOP_SECONDS)
        logged = log.read_text()
        if code != 0 or "Traceback" in logged:
            raise RuntimeError(f"monitord central exited with {code}:\n{logged[-3000:]}")
        checks = verify(db, results, agents)
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    latencies = [x for r in results for x in r["latencies"]]
    row = Row(agents, len(procs), sum(r["applied"] for r in results), wall,
              percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000,
              sizes[0], sizes[1], used, peak, sum(r["cpu_seconds"] for r in results), events,
              "profiled" if profile_dir else "")
    return row, checks


def verify(db: Path, results: list[dict[str, Any]], agents: int) -> dict[str, Any]:
    """The store holds exactly what was posted, each event applied once; raises if not."""
    posted = [i for r in results for i in r["ids"]]
    expected_keys: dict[str, list[Any]] = {}
    for r in results:
        expected_keys.update(r["keys"])
    problems: list[str] = []
    total = sum(r["applied"] + r["warm_applied"] for r in results)
    if total != len(posted) or len(set(posted)) != len(posted):
        problems.append(f"answers say {total} applied; {len(posted)} ids posted "
                        f"({len(set(posted))} distinct)")
    dups = sum(r["duplicates"] + r["warm_duplicates"] for r in results)
    if dups:
        problems.append(f"{dups} first deliveries answered as duplicates")
    reposted = sum(r["repost_events"] for r in results)
    if sum(r["repost_applied"] for r in results) or sum(
            r["repost_duplicates"] for r in results) != reposted:
        problems.append("re-posted batches were applied again")
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
        stored = {row[0] for row in con.execute("SELECT id FROM event")}
        incidents = con.execute(
            "SELECT key, count(*), sum(count), max(status) FROM incident GROUP BY key").fetchall()
        healed = con.execute("SELECT coalesce(sum(count), 0) FROM healed").fetchone()[0]
        hosts = con.execute(
            "SELECT count(*) FROM host WHERE last_heartbeat IS NOT NULL").fetchone()[0]
    if stored != set(posted):
        problems.append(f"event table: {len(stored)} ids, {len(set(posted) - stored)} posted "
                        f"ones missing, {len(stored - set(posted))} never posted")
    seen = {key for key, *_ in incidents}
    want = {key for key, (count, _) in expected_keys.items() if count}
    if seen != want:
        problems.append(f"incidents for {len(seen)} keys, expected {len(want)}")
    for key, number, count, status in incidents:
        expect_count, last = expected_keys.get(key, [0, ""])
        expect_status = "resolved" if last == "recovery" else "open"
        if number != 1 or count != expect_count or status != expect_status:
            problems.append(f"{key}: {number} incidents, count {count}, {status}; expected 1, "
                            f"{expect_count}, {expect_status}")
    if healed != sum(r["healed"] for r in results):
        problems.append(f"healed counts sum to {healed}, {sum(r['healed'] for r in results)} "
                        "sent")
    if hosts != agents:
        problems.append(f"{hosts} hosts with a heartbeat, expected {agents}")
    if problems:
        raise RuntimeError("verification failed:\n  " + "\n  ".join(problems[:20]))
    return {"events": len(posted), "reposted": reposted, "incidents": len(incidents),
            "resolved": sum(1 for *_, s in incidents if s == "resolved")}


# ------------------------------------------------------------------------------ report


def table(rows: list[Row]) -> str:
    head = (f"{'M':>4} {'loaders':>7} {'events':>7} {'wall s':>7} {'events/s':>9} "
            f"{'p50 ms':>7} {'p99 ms':>7} {'store MiB':>10} {'server CPU s':>13} "
            f"{'peak RSS MiB':>13} {'load CPU s':>11}  note")
    body = [
        f"{r.agents:>4} {r.loaders:>7} {r.events:>7} {r.wall_seconds:>7.2f} {r.rate:>9.0f} "
        f"{r.p50_ms:>7.1f} {r.p99_ms:>7.1f} {(r.store_bytes + r.wal_bytes) / MIB:>10.1f} "
        f"{r.server.cpu:>13.2f} {r.peak_rss / MIB:>13.1f} {r.load_cpu:>11.2f}  {r.note}"
        for r in rows
    ]
    return "\n".join([head, "-" * len(head), *body])


def cost_table(rows: list[Row]) -> str:
    head = (f"{'M':>4} {'CPU ms/1000 events':>19} {'loop thread s':>14} "
            f"{'store thread s':>15} {'system s':>9} {'written MiB':>12} "
            f"{'KiB/batch':>10} {'WAL MiB':>8}")
    body = [
        f"{r.agents:>4} {r.server.cpu / r.events * 1e6:>19.0f} {r.server.main_thread:>14.2f} "
        f"{r.server.cpu - r.server.main_thread:>15.2f} {r.server.system:>9.2f} "
        f"{r.server.write_bytes / MIB:>12.0f} "
        f"{r.server.write_bytes / 1024 / (r.events / r.batch_events):>10.0f} "
        f"{r.wal_bytes / MIB:>8.1f}"
        for r in rows
    ]
    return "\n".join([head, "-" * len(head), *body])


def machine_lines(batches: int, events: int) -> list[str]:
    from importlib.metadata import version

    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mix = ", ".join(f"{kind} {weight:.0%}" for kind, weight in MIX)
    return [
        f"machine: {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), {model}, "
        f"{platform.system()} {platform.release()}",
        f"python {platform.python_version()}, monitord {version('monitord')}, "
        f"aiohttp {version('aiohttp')}, pydantic {version('pydantic')}, "
        f"sqlite {sqlite3.sqlite_version}",
        f"per agent: 1 warm-up + {batches} timed batches of {events} events, back to back, "
        f"{len(CHECKS)} checks; mix {mix}",
    ]


INTERESTING = ("monitord/", "aiohttp/", "pydantic", "json/", "sqlite3")


def summarize_pyspy(path: Path, top: int = 12) -> str:
    """Per thread: the frames on top of the stack (self) and the project's and libraries'
    frames anywhere on it (inclusive), from py-spy's raw (collapsed) output."""
    own: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    inclusive: dict[str, collections.Counter[str]] = collections.defaultdict(
        collections.Counter)
    threads: collections.Counter[str] = collections.Counter()
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = stack.split(";")
        if not stack or not frames[0].startswith("thread"):
            continue
        thread, count = frames[0], int(count_text)
        threads[thread] += count
        own[thread][frames[-1]] += count
        for frame in set(frames[1:]):
            if any(part in frame for part in INTERESTING):
                inclusive[thread][frame] += count
    total = sum(threads.values())
    if not total:
        return f"{path}: no samples"
    lines = [f"{path.name}: {total} on-CPU samples; shares are of all of them"]
    for thread, count in threads.most_common():
        lines.append(f"{thread}: {count / total:.1%}")
        lines.append("  self:")
        lines += [f"    {n / total:6.1%}  {name}" for name, n in own[thread].most_common(top)]
        lines.append("  inclusive:")
        lines += [f"    {n / total:6.1%}  {name}"
                  for name, n in inclusive[thread].most_common(top)]
    return "\n".join(lines)


def report_profiles(profile_dir: Path, agents_list: list[int]) -> None:
    import pstats

    for agents in agents_list:
        base = profile_dir / f"central-M{agents}"
        raw = Path(str(base) + ".txt")
        if raw.exists():
            print(summarize_pyspy(raw), file=sys.stderr)
        elif base.with_suffix(".pstats").exists():
            stats = pstats.Stats(str(base.with_suffix(".pstats")), stream=sys.stderr)
            stats.sort_stats("tottime").print_stats(25)
            stats.sort_stats("cumulative").print_stats(40)


def find_pyspy() -> str | None:
    for candidate in PYSPY:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop processes


def parent_main(args: argparse.Namespace) -> None:
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    agents_list = [int(n) for n in args.agents.split(",")]
    profile_dir = args.profile
    pyspy = find_pyspy() if profile_dir is not None else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    rows = []
    checked = []
    for agents in agents_list:
        loaders = args.loaders or (1 if agents < 50 else 2)
        row, checks = run_one(agents, args.batches, args.events, loaders, pyspy, profile_dir)
        rows.append(row)
        checked.append((agents, checks))
    print("\n".join(machine_lines(args.batches, args.events)))
    print(f"run took {time.monotonic() - started:.0f} s\n")
    print(table(rows))
    print("\nwhere the server's time went (store thread = all threads but the event loop's; "
          "system = the kernel's share of both):")
    print(cost_table(rows))
    print()
    for agents, c in checked:
        print(f"verified M={agents}: {c['events']} event ids each applied once (answers, event "
              f"table, {c['reposted']} re-posted all duplicates); {c['incidents']} incidents, "
              f"one per key, counts and status as sent ({c['resolved']} resolved)")
    if profile_dir is not None:
        print(f"profiles ({'py-spy' if pyspy else 'cProfile, event loop thread only'}) in "
              f"{profile_dir}; summary on stderr")
        report_profiles(profile_dir, agents_list)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", default="10,200",
                        help="comma-separated numbers of agents (default 10,200)")
    parser.add_argument("--batches", type=int, default=60,
                        help="timed batches per agent (default 60)")
    parser.add_argument("--events", type=int, default=20, help="events per batch (default 20)")
    parser.add_argument("--loaders", type=int, default=0,
                        help="load-generator processes (default 1 below 50 agents, else 2)")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="profile the service into DIR: py-spy if found, else cProfile "
                             "(inflates its CPU figure)")
    hidden = argparse.SUPPRESS
    parser.add_argument("--role", choices=["parent", "load", "register"], default="parent",
                        help=hidden)
    parser.add_argument("--spec", type=Path, help=hidden)
    parser.add_argument("--config", help=hidden)
    parser.add_argument("hosts", nargs="*", help=hidden)
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    if args.role == "load":
        spec = LoadSpec(**json.loads(args.spec.read_text()))
        Path(spec.result).write_text(json.dumps(asyncio.run(load_main(spec))))
    elif args.role == "register":
        register_main(args.config, args.hosts)
    else:
        parent_main(args)


if __name__ == "__main__":
    main(sys.argv[1:])
