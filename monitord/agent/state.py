"""The check state machine: soft and hard failures, recovery, flapping, suppression.

Pure logic: ``CheckState.update(result, rules)`` returns what changed, and nothing else
happens here. A failure is soft until ``fail_after`` consecutive non-OK results, then
hard; ``recover_after`` consecutive OKs end a hard failure. Flapping is a share of
OK/non-OK changes among the last ``flap_window`` results at or above ``flap_threshold``;
it ends below half of that.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

from monitord.model import Result, Status

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


@dataclass(frozen=True)
class Rules:
    fail_after: int = 3
    recover_after: int = 2
    flap_window: int = 20
    flap_threshold: float = 0.5


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
    suppressed_by: str | None = None
    heal_pending: bool = False           # a hard failure the healer has not handled yet
    escalated: bool = False              # a problem went to the store; recovery must follow
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

    def update(self, result: Result, rules: Rules) -> list[Change]:
        changes = self._judge(result, rules)
        self.status, self.summary, self.last_run = result.status, result.summary, result.at
        changes += self._flap(result.status, rules)
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

    def _flap(self, status: Status, rules: Rules) -> list[Change]:
        self.history = [*self.history, int(status)][-(rules.flap_window + 1):]
        if len(self.history) < max(MIN_FLAP_HISTORY, rules.flap_window // 2):
            return []
        flips = sum(
            (a == Status.OK) != (b == Status.OK)
            for a, b in zip(self.history, self.history[1:], strict=False)
        )
        share = flips / (len(self.history) - 1)
        if not self.flapping and share >= rules.flap_threshold:
            self.flapping = True
            return [Change.FLAPPING]
        if self.flapping and share < rules.flap_threshold / 2:
            self.flapping = False
            return [Change.STEADY]
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
