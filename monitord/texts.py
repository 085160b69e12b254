"""Texts for people: the jinja2 renderer of titles and bodies, due and age in words, and
untrusted text made safe for a terminal or one line.

The agent renders event texts with it, the central service its notices, the CLI its
tables. jinja2 is imported on the first render, so a process that never renders a text
never loads it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitord.durations import format_duration
from monitord.trust import unsafe_reason

if TYPE_CHECKING:
    import jinja2

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parent / "templates"
MAX_TITLE_CHARS = 500
MAX_BODY_CHARS = 20000


class Renderer:
    """Renders ``KIND.title.j2`` and ``KIND.body.j2``; an admin's file wins over the stock one.

    The texts are plain text; probe output in them is untrusted, so whatever shows them as
    HTML escapes them (templates whose name ends in ``.html`` are autoescaped here too).
    Templates run in jinja2's sandbox (no attribute of Python's insides is reachable from
    one), and an admin's template file is used only if ``trust`` finds that nobody but
    root could have written it: the daemon renders it as root.
    """

    def __init__(self, admin_dir: str, stock_dir: Path, what: str = "events") -> None:
        self.admin_dir = admin_dir
        self.stock_dir = stock_dir
        self.what = what                  # what the texts are of, for the log
        self._env: jinja2.Environment | None = None
        self._stock: jinja2.Environment | None = None

    def render(self, kind: str, context: dict[str, Any]) -> tuple[str, str]:
        """Title and body; a broken admin template (a syntax error, an error while it
        renders, a file that cannot be read) falls back to the stock one (logged), so a
        typo never costs an incident."""
        env, stock = self._environments()
        try:
            return _render(env, kind, context)
        except Exception as e:  # whatever the admin's template does wrong
            log.error("template for %s %s failed (%s: %s); using the stock one",
                      kind, self.what, type(e).__name__, e)
            return _render(stock, kind, context)

    def title(self, kind: str, context: dict[str, Any]) -> str:
        """The title alone, with the same fallback to the stock template as ``render``."""
        env, stock = self._environments()
        try:
            return _title(env, kind, context)
        except Exception as e:  # whatever the admin's template does wrong
            log.error("title template for %s %s failed (%s: %s); using the stock one",
                      kind, self.what, type(e).__name__, e)
            return _title(stock, kind, context)

    def _environments(self) -> tuple[jinja2.Environment, jinja2.Environment]:
        if self._env is None or self._stock is None:
            import jinja2

            admin = _vetted_loader(self.admin_dir)
            stock = jinja2.FileSystemLoader(self.stock_dir)
            self._env = _environment(jinja2.ChoiceLoader([admin, stock]))
            self._stock = _environment(stock)
        return self._env, self._stock


def _render(env: jinja2.Environment, kind: str, context: dict[str, Any]) -> tuple[str, str]:
    body = env.get_template(f"{kind}.body.j2").render(context)
    return _title(env, kind, context), body.strip()[:MAX_BODY_CHARS]


def _title(env: jinja2.Environment, kind: str, context: dict[str, Any]) -> str:
    title = env.get_template(f"{kind}.title.j2").render(context)
    return " ".join(title.split())[:MAX_TITLE_CHARS]


def _vetted_loader(directory: str) -> jinja2.BaseLoader:
    """A loader of ``directory`` that refuses a file anybody but root could have changed."""
    import jinja2

    class Vetted(jinja2.FileSystemLoader):
        def get_source(self, environment: jinja2.Environment,
                       template: str) -> tuple[str, str, Callable[[], bool]]:
            source, path, uptodate = super().get_source(environment, template)
            reason = unsafe_reason(path)
            if reason:
                raise UntrustedTemplate(f"refused {path}: {reason}")
            return source, path, uptodate

    return Vetted(directory)


class UntrustedTemplate(Exception):
    """An admin's template file that others could have written: not rendered as root."""


def _environment(loader: jinja2.BaseLoader) -> jinja2.Environment:
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(
        loader=loader,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",),
                                            default_for_string=False, default=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def due_text(due_at: dt.datetime, now: dt.datetime, resolved: bool = False) -> str:
    """"due in 1h12m", "overdue 25m", or "resolved" for a closed incident."""
    if resolved:
        return "resolved"
    left = (due_at - now).total_seconds()
    if left >= 0:
        return f"due in {format_duration(left)}"
    return f"overdue {format_duration(-left)}"


def age_text(since: dt.datetime, now: dt.datetime) -> str:
    """How long ago ``since`` was: "3h12m"."""
    return format_duration(max((now - since).total_seconds(), 0))


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Untrusted text (probe output, customers' command lines) made safe for a terminal:
    control characters, escape sequences among them, become "?"; newlines and tabs stay."""
    return _CONTROL.sub("?", text)


def one_line(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with "…" when it was longer."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def plural(count: int, noun: str) -> str:
    """"1 check", "2 checks"."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
