"""The outbox: durable order, removal only on acceptance, bounds that spare problems."""

from __future__ import annotations

from pathlib import Path

from monitord.agent.outbox import Limits, Outbox
from monitord.events import Event, new_id, utc_now


def event(kind: str, check: str = "web") -> Event:
    if kind == "heartbeat":
        return Event(id=new_id(), kind="heartbeat", host="web1", at=utc_now(),
                     interval_seconds=60)
    return Event(id=new_id(), kind=kind, host="web1", check=check, at=utc_now(),  # type: ignore[arg-type]
                 priority="P1", status="CRITICAL", summary="HTTP 502")


def kinds(outbox: Outbox) -> list[str]:
    return [e.kind for _, e in outbox.peek(1000)]


def test_events_come_out_in_order_and_survive_reopening(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "state.db")
    sent = [event("problem"), event("healed"), event("recovery")]
    for e in sent:
        outbox.put(e)
    outbox.close()
    again = Outbox(tmp_path / "state.db")
    assert [e for _, e in again.peek(10)] == sent
    again.close()


def test_only_removed_events_leave(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "state.db")
    for kind in ("problem", "recovery", "problem"):
        outbox.put(event(kind))
    rows = outbox.peek(2)
    outbox.remove([seq for seq, _ in rows])
    assert kinds(outbox) == ["problem"] and outbox.depth() == 1


def test_only_the_newest_heartbeat_is_kept_and_never_on_disk(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "state.db")
    outbox.put(event("heartbeat"))
    outbox.put(event("problem"))
    last = event("heartbeat")
    outbox.put(last)
    assert [e.id for _, e in outbox.peek(10)][-1] == last.id
    assert kinds(outbox) == ["problem", "heartbeat"]
    outbox.close()
    assert kinds(Outbox(tmp_path / "state.db")) == ["problem"]   # a restart sends a new one


def test_full_outbox_drops_healed_first_and_never_problems(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "state.db", Limits(max_rows=3))
    for kind in ("healed", "problem", "healed"):
        outbox.put(event(kind))
    outbox.put(event("recovery"))  # full: the oldest healed goes
    assert kinds(outbox) == ["problem", "healed", "recovery"]
    outbox.put(event("problem"))
    outbox.put(event("problem"))   # no healed left: problems are kept past the bound
    assert kinds(outbox) == ["problem", "recovery", "problem", "problem"]
    assert outbox.counters.dropped == {"healed": 2}


def test_byte_bound_drops_healed_too(tmp_path: Path) -> None:
    size = len(event("healed").model_dump_json())
    outbox = Outbox(tmp_path / "state.db", Limits(max_bytes=size * 2 + size // 2))
    outbox.put(event("healed"))
    outbox.put(event("healed"))
    outbox.put(event("problem"))
    assert kinds(outbox) == ["healed", "problem"]
    assert outbox.counters.dropped == {"healed": 1}


def test_free_disk_floor_drops_healed_but_keeps_problems_and_the_heartbeat(
        tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "state.db", Limits(min_free_bytes=2**62))  # always below
    outbox.put(event("problem"))
    outbox.put(event("healed"))
    outbox.put(event("heartbeat"))     # in memory: a low disk never fakes a server-down
    outbox.put(event("recovery"))
    assert kinds(outbox) == ["problem", "recovery", "heartbeat"]
    assert outbox.counters.dropped == {"healed": 1}


def test_a_new_healed_event_is_refused_when_nothing_can_make_room(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "state.db", Limits(max_rows=2))
    outbox.put(event("problem"))
    outbox.put(event("problem"))
    outbox.put(event("healed"))
    assert kinds(outbox) == ["problem", "problem"]
    assert outbox.counters.dropped == {"healed": 1}
