"""What people hear of an incident a maintenance window held: nothing while it runs (no
level climbed), the "opened" at the first step of the escalation policy when it ends, the
next step a share of the target after its end; and the end of an incident they had heard
of before the window ("resolved") even while it runs. Real API, real store (every
backend), real webhook receivers on 127.0.0.1; the test moves the app's clock."""

from __future__ import annotations

import datetime as dt

from monitord.store.protocol import Maintenance, Store
from tests.central.apiclient import T0, recovery
from tests.central.receivers import receiving
from tests.central.test_notify import central, hook, open_incident, round_at
from tests.central.test_notify_people import kinds, people, settings


def window(minutes: float) -> Maintenance:
    return Maintenance("web1", "", T0 + dt.timedelta(minutes=minutes), "dana", "new disks",
                       T0)


async def test_a_failure_in_a_window_pages_the_first_step_when_the_window_ends(
        store: Store) -> None:
    async with receiving() as hooks:
        await people(store, hooks.url)
        await store.set_maintenance(window(60))
        notify = settings(hook("ops", hooks.url + "/ops"), hook("room", hooks.url + "/room"))
        async with central(store, notify) as api:
            await open_incident(api, "P2")
            for minute in (0, 30, 45, 59):                # two levels' worth, held
                assert await round_at(api, minute) == [], minute
            [opened] = await round_at(api, 61)            # the window is over
            assert (opened.notice.kind, opened.notice.level) == ("opened", 0)
            assert sorted(opened.told) == ["alice:webhook", "room"]   # on call since 30
            assert await round_at(api, 89) == []
            [escalated] = await round_at(api, 90)         # 60 + a quarter of 2 hours
            assert (escalated.notice.kind, escalated.notice.level) == ("escalated", 1)
            assert sorted(escalated.told) == ["carol:webhook", "ops", "room"]
    assert kinds(hooks, "/alice") == ["opened"]
    assert kinds(hooks, "/bob") == []


async def test_an_incident_paged_before_a_window_is_resolved_in_it(store: Store) -> None:
    async with receiving() as hooks:
        notify = settings(hook("room", hooks.url + "/room"))
        async with central(store, notify) as api:
            await open_incident(api, "P1")
            assert len(await round_at(api, 0)) == 1      # "opened": people heard of it
            await store.set_maintenance(window(60))
            response = await api.post_events(recovery("shop"))
            assert response.status == 200
            [resolved] = await round_at(api, 5)
            assert resolved.notice.kind == "resolved" and resolved.told == ["room"]
    assert kinds(hooks, "/room") == ["opened", "resolved"]
