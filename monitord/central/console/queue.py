"""The queue: open work, most urgent first, filtered as its URL says (filters.py), a page at
a time, each row acknowledged or resolved in one click, and a selection in one form.

    GET  /console/?host=&check=&priority=&state=&text=&page=    the queue
    GET  /console/?...&select=none|all                          the same, rows to tick
    POST /console/bulk     do=acknowledge|resolve, id=N (repeated), note, next

A row's buttons are the incident page's own small forms (``/console/incidents/N/ACTION``)
with a ``next`` field that brings the person back to the queue as it was. Ticking rows is
a mode (``select``): the boxes tick the bulk form's ``id`` fields (the HTML ``form``
attribute, no script), and the page stops reloading itself so that a half-made selection
is not lost. A bulk action applies the store's acknowledge or resolve to each incident in
turn, each with its own timeline entry by the person; one that cannot take it (resolved
meanwhile, or gone) is counted and skipped, not an error of the whole form.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aiohttp import web

from monitord.central.console.common import (
    OPEN,
    PRIORITIES,
    QUEUE_LIMIT,
    Paging,
    field,
    incident_view,
    open_incidents,
    page,
    paging,
    safe_next,
)
from monitord.central.console.filters import (
    STATES,
    FilterError,
    QueueFilter,
    done_text,
    done_url,
    echo,
    parse_filter,
)
from monitord.central.console.pages import DONE, MAX_INCIDENT_ID, MAX_NOTE_CHARS, person_page
from monitord.central.console.render import redirect
from monitord.central.console.sessions import Session
from monitord.central.keys import CLOCK, STORE
from monitord.errors import Conflict, ConsoleError, NotFound
from monitord.store.protocol import Incident, Store

log = logging.getLogger(__name__)

BULK = "/console/bulk"
PAGE_SIZE = 50               # rows per page: a phone scrolls through this many at most
BULK_LIMIT = 500             # incidents one bulk form may name
LOGGED_IDS = 20              # of which the log line names this many


@person_page
async def queue(request: web.Request, session: Session) -> web.StreamResponse:
    try:
        wanted = parse_filter(request.query)
    except FilterError as e:
        return await _refused(request, session, str(e))
    store, now = request.app[STORE], request.app[CLOCK]()
    everything = await open_incidents(store)
    listed = everything if _is_everything(wanted) else await _listed(store, wanted)
    matched = [i for p in wanted.shown_priorities() for i in listed[p] if wanted.matches(i)]
    paging, shown = _paginate(wanted, matched)
    selecting = _selecting(request.query.get("select", ""))
    done = done_text(request.query)
    back = wanted.url(wanted.page)
    return await page(
        request, session, "queue.html.j2", refresh=not selecting, opened=everything,
        refresh_url=back if done else None, title="Queue", error="",
        form=_form(wanted), rows=[incident_view(i, now) for i in shown], limit=QUEUE_LIMIT,
        cut=[p for p in wanted.shown_priorities() if len(listed[p]) >= QUEUE_LIMIT],
        paging=paging, done=done, selecting=selecting, back=back, filtered=wanted.active,
        links={"select": wanted.url(wanted.page, select="none"),
               "select_all": wanted.url(wanted.page, select="all"),
               "unselect": back},
        choices=_choices(everything))


@person_page
async def bulk(request: web.Request, session: Session) -> web.StreamResponse:
    """Acknowledge or resolve every incident ticked; all of the form is checked first."""
    form = await request.post()
    action = field(form, "do")
    if action not in DONE:
        raise ConsoleError(400, 'Choose "Acknowledge selected" or "Resolve selected".')
    ids = _ids(form.getall("id", []))
    note = field(form, "note").strip()
    if len(note) > MAX_NOTE_CHARS:
        raise ConsoleError(400, f"The note is too long: at most {MAX_NOTE_CHARS} characters.")
    back = safe_next(field(form, "next"))
    store, now = request.app[STORE], request.app[CLOCK]()
    skipped = 0
    for incident_id in ids:
        try:
            if action == "acknowledge":
                await store.acknowledge(incident_id, session.name, note, now)
            else:
                await store.resolve(incident_id, session.name, note, now)
        except (Conflict, NotFound):
            skipped += 1
    log.info("central: console: %s: %s %d incidents (%d skipped): %s", session.name, action,
             len(ids) - skipped, skipped, _listed_ids(ids))
    return redirect(done_url(back, DONE[action], len(ids) - skipped, skipped))


async def _refused(request: web.Request, session: Session, error: str) -> web.Response:
    """The queue's form as it was typed, the line saying what is wrong, and no rows."""
    return await page(request, session, "queue.html.j2", status=400, title="Queue",
                       error=error, form=_form(QueueFilter(), echo(request.query)), rows=[],
                       cut=[], limit=QUEUE_LIMIT, paging=None, done="", selecting="",
                       back="", links={}, choices={"hosts": [], "checks": []},
                       filtered=True)


