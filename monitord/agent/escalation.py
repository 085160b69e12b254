"""Turning outcomes, recoveries and heartbeats into events, with texts from templates.

Titles and bodies are rendered from jinja2 templates: the stock ones in
``monitord/templates/events``, overridden by files of the same name in the admin's
directory (``[templates] dir``, /etc/monitord/templates by default). The texts are plain
text; probe output in them is untrusted, so whatever renders them as HTML escapes them
(templates whose name ends in ``.html`` are autoescaped here too).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import jinja2

from monitord.agent.healer import Outcome
from monitord.events import Event, Step, new_id, utc_now
from monitord.model import Result

log = logging.getLogger(__name__)
STOCK_TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "events"


class Renderer:
    """Renders ``KIND.title.j2`` and ``KIND.body.j2``; an admin's file wins over the stock one."""

    def __init__(self, admin_dir: str = "/etc/monitord/templates",
                 stock_dir: Path = STOCK_TEMPLATES) -> None:
        loaders: list[jinja2.BaseLoader] = [
            jinja2.FileSystemLoader(admin_dir),
            jinja2.FileSystemLoader(stock_dir),
        ]
        self._env = _environment(jinja2.ChoiceLoader(loaders))
        self._stock = _environment(jinja2.FileSystemLoader(stock_dir))

    def render(self, kind: str, context: dict[str, Any]) -> tuple[str, str]:
        """Title and body; a broken admin template (a syntax error, an error while it
        renders, a file that cannot be read) falls back to the stock one (logged), so a
        typo never costs an incident."""
        try:
            return self._render(self._env, kind, context)
        except Exception as e:  # whatever the admin's template does wrong
            log.error("template for %s events failed (%s: %s); using the stock one",
                      kind, type(e).__name__, e)
            return self._render(self._stock, kind, context)

    @staticmethod
    def _render(env: jinja2.Environment, kind: str,
                context: dict[str, Any]) -> tuple[str, str]:
        title = env.get_template(f"{kind}.title.j2").render(context)
        body = env.get_template(f"{kind}.body.j2").render(context)
        return " ".join(title.split())[:500], body.strip()[:20000]


def _environment(loader: jinja2.BaseLoader) -> jinja2.Environment:
    return jinja2.Environment(
        loader=loader,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",),
                                            default_for_string=False, default=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


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
        }
        title, body = self.renderer.render(outcome.kind, context)
        return Event(
            id=new_id(), kind=outcome.kind, host=self.host, check=outcome.check,
            at=utc_now(), priority=outcome.priority,  # type: ignore[arg-type]
            status=outcome.result.status.name, title=title, body=body,  # type: ignore[arg-type]
            summary=outcome.result.summary[:2000], reason=outcome.reason[:2000],
            recurring=outcome.recurring, suppressed_by=outcome.suppressed_by, steps=steps,
        )

    def recovery(self, check: str, result: Result) -> Event:
        context = {"host": self.host, "check": check, "summary": result.summary}
        title, body = self.renderer.render("recovery", context)
        return Event(id=new_id(), kind="recovery", host=self.host, check=check, at=utc_now(),
                     status="OK", title=title, body=body, summary=result.summary[:2000])

    def heartbeat(self, interval_seconds: float) -> Event:
        return Event(id=new_id(), kind="heartbeat", host=self.host, at=utc_now(),
                     interval_seconds=interval_seconds)


def _step(step: Any) -> Step:
    return Step(
        fix=step.fix[:200], argv=[a[:4096] for a in step.argv[:200]],
        exit_code=step.exit_code, duration_seconds=max(step.duration_seconds, 0.0),
        output=step.output[:20000], ended=step.ended[:1000],
        reprobe_status=step.reprobe_status.name if step.reprobe_status is not None else None,
        reprobe_summary=step.reprobe_summary[:2000],
    )
