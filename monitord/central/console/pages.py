"""The console's pages and forms: login, an incident and its forms, fixes; and the session
check every signed-in page makes (``person_page``). What the pages share beside it (the
frame, the incident rows' view, form fields) is in ``common``.

Every page but the login needs a session (see sessions.py); without one a GET goes to the
login page and comes back after it. Every POST needs its form's anti-forgery token first,
and is refused with 403 before anything is read from or written to the store without it.
A successful POST answers 303 to the page to show next, so reloading it posts nothing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import secrets
import shlex
from collections.abc import Awaitable, Callable

from aiohttp import web
from yarl import URL

from monitord.central.console import sessions
from monitord.central.console.common import (
    HOME,
    field,
    incident_view,
    page,
    safe_next,
)
from monitord.central.console.errors import FORGED
from monitord.central.console.filters import done_url
from monitord.central.console.fixstats import fix_report
from monitord.central.console.render import html, redirect
from monitord.central.console.sessions import Session
from monitord.central.console.state import (
    CONSOLE,
    FAILURE_WINDOW_SECONDS,
    FAILURES_ALLOWED,
    HASH_WAIT_SECONDS,
    LOCKOUT_SECONDS,
    signing_key,
)
from monitord.central.keys import CLOCK, CONFIG, STORE
from monitord.central.passwords import verify_password
from monitord.durations import format_duration
from monitord.errors import Conflict, ConsoleError
from monitord.events import is_name
from monitord.store.protocol import TimelineEntry

log = logging.getLogger(__name__)

LOGIN = "/console/login"
LOGIN_COOKIE_SECONDS = 3600
MAX_INCIDENT_ID = 2**63 - 1
MAX_NOTE_CHARS = 2000          # as the API's ActionBody and CommentBody
MAX_COMMENT_CHARS = 20000
ACTIONS = {"acknowledge": "note", "resolve": "note", "comment": "text"}
DONE = {"acknowledge": "acknowledged", "resolve": "resolved"}

PersonHandler = Callable[[web.Request, Session], Awaitable[web.StreamResponse]]


# --- sessions ---------------------------------------------------------------------------

def person_page(handler: PersonHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Runs ``handler`` for a signed-in person; a POST must carry its form's token."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        session = await signed_in(request)
        if session is None:
            back = request.path_qs if request.method == "GET" else HOME
            return redirect(str(URL(LOGIN).with_query(next=back)))
        if request.method == "POST":
            key = await signing_key(request.app)
            token = field(await request.post(), sessions.CSRF_FIELD)
            if not sessions.same(token, sessions.csrf_token(key, session)):
                log.warning("central: console: %s %s by %s refused: no valid form token",
                            request.method, request.path, session.name)
                raise ConsoleError(403, FORGED)
        return await handler(request, session)

    return wrapped


async def signed_in(request: web.Request) -> Session | None:
    cookie = request.cookies.get(sessions.SESSION_COOKIE)
    shape = sessions.claimed(cookie)
    if cookie is None or shape is None:
        return None
    store = request.app[STORE]
    stored = await store.password_hash(shape[0])
    generation = await store.session_generation(shape[0]) if stored else 0
    return sessions.verify_session(await signing_key(request.app), cookie,
                                   request.app[CLOCK]().timestamp(), stored, generation)


async def login_form(request: web.Request) -> web.StreamResponse:
    target = safe_next(request.query.get("next"))
    if await signed_in(request) is not None:
        return redirect(target)
    return await _login_page(request, target)


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    nonce = request.cookies.get(sessions.LOGIN_COOKIE)
    key = await signing_key(request.app)
    if not sessions.valid_nonce(nonce) or not sessions.same(
            field(form, sessions.CSRF_FIELD), sessions.login_token(key, nonce or "")):
        raise ConsoleError(403, FORGED)
    name, password = field(form, "name").strip(), field(form, "password")
    target = safe_next(field(form, "next"))
    console = request.app[CONSOLE]
    wait = console.failures.locked(name, request.app[CLOCK]().timestamp())
    if wait > 0:
        return await _login_page(request, target, status=429, name=name, retry=wait,
                                 error="Too many failed sign-ins for this name; "
                                       "wait a minute.")
    stored = (await request.app[STORE].password_hash(name)
              if is_name(name) else None)
    try:
        async with asyncio.timeout(HASH_WAIT_SECONDS):
            await console.hashing.acquire()
    except TimeoutError:
        log.warning("central: console: sign-in as %r from %s refused: too many at once",
                    name[:100], request.remote)
        return await _login_page(request, target, status=503, name=name,
                                 retry=HASH_WAIT_SECONDS, error="Too many sign-ins at once; "
                                                                "try again in a moment.")
    try:
        good = await asyncio.to_thread(verify_password, password, stored)
    finally:
        console.hashing.release()
    if not good or stored is None:
        log.warning("central: console: failed login as %r from %s", name[:100],
                    request.remote)
        if console.failures.failed(name, request.app[CLOCK]().timestamp()):
            log.warning("central: console: %d failed sign-ins as %r within %s; refusing "
                        "that name for %s", FAILURES_ALLOWED, name[:100],
                        format_duration(FAILURE_WINDOW_SECONDS),
                        format_duration(LOCKOUT_SECONDS))
        return await _login_page(request, target, status=401, name=name,
                                 error="Wrong name or password.")
    console.failures.succeeded(name)
    lifetime = request.app[CONFIG].central.console_session
    expires = int(request.app[CLOCK]().timestamp() + lifetime)
    generation = await request.app[STORE].session_generation(name)
    session = sessions.make_session(key, name, expires, stored, generation)
    log.info("central: console: %s signed in from %s", name, request.remote)
    response = redirect(target)
    response.set_cookie(sessions.SESSION_COOKIE, session.cookie, max_age=int(lifetime),
                        path="/", secure=True, httponly=True, samesite="Strict")
    response.del_cookie(sessions.LOGIN_COOKIE, path=LOGIN, secure=True, httponly=True,
                        samesite="Strict")
    return response


@person_page
async def logout(request: web.Request, session: Session) -> web.StreamResponse:
    """Ends the person's sessions on the server (every browser's), then the cookie."""
    await request.app[STORE].end_sessions(session.name)
    log.info("central: console: %s signed out", session.name)
    response = redirect(LOGIN)
    response.del_cookie(sessions.SESSION_COOKIE, path="/", secure=True, httponly=True,
                        samesite="Strict")
    return response


async def _login_page(request: web.Request, target: str, *, status: int = 200,
                      name: str = "", error: str = "", retry: float = 0) -> web.Response:
    nonce = request.cookies.get(sessions.LOGIN_COOKIE)
    if not sessions.valid_nonce(nonce) or nonce is None:
        nonce = secrets.token_urlsafe(24)
    token = sessions.login_token(await signing_key(request.app), nonce)
    response = html(request.app[CONSOLE].env, "login.html.j2", status, title="Sign in",
                    person=None, refresh=0, overdue_count=None, csrf=token, next=target,
                    name=name, error=error)
    response.set_cookie(sessions.LOGIN_COOKIE, nonce, max_age=LOGIN_COOKIE_SECONDS,
                        path=LOGIN, secure=True, httponly=True, samesite="Strict")
    if retry:
        response.headers["Retry-After"] = str(math.ceil(retry))
    return response


# --- pages ------------------------------------------------------------------------------

async def root(request: web.Request) -> web.StreamResponse:
    return redirect(HOME)


@person_page
async def incident_page(request: web.Request, session: Session) -> web.StreamResponse:
    return await _incident_page(request, session)


@person_page
async def act(request: web.Request, session: Session) -> web.StreamResponse:
    incident_id = _incident_id(request)
    action = request.match_info["action"]
    kind = ACTIONS[action]
    text = field(await request.post(), kind).strip()
    limit = MAX_COMMENT_CHARS if kind == "text" else MAX_NOTE_CHARS
    problem = ("The comment is empty." if action == "comment" and not text else
               f"The {kind} is too long: at most {limit} characters." if len(text) > limit
               else "")
    if problem:
        return await _incident_page(request, session, status=400, error=problem)
    store, now = request.app[STORE], request.app[CLOCK]()
    try:
        if action == "acknowledge":
            await store.acknowledge(incident_id, session.name, text, now)
        elif action == "resolve":
            await store.resolve(incident_id, session.name, text, now)
        else:
            await store.comment(incident_id, session.name, text, now)
    except Conflict as e:
        return await _incident_page(request, session, status=409, error=f"{e}.")
    log.info("central: console: %s: %s incident %d", session.name, action, incident_id)
    back = field(await request.post(), "next")
    if back and action in DONE:          # a row's button: back to the queue or host page
        return redirect(done_url(safe_next(back), DONE[action], 1))
    return redirect(f"/console/incidents/{incident_id}")


@person_page
async def fixes(request: web.Request, session: Session) -> web.StreamResponse:
    rows = await fix_report(request.app[STORE])
    return await page(request, session, "fixes.html.j2", refresh=True, title="Fixes",
                       rows=rows)


async def _incident_page(request: web.Request, session: Session, *, status: int = 200,
                         error: str = "") -> web.Response:
    incident = await request.app[STORE].incident(_incident_id(request))
    now = request.app[CLOCK]()
    return await page(request, session, "incident.html.j2", status=status,
                       title=f"#{incident.id} {incident.host}/{incident.check}",
                       incident=incident_view(incident, now),
                       timeline=[_entry_view(e) for e in incident.timeline], error=error)


def _incident_id(request: web.Request) -> int:
    digits = request.match_info["id"]              # the route admits digits only
    if len(digits) > len(str(MAX_INCIDENT_ID)) or int(digits) > MAX_INCIDENT_ID:
        raise ConsoleError(404, "There is no incident with that number.")
    return int(digits)


# --- what the templates show ------------------------------------------------------------

def _entry_view(entry: TimelineEntry) -> dict[str, object]:
    return {"at": entry.at, "kind": entry.kind, "who": entry.who, "text": entry.text,
            "steps": [_step_view(n, s) for n, s in enumerate(entry.steps, start=1)]}


def _step_view(number: int, step: dict[str, object]) -> dict[str, object]:
    argv = step.get("argv")
    command = shlex.join(str(a) for a in argv) if isinstance(argv, list) else ""
    duration = step.get("duration_seconds")
    status = step.get("reprobe_status")
    return {"number": number, "fix": str(step.get("fix", "")), "command": command,
            "exit_code": step.get("exit_code"), "ended": str(step.get("ended", "")),
            "took": format_duration(duration) if isinstance(duration, int | float) else "-",
            "reprobe": f"{status}: {step.get('reprobe_summary', '')}" if status else "",
            "worked": status == "OK", "output": str(step.get("output", "")).rstrip()}
