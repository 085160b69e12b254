"""The http probe on the wire: connections per run, what the request says, bodies framed in
every way HTTP allows; against raw TCP servers on 127.0.0.1 that note what they see."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydantic import ValidationError

from monitord.agent.runner import run_check
from monitord.model import Status
from monitord.probes.base import ProbeContext
from tests.conftest import make_check
from tests.probes.servers import self_signed

OK_BODY = b"It works"


@dataclass
class Seen:
    """What a raw server saw: one list of request heads per connection."""

    connections: list[list[bytes]] = field(default_factory=list)

    @property
    def requests(self) -> list[bytes]:
        return [head for heads in self.connections for head in heads]


def answer(body: bytes = OK_BODY, extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body)


@contextlib.asynccontextmanager
async def http_server(reply: bytes = answer(), hang_up: bool = False
                      ) -> AsyncIterator[tuple[int, Seen, asyncio.Server]]:
    """A server that answers every request with ``reply`` (keeping the connection unless
    the client says ``Connection: close``, or ``hang_up``), noting each request's head."""
    seen, handlers = Seen(), set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.add(asyncio.current_task())
        heads: list[bytes] = []
        seen.connections.append(heads)
        try:
            while True:
                heads.append(await reader.readuntil(b"\r\n\r\n"))
                writer.write(reply)
                await writer.drain()
                if hang_up or b"connection: close" in heads[-1].lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], seen, server
    finally:
        server.close()
        for task in list(handlers):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in handlers if t is not None), return_exceptions=True)
        await server.wait_closed()


async def test_each_run_opens_a_new_connection_by_default(ctx: ProbeContext) -> None:
    async with http_server() as (port, seen, _):
        check = make_check("http", url=f"http://127.0.0.1:{port}/")
        results = [await run_check(check, ctx) for _ in range(3)]
    assert [r.status for r in results] == [Status.OK] * 3
    assert len(seen.connections) == 3
    assert all(b"\r\nConnection: close\r\n" in head for head in seen.requests)


async def test_keep_alive_sends_every_run_on_one_connection(ctx: ProbeContext) -> None:
    async with http_server() as (port, seen, _):
        check = make_check("http", url=f"http://127.0.0.1:{port}/", keep_alive=True)
        results = [await run_check(check, ctx) for _ in range(3)]
    assert [r.status for r in results] == [Status.OK] * 3
    assert [len(heads) for heads in seen.connections] == [3]


async def test_a_kept_connection_the_server_dropped_is_replaced(ctx: ProbeContext) -> None:
    async with http_server(hang_up=True) as (port, seen, _):
        check = make_check("http", url=f"http://127.0.0.1:{port}/", keep_alive=True)
        first = await run_check(check, ctx)
        await asyncio.sleep(0.05)   # the server's close reaches the idle connection
        second = await run_check(check, ctx)
    assert (first.status, second.status) == (Status.OK, Status.OK), second.summary
    assert len(seen.connections) == 2


async def test_a_site_that_stops_accepting_connections_is_seen(ctx: ProbeContext) -> None:
    """The reason a new connection per run is the default: a kept connection still gets
    answers from a server that no longer accepts new ones."""
    async with http_server() as (port, _, server):
        fresh = make_check("http", name="fresh", url=f"http://127.0.0.1:{port}/")
        kept = make_check("http", name="kept", url=f"http://127.0.0.1:{port}/",
                          keep_alive=True)
        kept_ctx = ProbeContext(ctx.shared)
        assert (await run_check(fresh, ctx)).status is Status.OK
        assert (await run_check(kept, kept_ctx)).status is Status.OK
        server.close()   # stops listening; the connections it has stay open
        refused = await run_check(fresh, ctx)
        blind = await run_check(kept, kept_ctx)
    assert refused.status is Status.CRITICAL
    assert refused.summary == f"cannot connect to http://127.0.0.1:{port}/: connection refused"
    assert blind.status is Status.OK


