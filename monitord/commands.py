"""The one code path that runs a subprocess (fix scripts, start/stop commands, plugins).

No shell: ``argv`` is executed as given, and only if the program passes ``trust``'s rule
(owned by root, writable by nobody else, all the way up its path and its links' targets);
otherwise it is refused with the reason. The child gets its own session (so its own
process group), a scrubbed environment (PATH, LANG and what the caller adds: never
NOTIFY_SOCKET, WATCHDOG_*, credentials or anything else of the daemon's), no stdin, and
its stdout and stderr merged and captured up to ``max_output`` bytes (the rest is read
and dropped, so a chatty child never blocks). On timeout the whole group gets SIGTERM,
then SIGKILL after ``kill_grace`` seconds. Cancelling the caller kills the group too:
cancelling ``communicate()`` alone would leave the child running.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from monitord.trust import SAFE_PATH, command_path, unsafe_reason

CHUNK = 65536
AFTER_EXIT_READ_SECONDS = 1.0  # a daemonized grandchild may keep the pipe open
EXIT_POLL_SECONDS = 0.02


@dataclass(frozen=True, slots=True)
class CommandResult:
    argv: tuple[str, ...]
    exit_code: int | None      # None when it could not start or was killed
    duration_seconds: float
    output: str                # stdout and stderr, merged, at most max_output bytes
    truncated: bool = False
    timed_out: bool = False
    error: str = ""            # why it could not start ("no such file", ...)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def describe(self) -> str:
        """One line for logs and transcripts: "exit 0 in 1.2s", "timed out after 30s"."""
        took = f"{self.duration_seconds:.1f}s"
        if self.error:
            return f"could not run: {self.error}"
        if self.timed_out:
            return f"timed out after {took}; its process group was killed"
        if self.exit_code is not None and self.exit_code < 0:
            return f"killed by signal {-self.exit_code} after {took}"
        return f"exit {self.exit_code} in {took}"


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment children get: a fixed PATH, a UTF-8 locale, and ``extra``."""
    env = {"PATH": SAFE_PATH, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    env.update(extra or {})
    return env


async def run_command(
    argv: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    max_output: int = 65536,
    kill_grace: float = 3.0,
    cwd: str = "/",
) -> CommandResult:
    """Run ``argv`` to completion or until ``timeout``; never raises for the child's faults."""
    start = time.monotonic()
    reason = await asyncio.to_thread(_refusal, argv)
    if reason:
        return CommandResult(tuple(argv), None, 0.0, "", error=f"refused: {reason}")
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, env=clean_env(env), cwd=cwd,
            start_new_session=True, close_fds=True,
        )
    except OSError as e:
        return CommandResult(tuple(argv), None, time.monotonic() - start, "",
                             error=f"{argv[0]}: {e.strerror or e}")
    capture = _Capture(max_output)
    reader = asyncio.create_task(capture.drain(proc.stdout))
    timed_out = False
    try:
        try:
            async with asyncio.timeout(timeout):
                await _exited(proc)
        except TimeoutError:
            timed_out = True
            await _kill_group(proc, kill_grace)
        try:
            async with asyncio.timeout(AFTER_EXIT_READ_SECONDS):
                await asyncio.shield(reader)
        except TimeoutError:
            # The leader is gone but something it started still holds the output open:
            # a leftover of the command's own group, killed so it cannot linger.
            _signal_group(proc.pid, signal.SIGKILL)
    except asyncio.CancelledError:
        await _kill_group(proc, kill_grace)
        raise
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    return CommandResult(
        tuple(argv), None if timed_out else proc.returncode, time.monotonic() - start,
        capture.text(), capture.truncated, timed_out,
    )


class _Capture:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.truncated = False

    async def drain(self, stream: asyncio.StreamReader | None) -> None:
        if stream is None:
            return
        while chunk := await stream.read(CHUNK):
            room = self.limit - len(self.data)
            if len(chunk) > room:
                self.truncated = True
            self.data += chunk[: max(room, 0)]

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


async def _exited(proc: asyncio.subprocess.Process) -> None:
    """Until the child has exited. ``proc.wait()`` would also wait for its pipes to close
    (cpython issue 119710), which a grandchild holding stdout can put off forever."""
    while proc.returncode is None:  # noqa: ASYNC110  (no event to wait on: see above)
        await asyncio.sleep(EXIT_POLL_SECONDS)


async def _kill_group(proc: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM to the child's process group, SIGKILL after ``grace``, then reap the child."""
    _signal_group(proc.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(grace):
            await _exited(proc)
    # Grandchildren may outlive the leader; the group id stays valid while any member runs.
    _signal_group(proc.pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(grace):
            await _exited(proc)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _refusal(argv: Sequence[str]) -> str:
    """Why ``argv``'s program must not run as root ("" when it may). A program that is not
    there is left to exec, which says so in its own words."""
    program = command_path(argv[0]) if argv else None
    return unsafe_reason(program) if program and os.path.lexists(program) else ""
