"""Where a running agent's CPU goes: py-spy's samples by part, and perf's by library.

``profile_agent(pid, out)`` samples the process for ``SECONDS``: py-spy (``--gil``: only
the thread running Python, so an idle wait is not counted; C code called from Python, a
socket connect or send, is counted in the Python function that called it) and, when it
works here, ``perf record`` (the kernel, libpython, uvloop, httptools). It writes the raw
samples beside ``out`` and prints one table of shares per tool to stderr. py-spy is found
beside this interpreter or on $PATH (``pip install py-spy``).

Run alone on a live agent: ``.venv/bin/python benchmarks/profile_summary.py PID OUT``.
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
from pathlib import Path

SECONDS = 20
# The first frame (from the innermost) in one of these files names the part a sample is in.
PARTS = [
    ("http exchange: connect, send, parse (C and kernel time included)",
     ("monitord/probes/httpwire.py",)),
    ("http probe: request, readings", ("monitord/probes/http.py",)),
    ("runner, deadline, evaluator", ("monitord/agent/runner.py", "monitord/agent/deadlines.py",
                                     "monitord/agent/evaluator.py")),
    ("check state and flow", ("monitord/agent/state.py", "monitord/agent/flow.py",
                              "monitord/agent/ladders.py", "monitord/agent/dependencies.py",
                              "monitord/agent/healer.py")),
    ("scheduler: tasks, heap, sleep", ("monitord/agent/scheduler.py",)),
    ("chores: states written, outbox, delivery, status", ("monitord/agent/daemon.py",
                                                          "monitord/agent/outbox.py",
                                                          "monitord/agent/delivery.py",
                                                          "monitord/agent/statestore.py",
                                                          "monitord/store/",
                                                          "monitord/agent/status.py")),
    ("event loop: epoll, callbacks (uvloop, C)", ("asyncio/runners.py",)),
]


def tool(name: str) -> str | None:
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def part_of(stack: list[str]) -> str:
    for frame in reversed(stack):
        for part, files in PARTS:
            if any(f in frame for f in files):
                return part
    return "other"


def spy_table(raw: Path) -> list[tuple[str, float]]:
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        counts[part_of(stack.split(";"))] += int(count)
    total = sum(counts.values()) or 1
    return [(part, 100 * n / total) for part, n in counts.most_common()]


def perf_table(data: Path) -> list[tuple[str, float]]:
    done = subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--sort", "dso",
                           "-g", "none", "--stdio"], capture_output=True, text=True, check=False)
    rows = []
    for line in done.stdout.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0].endswith("%"):
            rows.append((fields[1], float(fields[0].rstrip("%"))))
    return rows


def profile_agent(pid: int, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"profile of pid {pid}, {SECONDS} s:"]
    spy = tool("py-spy")
    if spy is not None:
        raw = out.with_suffix(".pyspy.txt")
        subprocess.run([spy, "record", "--pid", str(pid), "--rate", "1000", "--duration",
                        str(SECONDS), "--gil", "--nolineno", "--format", "raw", "--output",
                        str(raw)], check=True, capture_output=True)
        lines += ["  py-spy, samples holding the GIL, by part:"]
        lines += [f"    {share:5.1f} %  {part}" for part, share in spy_table(raw)]
    if shutil.which("perf") is not None:
        data = out.with_suffix(".perf.data")
        recorded = subprocess.run(["perf", "record", "-o", str(data), "-F", "999", "-p",
                                   str(pid), "--", "sleep", str(SECONDS)],
                                  capture_output=True, check=False)
        if recorded.returncode == 0:
            lines += ["  perf, CPU samples by library:"]
            lines += [f"    {share:5.1f} %  {dso}" for dso, share in perf_table(data)[:8]]
    print("\n".join(lines), file=sys.stderr)


if __name__ == "__main__":
    profile_agent(int(sys.argv[1]), Path(sys.argv[2]))
