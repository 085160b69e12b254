"""Runs one check once: owns the deadline, the timing, and turning probe bugs into UNKNOWN."""

from __future__ import annotations

import logging
import time

from monitord.agent.deadlines import Deadlines
from monitord.agent.evaluator import Rules, rules_of, to_result
from monitord.durations import format_duration
from monitord.errors import CAFileError, ProbeError, SecretError
from monitord.model import Result, Status
from monitord.probes import REGISTRY
from monitord.probes.base import CheckBase, ProbeContext

log = logging.getLogger(__name__)


async def run_check(check: CheckBase, ctx: ProbeContext) -> Result:
    """One attempt of ``check`` under its timeout, judged into a Result."""
    probe = REGISTRY[check.probe].probe
    ctx.timeout = check.timeout
    start = ctx.started = time.monotonic()
    deadline = ctx.shared.kept("runner deadlines", Deadlines).after(check.timeout)
    try:
        async with deadline:
            obs = await probe(check, ctx)
    except TimeoutError:
        if not deadline.expired():
            return _failed(Status.CRITICAL, f"{check.probe} probe timed out", start)
        target = check.target()
        return _failed(Status.CRITICAL, f"{target}: " * bool(target) + "timed out after "
                       f"{format_duration(check.timeout)}", start)
    except ProbeError as e:
        return _failed(e.status, str(e), start)
    except (SecretError, CAFileError) as e:  # the admin's file to fix, not an outage
        return _failed(Status.UNKNOWN, str(e), start)
    except Exception as e:  # a probe's own bug must not stop the daemon; CancelledError passes
        log.debug("check %s: probe raised", check.name, exc_info=True)
        return _failed(Status.UNKNOWN, f"probe failed unexpectedly: {type(e).__name__}: {e}", start)
    return to_result(check, obs, time.monotonic() - start, time.time(), _rules(check, ctx))


def _rules(check: CheckBase, ctx: ProbeContext) -> Rules:
    """``check``'s rules, kept in its context between runs."""
    rules = ctx.rules
    if not isinstance(rules, Rules) or rules.check is not check:
        rules = ctx.rules = rules_of(check)
    return rules


def _failed(status: Status, summary: str, start: float) -> Result:
    return Result(status, summary, (), time.monotonic() - start, time.time())
