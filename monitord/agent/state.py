"""The check state machine, and the one owner of a check's decisions.

Pure logic, no I/O. ``CheckState.observe(result, rules, situation)`` takes one result and
what the daemon knows around the check (its parents, its ladder, grace and maintenance),
and returns a ``Verdict``: what changed, and what happens next (``Decision``): fix now,
escalate without a fix, wait, send a recovery, or nothing. The daemon carries the
decision out and tells the state what came of it (``handled``, ``escalated``).

A failure is soft until ``fail_after`` consecutive non-OK results, then hard;
``recover_after`` consecutive OKs end a hard failure.

Dependencies: while a parent (``depends_on``, transitively) is failing, has a ladder
running or pending, or has not been probed since this check began to fail, this check
runs no fix and escalates nothing: it waits. Once the parent's failure is escalated and
its ladder is over, this check's failure joins the parent's incident; once the parent is
fine, this check's own failure is its own again.

Flapping is a share of OK/failing changes among the last ``flap_window`` results at or
above ``flap_threshold``. It is said once (a problem marked flapping, when there is a
failure or an incident to say it of); then nothing is fixed, escalated or resolved until
the check has been steady for ``flap_quiet``, when it resolves or escalates once.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from monitord.model import Result, Status
from monitord.probes.base import CheckBase

log = logging.getLogger(__name__)

MIN_FLAP_HISTORY = 6


class Change(enum.StrEnum):
    FIRST = "first"              # the first result of a check that had none
    SOFT = "soft"                # a failure not yet confirmed (or a different soft status)
    HARD = "hard"                # a failure confirmed: fail_after reached
    CHANGED = "changed"          # hard failure with a new status, or failing again in recovery
    RECOVERING = "recovering"    # an OK during a hard failure, recover_after not yet reached
    RECOVERED = "recovered"      # a hard failure ended
    CLEARED = "cleared"          # a soft failure ended before it became hard
    FLAPPING = "flapping"        # flapping detected
    STEADY = "steady"            # flapping ended


class Decision(enum.StrEnum):
    NOTHING = "nothing"
    FIX = "fix"              # run the check's fix ladder now
    ESCALATE = "escalate"    # file the problem without a ladder (``Verdict.reason`` says why)
    WAIT = "wait"            # a hard failure to act on later (grace, maintenance, a parent)
    RECOVER = "recover"      # the escalated failure ended: tell the store


@dataclass(frozen=True)
class Situation:
    """What the daemon knows around a check when a result comes in."""

    parent: str | None = None       # the nearest parent that is failing, busy or not yet
                                    # judged since this check began to fail
    parent_settled: bool = False    # that parent's failure was escalated and its ladder is
                                    # over: this check's failure joins its incident
    healing: bool = False           # this check's own ladder is running
    holding: str = ""               # why fixes must wait now: "grace", "maintenance"
    has_ladder: bool = True         # the check has fixes to run
    ladder_allowed: bool = True     # ... and its budget allows a ladder run now


@dataclass(frozen=True)
class Verdict:
    changes: list[Change]
    decision: Decision = Decision.NOTHING
    reason: str = ""                # why a problem is escalated without a ladder, or why
                                    # the check waits ("parent", "grace", "maintenance")
    moved: bool = False             # the parent it waits on or joins changed
    flapping: bool = False          # the problem to escalate is that the check flaps


FLAPPING = "flapping: not fixing a check whose state keeps changing"


@dataclass(frozen=True)
class Rules:
    fail_after: int = 3
    recover_after: int = 2
    flap_window: int = 20
    flap_threshold: float = 0.5
    flap_quiet: float = 300.0       # steady this long (no OK/failing flip) ends flapping


@dataclass
class CheckState:
    name: str
    status: Status = Status.OK           # the last result's status
    hard_status: Status = Status.OK      # the confirmed status
    fail_count: int = 0
    ok_count: int = 0
    since: float = 0.0                   # wall time the confirmed status began
    summary: str = ""
    last_run: float = 0.0
    seen: bool = False
    flapping: bool = False
    suppressed_by: str | None = None     # the parent its failure waits on or joined
    heal_pending: bool = False           # a hard failure the healer has not handled yet
    escalated: bool = False              # a problem went to the store; recovery must follow
    failed_at: float = 0.0               # wall time this run of failures began (0: OK)
    flipped_at: float = 0.0              # wall time it last turned OK or failing
    history: list[int] = field(default_factory=list)

    @property
    def hard_failing(self) -> bool:
        return self.hard_status is not Status.OK

    @property
    def phase(self) -> str:
        """A word for people: pending, ok, soft, hard or recovering."""
        if not self.seen:
            return "pending"
        if self.hard_failing:
            return "recovering" if self.status is Status.OK else "hard"
        return "soft" if self.status is not Status.OK else "ok"

    def observe(self, result: Result, rules: Rules, situation: Situation) -> Verdict:
        """Take ``result`` in and decide what happens next."""
        changes = self.update(result, rules)
        recovered = False
        if Change.HARD in changes or (Change.CHANGED in changes and not situation.healing):
            # A new hard failure, a relapse after a fix seemed to work, or a change of
            # severity: the junior tier looks again (within the budget) and escalates anew,
            # so the incident's priority follows the failure's.
            self.heal_pending = True
        elif Change.RECOVERED in changes:
            self.heal_pending = False
            recovered = self.escalated
        parent = situation.parent if self.status is not Status.OK else None
        moved = parent != self.suppressed_by
        if moved and parent is None and self.hard_failing:
            self.heal_pending = True  # the parent is back but this check is not: its turn
        self.suppressed_by = parent
        decision, reason, flapping = self._decide(changes, recovered, situation)
        return Verdict(changes, decision, reason, moved, flapping)

    def wants_action(self) -> bool:
        """Whether a hard failure waits to be fixed or escalated."""
        return self.heal_pending and self.hard_failing and self.status is not Status.OK

    def _decide(self, changes: list[Change], recovered: bool,
                situation: Situation) -> tuple[Decision, str, bool]:
        if Change.FLAPPING in changes:
            # Said once, while there is something to say; then quiet until steady.
            if self.status is not Status.OK or self.escalated:
                return Decision.ESCALATE, FLAPPING, True
            return Decision.NOTHING, "", False
        if self.flapping:
            return Decision.NOTHING, "", False
        if Change.STEADY in changes and self.status is Status.OK:
            recovered = self.escalated
        elif Change.STEADY in changes and self.hard_failing:
            self.heal_pending = True
        if recovered:
            return Decision.RECOVER, "", False
        decision, reason = self._act_on_failure(situation)
        return decision, reason, False

    def _act_on_failure(self, situation: Situation) -> tuple[Decision, str]:
        if not self.wants_action() or situation.healing:
            return Decision.NOTHING, ""
        if situation.holding == "maintenance":
            return Decision.WAIT, situation.holding
        if self.suppressed_by:
            if situation.parent_settled:
                return Decision.ESCALATE, f"suppressed by {self.suppressed_by}, which is failing"
            return Decision.WAIT, "parent"  # its outcome first: this joins its incident
        if not situation.has_ladder:
            return Decision.ESCALATE, "no fix configured"
        if situation.holding and situation.ladder_allowed:
            return Decision.WAIT, situation.holding   # the grace delays fixes, not pages
        return Decision.FIX, ""

    def handled(self) -> None:
        """The pending hard failure was fixed or escalated (its outcome was sent)."""
        self.heal_pending = False

    def update(self, result: Result, rules: Rules) -> list[Change]:
        """Take ``result`` in; what changed (no decision: see ``observe``)."""
        failing = result.status is not Status.OK
        if failing != (self.status is not Status.OK) or not self.seen:
            self.flipped_at = result.at
            self.failed_at = result.at if failing else 0.0
        changes = self._judge(result, rules)
        self.status, self.summary, self.last_run = result.status, result.summary, result.at
        changes += self._flap(result, rules)
        return changes

    def _judge(self, result: Result, rules: Rules) -> list[Change]:
        first = not self.seen
        self.seen = True
        if result.status is Status.OK:
            return self._ok(result, rules, first)
        return self._failure(result, rules, first)

    def _ok(self, result: Result, rules: Rules, first: bool) -> list[Change]:
        self.fail_count = 0
        if first:
            self.since = result.at
            return [Change.FIRST]
        if not self.hard_failing:
            return [Change.CLEARED] if self.status is not Status.OK else []
        self.ok_count += 1
        if self.ok_count < rules.recover_after:
            return [Change.RECOVERING] if self.ok_count == 1 else []
        self.hard_status, self.ok_count, self.since = Status.OK, 0, result.at
        return [Change.RECOVERED]

    def _failure(self, result: Result, rules: Rules, first: bool) -> list[Change]:
        self.ok_count = 0
        self.fail_count += 1
        if self.hard_failing:
            if result.status is self.status:
                return []
            self.hard_status = result.status
            return [Change.CHANGED]
        if self.fail_count >= rules.fail_after:
            self.hard_status, self.since = result.status, result.at
            return [Change.HARD]
        if first or result.status is not self.status:
            return [Change.SOFT]
        return []

    def _flap(self, result: Result, rules: Rules) -> list[Change]:
        self.history = [*self.history, int(result.status)][-(rules.flap_window + 1):]
        if self.flapping and result.at - self.flipped_at >= rules.flap_quiet:
            self.flapping = False
            return [Change.STEADY]
        if len(self.history) < max(MIN_FLAP_HISTORY, rules.flap_window // 2):
            return []
        if not self.flapping and (max(self.history) == 0 or min(self.history) > 0):
            return []   # all OK or all failing: no flips (the common case, checked in C)
        flips = sum(
            (a == Status.OK) != (b == Status.OK)
            for a, b in zip(self.history, self.history[1:], strict=False)
        )
        share = flips / (len(self.history) - 1)
        if not self.flapping and share >= rules.flap_threshold:
            self.flapping = True
            return [Change.FLAPPING]
        return []

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"], data["hard_status"] = int(self.status), int(self.hard_status)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckState:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        state = cls(**known)
        state.status, state.hard_status = Status(state.status), Status(state.hard_status)
        return state


def log_change(check: CheckBase, state: CheckState, change: Change, result: Result) -> None:
    """One log line for a change of ``check``'s state: warnings for hard failures."""
    status = result.status.name
    suffix = f" [waiting on {state.suppressed_by}]" if state.suppressed_by else ""
    if change is Change.FLAPPING:
        log.warning("%s: flapping: its state changed in %d of its last %d runs; fixes pause "
                    "until it is steady", check.name, _flips(state), len(state.history) - 1)
        return
    if change is Change.STEADY:
        log.info("%s: no longer flapping", check.name)
        return
    detail = {
        Change.FIRST: status,
        Change.SOFT: f"{status} (soft {state.fail_count}/{check.fail_after})",
        Change.HARD: f"{status} (hard, after {state.fail_count} failures)",
        Change.CHANGED: f"{status} (hard)",
        Change.RECOVERING: f"OK (recovering {state.ok_count}/{check.recover_after})",
        Change.RECOVERED: "OK (recovered)",
        Change.CLEARED: "OK (soft failure cleared)",
    }[change]
    level = logging.WARNING if change in (Change.HARD, Change.CHANGED) else logging.INFO
    log.log(level, "%s: %s: %s%s", check.name, detail, result.summary, suffix)


def _flips(state: CheckState) -> int:
    pairs = zip(state.history, state.history[1:], strict=False)
    return sum((a == 0) != (b == 0) for a, b in pairs)
