"""The central service as an aiohttp application: ``create_app(config, store)``.

The app owns its background sweeper and notifier (started and cancelled in
``cleanup_ctx``) and, when no store is handed in, its store too (opened from
``store_url``, closed at shutdown). A store handed in belongs to the caller, who closes it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from monitord.central.config import CentralConfig
from monitord.central.console import console_errors, setup_console
from monitord.central.keys import CLOCK, CONFIG, STORE, Clock
from monitord.central.metrics import METRICS, CentralMetrics, timed
from monitord.central.routes import setup_routes
from monitord.central.tasks import notifier_ctx, sweeper_ctx
from monitord.errors import ApiError, Conflict, NotFound, StateError
from monitord.events import utc_now
from monitord.store.protocol import Store

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SERVER_LOG = "aiohttp.server"


def create_app(config: CentralConfig, store: Store | None = None,
               clock: Clock = utc_now) -> web.Application:
    quiet_malformed_requests()
    app = web.Application(client_max_size=config.central.max_body_bytes,
                          # console_errors, inside, answers /console/ paths in HTML
                          middlewares=[json_errors, console_errors])
    app[CONFIG] = config
    app[CLOCK] = clock
    app[METRICS] = CentralMetrics()
    if store is not None:
        app[STORE] = timed(store, app[METRICS])
    else:
        app.cleanup_ctx.append(_own_store)
    app.cleanup_ctx.append(sweeper_ctx)
    app.cleanup_ctx.append(notifier_ctx)
    setup_routes(app)
    setup_console(app)
    return app


class _MalformedRequests(logging.Filter):
    """aiohttp answers a request it cannot parse (a control character in a header, a bad
    request line) with a 400 itself, and logs it with a traceback. Such a request is the
    client's fault: one line at INFO, without the offending bytes (a header may hold a
    token)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            reason = str(error.message).strip().splitlines()[0] if error.message else ""
            record.msg = "central: refused a malformed HTTP request (%s: %s)"
            record.args = (error.code, reason.rstrip(":") or "cannot be parsed")
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def quiet_malformed_requests() -> None:
    """Installs ``_MalformedRequests`` on aiohttp's server log, once per process."""
    server_log = logging.getLogger(SERVER_LOG)
    if not any(isinstance(f, _MalformedRequests) for f in server_log.filters):
        server_log.addFilter(_MalformedRequests())


async def _own_store(app: web.Application) -> AsyncIterator[None]:
    app[STORE] = timed(await app[CONFIG].open_store(), app[METRICS])
    try:
        yield
    finally:
        await app[STORE].close()


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure as ``{"error", "message", "problems"}``; never a traceback or body."""
    try:
        return await handler(request)
    except ApiError as e:
        return _error_response(e)
    except NotFound:
        return _error_response(ApiError(404, "not_found", "no incident with that id"))
    except Conflict as e:
        return _error_response(ApiError(409, "conflict", str(e)))
    except StateError as e:
        log.error("central: %s %s: %s", request.method, request.path, e)
        return _error_response(ApiError(503, "unavailable", "the incident store is not "
                                        "answering; try again later"))
    except web.HTTPRequestEntityTooLarge:
        return _error_response(_too_large(request))
    except web.HTTPException as e:
        if e.status < 400:
            raise
        response = _error_response(ApiError(e.status, _code(e.status), e.reason))
        if "Allow" in e.headers:
            response.headers["Allow"] = e.headers["Allow"]
        return response
    except ConnectionError:
        # The client went away mid-request (an agent killed while sending): nothing was
        # applied, there is nobody to answer, and it is no fault of the service.
        log.info("central: %s %s: the client closed the connection before the request "
                 "was read", request.method, request.path)
        return _error_response(ApiError(400, "bad_request", "the request was cut short"))
    except Exception:
        log.exception("central: %s %s failed", request.method, request.path)
        return _error_response(ApiError(500, "internal", "internal error; see the log"))


def _error_response(error: ApiError) -> web.Response:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return web.json_response(error.body(), status=error.status, headers=headers)


def _too_large(request: web.Request) -> ApiError:
    limit = request.app[CONFIG].central.max_body_bytes
    hint = "; send fewer events per batch" if request.path.endswith("/events") else ""
    return ApiError(413, "too_large", f"request body is larger than {limit} bytes{hint}")


_CODES = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 413: "too_large", 503: "unavailable"}


def _code(status: int) -> str:
    return _CODES.get(status, "internal" if status >= 500 else "invalid")
