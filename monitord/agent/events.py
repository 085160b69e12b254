"""Making this host's events: outcomes of the healer, recoveries, heartbeats, a clean stop,
and maintenance windows set or ended.

Titles and bodies are rendered from jinja2 templates (``texts.Renderer``): the stock ones
in ``monitord/templates/events``, overridden by files of the same name in the admin's
directory (``[templates] dir``, /etc/monitord/templates by default).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from monitord.agent.healer import Outcome
from monitord.events import Event, EventKind, Step, new_id, utc_now
from monitord.model import Priority, Result, Status
from monitord.texts import TEMPLATES, Renderer

STOCK_TEMPLATES = TEMPLATES / "events"
MAX_READINGS = 40
MAX_READINGS_CHARS = 1000


def event_renderer(admin_dir: str) -> Renderer:
    """The renderer of event texts: the admin's templates first, then the stock ones."""
    return Renderer(admin_dir, STOCK_TEMPLATES)


class EventMaker:
    """Builds this host's events."""

    def __init__(self, host: str, renderer: Renderer) -> None:
        self.host = host
        self.renderer = renderer

    def from_outcome(self, outcome: Outcome) -> Event:
        steps = [_step(s) for s in outcome.steps]
        context = {
            "host": self.host, "check": outcome.check, "priority": outcome.priority,
            "status": outcome.result.status.name, "summary": outcome.result.summary,
            "reason": outcome.reason, "recurring": outcome.recurring,
            "suppressed_by": outcome.suppressed_by, "steps": [s.model_dump() for s in steps],
            "fix": steps[-1].fix if steps else "", "failure": outcome.failure_summary,
            "flapping": outcome.flapping, "readings": readings_text(outcome.result),
        }
        kind: EventKind = "healed" if outcome.kind == "healed" else "problem"
        title, body = self.renderer.render(kind, context)
        titles = self._titles(context) if kind == "problem" else {}
        return Event(
            id=new_id(), kind=kind, host=self.host, check=outcome.check,
            at=utc_now(), priority=outcome.priority,
            status=outcome.result.status.name, title=title, body=body,  # type: ignore[arg-type]
            summary=outcome.result.summary[:2000], reason=outcome.reason[:2000],
            recurring=outcome.recurring, suppressed_by=outcome.suppressed_by, steps=steps,
            flapping=outcome.flapping, titles=titles,
        )

    def _titles(self, context: dict[str, Any]) -> dict[Priority, str]:
        """The problem's title at each priority when its template names the priority
        (the store then keeps the title of the incident's current one), else none."""
        titles = {p: self.renderer.title("problem", {**context, "priority": p})
                  for p in Priority}
        return titles if len(set(titles.values())) > 1 else {}

    def undeliverable(self, refused: Event, answer: str, check: str) -> Event:
        """A problem of the agent's own: the store refused ``refused`` for good. Its
        priority is at least P3, and the priority of a problem it lost."""
        priority = min(refused.priority or Priority.P3, Priority.P3)
        reason = f"the store refused event {refused.id} ({refused.kind} {refused.key}): {answer}"
        outcome = Outcome("problem", check, priority, reason[:2000],
                          Result(Status.WARNING, "an event could not be delivered"))
        return self.from_outcome(outcome)

    def recovery(self, check: str, result: Result) -> Event:
        context = {"host": self.host, "check": check, "summary": result.summary}
        title, body = self.renderer.render("recovery", context)
        return Event(id=new_id(), kind="recovery", host=self.host, check=check, at=utc_now(),
                     status="OK", title=title, body=body, summary=result.summary[:2000])

    def heartbeat(self, interval_seconds: float) -> Event:
        return Event(id=new_id(), kind="heartbeat", host=self.host, at=utc_now(),
                     interval_seconds=interval_seconds)

    def stopped(self) -> Event:
        """The agent is being stopped on purpose: its silence is not "server down"."""
        return Event(id=new_id(), kind="stopped", host=self.host, at=utc_now(),
                     reason="the agent was stopped by an admin")


def maintenance(host: str, check: str | None, until: float | None, owner: str = "",
                reason: str = "") -> Event:
    """A maintenance window of ``host`` (``check`` None) or of one check set until
    ``until`` (epoch seconds), or ended (``until`` None)."""
    ends = None if until is None else dt.datetime.fromtimestamp(until, dt.UTC)
    return Event(id=new_id(), kind="maintenance", host=host, check=check, at=utc_now(),
                 until=ends, owner=owner[:200], reason=reason[:2000])


def readings_text(result: Result) -> str:
    """The result's numeric readings on one line, like "used_ratio{mount=/var}=0.96,
    free_bytes{mount=/var}=4.1e+09" (the notices show it as the last reading)."""
    parts = []
    for reading in result.metrics()[:MAX_READINGS]:
        labels = ",".join(f"{k}={v}" for k, v in reading.labels)
        parts.append(f"{reading.name}{{{labels}}}={reading.value:g}" if labels
                     else f"{reading.name}={reading.value:g}")
    return " ".join(", ".join(parts).split())[:MAX_READINGS_CHARS]


def _step(step: Any) -> Step:
    return Step(
        fix=step.fix[:200], argv=[a[:4096] for a in step.argv[:200]],
        exit_code=step.exit_code, duration_seconds=max(step.duration_seconds, 0.0),
        output=step.output[:20000], ended=step.ended[:1000],
        reprobe_status=step.reprobe_status.name if step.reprobe_status is not None else None,
        reprobe_summary=step.reprobe_summary[:2000],
    )
