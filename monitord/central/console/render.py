"""HTML for the console: jinja2 templates with autoescape on, and the headers every
console answer carries.

Everything shown comes from agents and people (probe output, fix output, command lines,
comments), so it is escaped by the template engine, always: no template marks anything
safe. The Content-Security-Policy forbids scripts of any origin besides, so even text that
got through unescaped could not run, and the page cannot be framed (clickjacking).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import jinja2
from aiohttp import web

TEMPLATES = ("monitord", "templates/console")
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": ("default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                "script-src 'none'; img-src 'self'; form-action 'self'; "
                                "base-uri 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(*TEMPLATES), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = when
    return env


def html(env: jinja2.Environment, template: str, status: int = 200,
         **context: object) -> web.Response:
    text = env.get_template(template).render(**context)
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def secure(response: web.StreamResponse) -> web.StreamResponse:
    """The security headers, on a console answer of any kind (page, redirect, error)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def redirect(location: str) -> web.Response:
    """303 See Other: after a POST the browser GETs the page (no resubmit on reload)."""
    return web.Response(status=303, headers={"Location": location})


def when(moment: dt.datetime | None) -> str:
    if moment is None:
        return "-"
    return f"{moment.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"
