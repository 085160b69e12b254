"""The check state machine: soft, hard, recovery, flapping, and surviving a restart."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from monitord.agent.state import Change, CheckState, Decision, Rules, Situation, Verdict
from monitord.agent.statestore import StateStore
from monitord.model import Result, Status

OK, WARN, CRIT = Status.OK, Status.WARNING, Status.CRITICAL
RULES = Rules(fail_after=3, recover_after=2, flap_window=20, flap_threshold=0.5)


def feed(state: CheckState, *statuses: Status, rules: Rules = RULES) -> list[list[Change]]:
    return [state.update(Result(s, f"{s.name} now", at=float(i)), rules)
            for i, s in enumerate(statuses, start=len(state.history))]


def test_failure_is_soft_until_fail_after_then_hard() -> None:
    state = CheckState("web")
    changes = feed(state, OK, CRIT, CRIT, CRIT, CRIT)
    assert changes == [[Change.FIRST], [Change.SOFT], [], [Change.HARD], []]
    assert state.hard_failing and state.hard_status is CRIT and state.phase == "hard"


def test_soft_failure_that_clears_never_becomes_hard() -> None:
    state = CheckState("web")
    changes = feed(state, OK, CRIT, CRIT, OK, CRIT, CRIT, OK)
    assert Change.HARD not in sum(changes, [])
    assert changes[3] == [Change.CLEARED]
    assert not state.hard_failing and state.fail_count == 0


def test_recovery_needs_recover_after_oks() -> None:
    state = CheckState("web")
    feed(state, CRIT, CRIT, CRIT)
    assert feed(state, OK) == [[Change.RECOVERING]]
    assert state.hard_failing and state.phase == "recovering"
    assert feed(state, OK) == [[Change.RECOVERED]]
    assert not state.hard_failing and state.phase == "ok"


def test_failing_again_while_recovering_stays_hard() -> None:
    state = CheckState("web")
    feed(state, CRIT, CRIT, CRIT, OK)
    assert feed(state, CRIT) == [[Change.CHANGED]]
    assert state.hard_failing and state.ok_count == 0
    assert feed(state, OK) == [[Change.RECOVERING]]


def test_hard_warning_that_turns_critical_changes_the_same_failure() -> None:
    state = CheckState("disk")
    feed(state, WARN, WARN, WARN)
    assert state.hard_status is WARN
    assert feed(state, CRIT) == [[Change.CHANGED]]
    assert state.hard_status is CRIT


def test_first_result_failing_counts_as_first_soft_failure() -> None:
    state = CheckState("web")
    assert feed(state, CRIT) == [[Change.SOFT]]
    assert state.phase == "soft" and state.fail_count == 1


def test_alternating_results_are_flapping_until_steady_for_flap_quiet() -> None:
    rules = Rules(fail_after=3, recover_after=2, flap_window=20, flap_threshold=0.5,
                  flap_quiet=10.0)
    state = CheckState("web")
    changes = sum(feed(state, *([OK, CRIT] * 5), rules=rules), [])
    assert Change.FLAPPING in changes and state.flapping
    steady = feed(state, *([OK] * 12), rules=rules)     # one result a second
    assert [i for i, c in enumerate(steady) if Change.STEADY in c] == [10]
    assert not state.flapping


NOTHING_AROUND = Situation()


def decide(state: CheckState, status: Status, situation: Situation = NOTHING_AROUND,
           rules: Rules = RULES) -> Verdict:
    """One result a second after the last one."""
    return state.observe(Result(status, f"{status.name} now", at=state.last_run + 1.0),
                         rules, situation)


def test_hard_failure_is_fixed_and_one_without_fixes_is_escalated() -> None:
    fixable, bare = CheckState("web"), CheckState("disk")
    for _ in range(3):
        fix = decide(fixable, CRIT)
        page = decide(bare, CRIT, Situation(has_ladder=False))
    assert fix.decision is Decision.FIX
    assert (page.decision, page.reason) == (Decision.ESCALATE, "no fix configured")


def test_grace_holds_fixes_but_not_pages() -> None:
    held = decide(CheckState("web"), CRIT, Situation(holding="grace"), Rules(fail_after=1))
    assert (held.decision, held.reason) == (Decision.WAIT, "grace")
    bare = decide(CheckState("disk"), CRIT, Situation(holding="grace", has_ladder=False),
                  Rules(fail_after=1))
    assert bare.decision is Decision.ESCALATE
    spent = decide(CheckState("web"), CRIT, Situation(holding="grace", ladder_allowed=False),
                   Rules(fail_after=1))
    assert spent.decision is Decision.FIX      # the healer says "recurring" at once


def test_child_waits_on_its_parent_then_joins_its_incident() -> None:
    state = CheckState("shop")
    waiting = [decide(state, CRIT, Situation(parent="nginx")) for _ in range(3)]
    assert [v.decision for v in waiting] == [Decision.NOTHING, Decision.NOTHING,
                                             Decision.WAIT]
    assert state.suppressed_by == "nginx" and state.wants_action()
    joined = decide(state, CRIT, Situation(parent="nginx", parent_settled=True))
    assert joined.decision is Decision.ESCALATE
    assert joined.reason == "suppressed by nginx, which is failing"


def test_child_whose_parent_is_fine_again_acts_on_its_own() -> None:
    state = CheckState("shop")
    for _ in range(3):
        decide(state, CRIT, Situation(parent="nginx"))
    alone = decide(state, CRIT, Situation())
    assert alone.moved and alone.decision is Decision.FIX and state.suppressed_by is None


def test_flapping_is_said_once_then_quiet_until_steady() -> None:
    rules = Rules(fail_after=1, recover_after=1, flap_window=8, flap_threshold=0.5,
                  flap_quiet=5.0)
    state = CheckState("web")
    state.escalated = True                              # an incident is open
    verdicts = [decide(state, s, rules=rules) for s in [CRIT, OK] * 6]
    said = [v for v in verdicts if v.flapping]
    assert len(said) == 1 and said[0].decision is Decision.ESCALATE
    after = verdicts[verdicts.index(said[0]) + 1:]
    assert all(v.decision is Decision.NOTHING for v in after)   # no fix, page or resolve
    steady = [decide(state, OK, rules=rules) for _ in range(6)]
    assert [v.decision for v in steady].count(Decision.RECOVER) == 1


def test_occasional_failures_are_not_flapping() -> None:
    state = CheckState("web")
    changes = sum(feed(state, *([OK] * 8 + [CRIT] + [OK] * 8)), [])
    assert Change.FLAPPING not in changes


def test_state_survives_a_restart(tmp_path: Path) -> None:
    state = CheckState("web")
    feed(state, CRIT, CRIT, CRIT, OK)
    store = StateStore(tmp_path / "state.db")
    store.save([state], now=100.0)
    store.close()

    restored = StateStore(tmp_path / "state.db").load()["web"]
    assert restored == state
    assert restored.phase == "recovering"
    assert feed(restored, OK) == [[Change.RECOVERED]]


def test_forget_drops_checks_no_longer_configured(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    store.save([CheckState("a"), CheckState("b")], now=1.0)
    store.forget({"b"})
    assert set(store.load()) == {"b"}
    store.close()


def test_store_serves_several_threads_at_once(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    states = [CheckState(f"c{i}") for i in range(20)]

    def work(n: int) -> None:
        for _ in range(50):
            store.save(states, now=float(n))
            store.maintenance(now=float(n))
            store.record_heal_run(f"c{n}", at=float(n), keep_since=0.0)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(work, range(4)))  # re-raises any thread's error
    assert len(store.heal_runs_since("c0", since=0.0)) == 50
    store.close()