def _ids(values: Sequence[object]) -> list[int]:
    """The incident numbers ticked, each once, in the page's order."""
    ids: dict[int, None] = {}
    for value in values:
        text = value if isinstance(value, str) else ""
        if not (text.isascii() and text.isdigit() and len(text) <= 19
                and int(text) <= MAX_INCIDENT_ID):
            raise ConsoleError(400, f"id: expected incident numbers, got {text[:40]!r}.")
        ids[int(text)] = None
    if not ids:
        raise ConsoleError(400, "Nothing was selected: tick the incidents first.")
    if len(ids) > BULK_LIMIT:
        raise ConsoleError(400, f"Too many incidents at once: at most {BULK_LIMIT}.")
    return list(ids)


def _listed_ids(ids: list[int]) -> str:
    """The incidents of a bulk action for the log: the first LOGGED_IDS of them."""
    more = f" and {len(ids) - LOGGED_IDS} more" if len(ids) > LOGGED_IDS else ""
    return ", ".join(str(i) for i in ids[:LOGGED_IDS]) + more


def _is_everything(wanted: QueueFilter) -> bool:
    """Whether the store's read for the header (every open incident) is this queue's."""
    return wanted.host is None and not wanted.priorities and wanted.statuses() == OPEN


async def _listed(store: Store, wanted: QueueFilter) -> dict[str, list[Incident]]:
    """One read per priority, as ``open_incidents``: a flood of one cannot hide another."""
    return {p: await store.incidents(status=wanted.statuses(), priority=(p,),
                                     host=wanted.host, limit=QUEUE_LIMIT)
            for p in wanted.shown_priorities()}


def _paginate(wanted: QueueFilter, matched: list[Incident]) -> tuple[Paging, list[Incident]]:
    start = (wanted.page - 1) * PAGE_SIZE
    shown = matched[start:start + PAGE_SIZE]
    return paging(wanted.page, len(shown), len(matched), PAGE_SIZE, wanted.url), shown


def _selecting(value: str) -> str:
    """"" (not selecting), "none" (boxes to tick) or "all" (every box on the page ticked)."""
    return "all" if value == "all" else "none" if value else ""


def _form(wanted: QueueFilter, typed: dict[str, str] | None = None) -> dict[str, object]:
    """The filter form's fields: as the filters are, or as typed when they were refused."""
    return {"host": wanted.host or "", "check": wanted.check or "", "text": wanted.text,
            **(typed or {}), "priorities": [str(p) for p in PRIORITIES],
            "states": STATES, "chosen": {str(p) for p in wanted.priorities} | set(
                wanted.states)}


def _choices(opened: dict[str, list[Incident]]) -> dict[str, list[str]]:
    """The hosts and checks with open incidents: the form's suggestions."""
    incidents = [i for found in opened.values() for i in found]
    return {"hosts": sorted({i.host for i in incidents}),
            "checks": sorted({i.check for i in incidents})}
