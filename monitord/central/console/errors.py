"""Console failures as small HTML pages, never a traceback.

The API's ``json_errors`` middleware answers its clients in JSON; a person in a browser
gets the same facts as a page: 403 for a form that was not ours, 404, 409 for an action
the incident cannot take, 503 while the store does not answer, 500 for a bug (logged with
its traceback here, never shown). This middleware sits inside ``json_errors`` and handles
console paths only, so the API's answers stay exactly as they were.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus

from aiohttp import web

from monitord.central.console.render import html, secure
from monitord.central.console.state import CONSOLE
from monitord.errors import Conflict, ConsoleError, NotFound, StateError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PREFIX = "/console"
FORGED = ("This form has expired or did not come from monitord; reload the page and try "
          "again.")


def is_console(path: str) -> bool:
    return path == "/" or path == PREFIX or path.startswith(PREFIX + "/")


@web.middleware
async def console_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_console(request.path):
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as e:
        if e.status < 400:
            secure(e)
            raise
        response = error_page(request, e.status, e.reason)
        if "Allow" in e.headers:
            response.headers["Allow"] = e.headers["Allow"]
    except ConsoleError as e:
        response = error_page(request, e.status, e.message)
    except NotFound:
        response = error_page(request, 404, "There is no incident with that number.")
    except Conflict as e:
        response = error_page(request, 409, str(e))
    except StateError as e:
        log.error("central: %s %s: %s", request.method, request.path, e)
        response = error_page(request, 503, "The incident store is not answering; try "
                                             "again in a minute.")
    except ConnectionError:
        log.info("central: %s %s: the client closed the connection before the request "
                 "was read", request.method, request.path)
        response = error_page(request, 400, "The request was cut short.")
    except Exception:
        log.exception("central: %s %s failed", request.method, request.path)
        response = error_page(request, 500, "Something went wrong in monitord; the "
                                            "service's log has the details.")
    return secure(response)


def error_page(request: web.Request, status: int, message: str) -> web.Response:
    try:
        title = f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        title = str(status)
    return html(request.app[CONSOLE].env, "error.html.j2", status, title=title,
                message=message, person=None, refresh=0, overdue_count=None)
