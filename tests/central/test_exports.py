"""The fix statistics API over a window, and the service's /metrics counting notices,
against the real app and store (every backend)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from monitord.store.protocol import Store
from tests.central.apiclient import T0, problem, running
from tests.central.receivers import receiving
from tests.central.test_notify import central, hook, open_incident, round_at, settings


def step(fix: str, worked: bool) -> dict[str, Any]:
    return {"fix": fix, "argv": [fix, "nginx"], "exit_code": 0, "duration_seconds": 1.0,
            "output": "", "ended": "exit 0 in 1s",
            "reprobe_status": "OK" if worked else "CRITICAL", "reprobe_summary": ""}


def healed(check: str, host: str, at: dt.datetime, *steps: dict[str, Any]) -> dict[str, Any]:
    return {**problem(check, host=host), "kind": "healed", "at": at.isoformat(),
            "steps": list(steps)}


async def test_fix_stats_add_up_per_fix_check_and_host_within_the_window(
        store: Store) -> None:
    old = T0 - dt.timedelta(days=10)
    async with running(store) as api:
        for host, events in (
            ("web1", [healed("shop", "web1", old, step("restart-service", True)),
                      healed("shop", "web1", T0, step("reload-service", False),
                             step("restart-service", True))]),
            ("web2", [healed("shop", "web2", T0, step("restart-service", False)),
                      healed("blog", "web2", T0, step("restart-service", True))]),
        ):
            response = await api.post_events(*events, host=host)
            assert response.status == 200, await response.text()
        response = await api.get("/api/v1/fix-stats", since="7d")
        assert response.status == 200, await response.text()
        stats = await response.json()
        everything = await (await api.get("/api/v1/fix-stats", since="30d")).json()
    assert (stats["since"], stats["until"]) == ("2026-11-18T17:00:00Z", "2026-11-25T17:00:00Z")
    assert stats["totals"] == {"runs": 4, "worked": 2, "success_ratio": 0.5,
                               "last_at": "2026-11-25T17:00:00Z"}
    assert [(r["fix"], r["runs"], r["worked"], r["success_ratio"]) for r in stats["by_fix"]] \
        == [("restart-service", 3, 2, 0.6667), ("reload-service", 1, 0, 0.0)]
    assert [(r["check"], r["runs"]) for r in stats["by_check"]] == [("shop", 3), ("blog", 1)]
    assert [(r["host"], r["runs"]) for r in stats["by_host"]] == [("web1", 2), ("web2", 2)]
    assert [(r["host"], r["check"], r["fix"], r["runs"]) for r in stats["runs"]][:2] == [
        ("web1", "shop", "reload-service", 1), ("web1", "shop", "restart-service", 1)]
    assert everything["totals"]["runs"] == 5


async def test_a_bad_window_is_one_clear_error(store: Store) -> None:
    async with running(store) as api:
        answers = [await api.get("/api/v1/fix-stats", **query) for query in
                   ({"since": "1 week"}, {"since": "100d"}, {"snce": "7d"})]
        bodies = [await a.json() for a in answers]
        nobody = await api.client.get("/api/v1/fix-stats")
    assert [a.status for a in answers] == [400, 400, 400]
    assert bodies[0]["message"] == ('since: expected a duration like "7d", "24h" or "30m", '
                                    'got "1 week"')
    assert bodies[1]["message"] == 'since: expected from 1m to 90d, got "100d"'
    assert bodies[2]["message"] == 'snce: unknown query parameter; did you mean "since"?'
    assert nobody.status == 401


async def test_metrics_count_notices_by_channel_and_outcome(store: Store) -> None:
    async with receiving() as hooks:
        hooks.scripts["/broken"] = [400]
        hooks.scripts["/busy"] = [503]
        notify = settings(hook("ok", hooks.url + "/ok"), hook("broken", hooks.url + "/broken"),
                          hook("busy", hooks.url + "/busy"))
        async with central(store, notify) as api:
            await open_incident(api, "P1")
            await round_at(api, 0)
            response = await api.get("/metrics")
            assert response.status == 200
            text = await response.text()
            unauthorized = await api.client.get("/metrics")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("monitord_central_notices_sent_total", (("channel", "ok"),))] == 1
    assert samples[("monitord_central_notices_failed_total",
                    (("channel", "broken"), ("outcome", "refused")))] == 1
    assert samples[("monitord_central_notices_failed_total",
                    (("channel", "busy"), ("outcome", "retry")))] == 1
    assert samples[("monitord_central_incidents_open",
                    (("priority", "P1"), ("status", "open")))] == 1
    assert samples[("monitord_central_events_ingested_total", (("result", "applied"),))] == 1
    assert unauthorized.status == 401


def samples_of(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


async def test_expected_answers_of_the_store_are_not_counted_as_its_errors(
        store: Store) -> None:
    async with running(store) as api:
        assert (await api.post_events(problem("web", "P1"))).status == 200
        found = await (await api.get("/api/v1/incidents")).json()
        incident_id = found["incidents"][0]["id"]
        assert (await api.act(incident_id, "resolve")).status == 200
        assert (await api.act(incident_id, "resolve")).status == 409    # already resolved
        assert (await api.get("/api/v1/incidents/999999")).status == 404
        samples = samples_of(await (await api.get("/metrics")).text())
    errors = {labels: value for (name, labels), value in samples.items()
              if name == "monitord_central_store_errors_total"}
    assert errors == {}
    assert samples[("monitord_central_store_seconds_count", (("operation", "resolve"),))] == 2
    assert samples[("monitord_central_store_seconds_count", (("operation", "incident"),))] >= 2


async def test_fix_stats_are_filtered_by_host_and_check_and_capped(store: Store) -> None:
    async with running(store) as api:
        for host, events in (
            ("web1", [healed("shop", "web1", T0, step("restart-service", True)),
                      healed("shop", "web1", T0, step("restart-service", True)),
                      healed("blog", "web1", T0, step("reload-service", False))]),
            ("web2", [healed("shop", "web2", T0, step("restart-service", False))]),
        ):
            assert (await api.post_events(*events, host=host)).status == 200
        web1 = await (await api.get("/api/v1/fix-stats", host="web1")).json()
        shop = await (await api.get("/api/v1/fix-stats", check="shop")).json()
        one = await (await api.get("/api/v1/fix-stats", host="web1", check="blog")).json()
        capped = await (await api.get("/api/v1/fix-stats", limit="1")).json()
        everything = await (await api.get("/api/v1/fix-stats")).json()
    assert [(r["host"], r["check"]) for r in web1["runs"]] == [("web1", "shop"),
                                                              ("web1", "blog")]
    assert [(r["host"], r["runs"]) for r in shop["by_host"]] == [("web1", 2), ("web2", 1)]
    assert [(r["check"], r["fix"]) for r in one["runs"]] == [("blog", "reload-service")]
    assert (capped["truncated"], capped["limit"]) == (True, 1)
    assert [(r["host"], r["check"], r["runs"]) for r in capped["runs"]] == [
        ("web1", "shop", 2)]                                   # the busiest is kept
    assert capped["totals"]["runs"] == 2                       # what is shown
    assert (everything["truncated"], everything["limit"]) == (False, 500)
    assert everything["totals"]["runs"] == 4 and not web1["truncated"]


async def test_bad_fix_stats_filters_are_one_clear_error_each(store: Store) -> None:
    async with running(store) as api:
        answers = [await api.get("/api/v1/fix-stats", **query) for query in
                   ({"host": "web1\n"}, {"check": "a b"}, {"limit": "0"}, {"limit": "5001"},
                    {"limit": "x"})]
        bodies = [await a.json() for a in answers]
        twice = await api.client.get("/api/v1/fix-stats?host=a&host=b&limit=2&limit=3",
                                     headers=api.person())
        problems = (await twice.json())["problems"]
    assert [a.status for a in answers] == [400] * 5
    assert bodies[0]["message"].startswith('host: expected a host name')
    assert bodies[1]["message"].startswith('check: expected a check name')
    assert [b["message"] for b in bodies[2:]] == [
        f'limit: expected a whole number from 1 to 5000, got "{v}"' for v in ("0", "5001", "x")]
    assert problems == ["host: give it at most once", "limit: give it at most once"]