async def test_the_request_as_the_server_reads_it(ctx: ProbeContext) -> None:
    async with http_server() as (port, seen, _):
        check = make_check("http", url=f"http://127.0.0.1:{port}/shop/index.php?id=3&x=%20y",
                           host_header="shop.example", headers={"X-Probe": "yes"})
        result = await run_check(check, ctx)
    assert result.status is Status.OK, result.summary
    lines = seen.requests[0].decode().split("\r\n")
    assert lines[0] == "GET /shop/index.php?id=3&x=%20y HTTP/1.1"
    fields = dict(line.split(": ", 1) for line in lines[1:] if line)
    assert fields["Host"] == "shop.example"
    assert fields["X-Probe"] == "yes"
    assert fields["User-Agent"].startswith("monitord/")
    assert "Accept-Encoding" not in fields   # a body rule reads the page as served


async def test_default_host_header_names_a_non_default_port(ctx: ProbeContext) -> None:
    async with http_server() as (port, seen, _):
        await run_check(make_check("http", url=f"http://127.0.0.1:{port}/"), ctx)
    assert f"\r\nHost: 127.0.0.1:{port}\r\n".encode() in seen.requests[0]


async def test_a_compressed_body_is_read_decompressed(ctx: ProbeContext) -> None:
    packed = gzip.compress(b"<h1>Welcome to the shop</h1>")
    async with http_server(answer(packed, b"Content-Encoding: gzip\r\n")) as (port, _, _):
        result = await run_check(make_check("http", url=f"http://127.0.0.1:{port}/",
                                            body_matches="Welcome to the shop"), ctx)
    assert result.status is Status.OK, result.summary


@pytest.mark.parametrize("reply", [
    b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nIt works",   # to the close
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nIt\r\n6\r\n works\r\n0\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n" + answer(),
], ids=["until-close", "chunked", "after-100-continue"])
async def test_bodies_framed_every_way_are_read_whole(ctx: ProbeContext, reply: bytes) -> None:
    async with http_server(reply, hang_up=True) as (port, _, _):
        result = await run_check(make_check("http", url=f"http://127.0.0.1:{port}/",
                                            body_matches="^It works$"), ctx)
    assert result.status is Status.OK, result.summary


async def test_a_tls_body_that_runs_to_the_close_keeps_its_certificate(
    ctx: ProbeContext, tmp_path: Path
) -> None:
    identity = self_signed(tmp_path, "shop.example", days=10)

    async def http10(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nIt works")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(http10, "127.0.0.1", 0, ssl=identity.server_context())
    port = server.sockets[0].getsockname()[1]
    try:
        result = await run_check(make_check("http", url=f"https://127.0.0.1:{port}/",
                                            verify_tls=False, body_matches="^It works$"), ctx)
    finally:
        server.close()
        await server.wait_closed()
    assert result.status is Status.OK, result.summary
    assert result.summary.endswith("certificate expires in 10 days")


async def test_a_body_cut_short_is_a_bad_response(ctx: ProbeContext) -> None:
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part of it"
    async with http_server(cut, hang_up=True) as (port, _, _):
        result = await run_check(make_check("http", url=f"http://127.0.0.1:{port}/"), ctx)
    assert result.status is Status.CRITICAL
    assert result.summary == (f"bad HTTP response from http://127.0.0.1:{port}/: "
                              "the connection closed in the middle of the body")


async def test_a_redirect_to_another_scheme_is_not_followed(ctx: ProbeContext) -> None:
    moved = b"HTTP/1.1 302 Found\r\nLocation: ftp://files.example/\r\nContent-Length: 0\r\n\r\n"
    async with http_server(moved) as (port, _, _):
        result = await run_check(make_check("http", url=f"http://127.0.0.1:{port}/",
                                            follow_redirects=True), ctx)
    assert result.status is Status.CRITICAL
    assert result.summary == (f"redirect to 'ftp://files.example/', not an http or https URL, "
                              f"from http://127.0.0.1:{port}/")


@pytest.mark.parametrize("fields", [
    {"headers": {"X-Probe": "yes\r\nX-Injected: 1"}},
    {"headers": {"Bad Name": "x"}},
    {"host_header": "shop.example\r\nX-Injected: 1"},
])
def test_header_text_that_would_break_the_request_is_a_config_error(
    fields: dict[str, object]
) -> None:
    with pytest.raises(ValidationError):
        make_check("http", url="http://127.0.0.1/", **fields)
