"""The central service as an aiohttp application: ``create_app(config, store)``.

The app owns its background sweeper and notifier (started and cancelled in
``cleanup_ctx``) and, when no store is handed in, its store too (opened from
``store_url``, closed at shutdown). A store handed in belongs to the caller, who closes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from monitord.central.config import CentralConfig
from monitord.central.console import console_errors, setup_console
from monitord.central.keys import CLOCK, CONFIG, STORE, SWEEPER, Clock
from monitord.central.notifier import notifier_ctx, stop
from monitord.central.payloads import ApiError, timestamp
from monitord.central.routes import setup_routes
from monitord.central.store import Conflict, NotFound, Store
from monitord.errors import StateError
from monitord.events import utc_now

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SWEEP_TIMEOUT_SECONDS = 60.0


def create_app(config: CentralConfig, store: Store | None = None,
               clock: Clock = utc_now) -> web.Application:
    app = web.Application(client_max_size=config.central.max_body_bytes,
                          # console_errors, inside, answers /console/ paths in HTML
                          middlewares=[json_errors, console_errors])
    app[CONFIG] = config
    app[CLOCK] = clock
    if store is not None:
        app[STORE] = store
    else:
        app.cleanup_ctx.append(_own_store)
    app.cleanup_ctx.append(_sweeper)
    app.cleanup_ctx.append(notifier_ctx)
    setup_routes(app)
    setup_console(app)
    return app


async def _own_store(app: web.Application) -> AsyncIterator[None]:
    from monitord.central.backends import open_store

    app[STORE] = await open_store(app[CONFIG])
    try:
        yield
    finally:
        await app[STORE].close()


async def _sweeper(app: web.Application) -> AsyncIterator[None]:
    # Agents that were cut off while the service was down need time to reconnect (their
    # backoff tops out at a minute) before their silence means anything.
    task = asyncio.create_task(sweep_forever(app[STORE], app[CLOCK],
                                             app[CONFIG].central.sweep_every,
                                             first_after=app[CONFIG].policy.min_silence))
    app[SWEEPER] = task
    try:
        yield
    finally:
        await stop(task)


async def sweep_forever(store: Store, clock: Clock, every_seconds: float,
                        first_after: float = 0.0) -> None:
    """Every ``every_seconds``: open "server down" for silent hosts, log each one."""
    await asyncio.sleep(first_after)
    while True:
        await sweep_once(store, clock)
        await asyncio.sleep(every_seconds)


async def sweep_once(store: Store, clock: Clock) -> None:
    try:
        async with asyncio.timeout(SWEEP_TIMEOUT_SECONDS):
            opened = await store.sweep(clock())
    except (StateError, TimeoutError) as e:   # retried next round; the sweeper goes on
        log.error("central: the heartbeat sweep failed; trying again next round: %s",
                  e or "no answer in time")
        return
    except Exception:
        log.exception("central: the heartbeat sweep failed; trying again next round")
        return
    for incident in opened:
        log.warning("central: server down: %s: %s (incident %d, %s, due %s)",
                    incident.host, incident.summary or incident.title, incident.id,
                    incident.priority, timestamp(incident.due_at))


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
