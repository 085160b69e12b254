"""The on-call web console: server-rendered pages under /console/, no JavaScript.

    /console/login                      sign in (name and password, see passwords.py)
    /console/                           the queue: open incidents, P1 first, then by due time;
                                        filters in the URL, a page at a time, each row's
                                        acknowledge and resolve buttons (queue.py, filters.py)
    /console/bulk                       POST: acknowledge or resolve the rows ticked
    /console/incidents/ID               one incident, its timeline, and its forms
    /console/hosts                      every host: last heartbeat, down or up, open incidents
    /console/hosts/HOST                 one host: its open incidents, heals, maintenance
    /console/fixes                      per check and fix: how often it healed, and failed
    /console/schedules, people, policies  on call: who now and next, contacts, escalation
                                        (oncall.py)
    /console/maintenance                maintenance windows; put a host in maintenance, or end it

It is a second face of the same store as the JSON API (whose routes openapi.json
documents); the console's are listed here and answer HTML, errors included.
Security: scrypt passwords, signed session cookies (HttpOnly, Secure, SameSite=Strict),
an anti-forgery token in every form, autoescaped templates and a CSP without scripts.
"""

from __future__ import annotations

from aiohttp import web

from monitord.central.console import common, hosts, maintenance, oncall, pages, queue
from monitord.central.console.errors import console_errors, is_console
from monitord.central.console.state import CONSOLE, Console

INCIDENT = r"/console/incidents/{id:\d+}"

__all__ = ["console_errors", "is_console", "setup_console"]


def setup_console(app: web.Application) -> None:
    app[CONSOLE] = Console()
    app.add_routes([
        web.get("/", pages.root),
        web.get("/console", pages.root),
        web.get(pages.LOGIN, pages.login_form),
        web.post(pages.LOGIN, pages.login),
        web.post("/console/logout", pages.logout),
        web.get(common.HOME, queue.queue),
        web.post(queue.BULK, queue.bulk),
        web.get(INCIDENT, pages.incident_page),
        web.post(INCIDENT + "/{action:acknowledge|resolve|comment}", pages.act),
        web.get(common.HOSTS, hosts.hosts),
        web.get(common.HOSTS + "/{host}", hosts.host_page),
        web.get("/console/fixes", pages.fixes),
        web.get(oncall.SCHEDULES, oncall.schedules),
        web.post(oncall.SCHEDULES, oncall.change_schedules),
        web.get(oncall.PEOPLE, oncall.people),
        web.post(oncall.PEOPLE, oncall.change_people),
        web.get(oncall.POLICIES, oncall.policies),
        web.post(oncall.POLICIES, oncall.change_policies),
        web.get(maintenance.PAGE, maintenance.maintenance_page),
        web.post(maintenance.PAGE, maintenance.set_window),
        web.post(maintenance.PAGE + "/end", maintenance.end_window),
    ])
