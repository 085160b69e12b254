"""The check state machine: soft, hard, recovery, flapping, and surviving a restart."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from monitord.agent.state import Change, CheckState, Rules
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


def test_alternating_results_are_flapping_and_steady_results_end_it() -> None:
    state = CheckState("web")
    changes = sum(feed(state, *([OK, CRIT] * 5)), [])
    assert Change.FLAPPING in changes and state.flapping
    changes = sum(feed(state, *([OK] * 20)), [])
    assert Change.STEADY in changes and not state.flapping


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
