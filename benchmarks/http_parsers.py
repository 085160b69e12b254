"""HTTP client parsers compared: the CPU of one plain HTTP check on each candidate path.

The lean http probe needs an HTTP/1.1 response parser under an asyncio protocol. This
script runs the same GET (a new connection per request, ``Connection: close``, the Host
header of a name-based site) on a private nginx with each candidate, on asyncio's own
loop and on uvloop, and prints the CPU per 1,000 requests of this process:

* ``httptools``: llhttp (the parser of Node.js, in C) under a bare ``asyncio.Protocol``;
* ``h11``: the pure-Python state machine under the same protocol;
* ``aiohttp``: its client session with a connector that does not keep connections, as
  the daemon used before (for reference).

Run: ``.venv/bin/python benchmarks/http_parsers.py --requests 5000``.
A measurement, not a test: it prints a table and asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from daemon_cost import ADDRESS, free_port, nginx, site_name

Fetch = Callable[[int, str], Awaitable[int]]


class HttptoolsExchange(asyncio.Protocol):
    def __init__(self, request: bytes, done: asyncio.Future[int]) -> None:
        import httptools

        self.request = request
        self.done = done
        self.parser = httptools.HttpResponseParser(self)
        self.body = bytearray()
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        if not self.done.done():
            self.done.set_result(self.parser.get_status_code())
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError("closed"))


class H11Exchange(asyncio.Protocol):
    def __init__(self, request: bytes, done: asyncio.Future[int], host: str) -> None:
        import h11

        self.h11 = h11
        self.host = host
        self.done = done
        self.conn = h11.Connection(h11.CLIENT)
        self.status = 0
        self.body = bytearray()
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        h11 = self.h11
        self.transport = transport
        request = h11.Request(method="GET", target="/", headers=[
            ("Host", self.host), ("User-Agent", "monitord"), ("Connection", "close")])
        transport.write(self.conn.send(request) + self.conn.send(h11.EndOfMessage()))

    def data_received(self, data: bytes) -> None:
        h11 = self.h11
        self.conn.receive_data(data)
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                return
            if isinstance(event, h11.Response):
                self.status = event.status_code
            elif isinstance(event, h11.Data):
                self.body += event.data
            elif isinstance(event, h11.EndOfMessage):
                if not self.done.done():
                    self.done.set_result(self.status)
                self.transport.close()
                return

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError("closed"))


def request_bytes(host: str) -> bytes:
    return (f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: monitord\r\n"
            "Connection: close\r\n\r\n").encode()


async def fetch_httptools(port: int, host: str) -> int:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()
    await loop.create_connection(lambda: HttptoolsExchange(request_bytes(host), done),
                                 ADDRESS, port)
    return await done


async def fetch_h11(port: int, host: str) -> int:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()
    await loop.create_connection(lambda: H11Exchange(b"", done, host), ADDRESS, port)
    return await done


def aiohttp_fetcher() -> tuple[Fetch, Callable[[], Awaitable[None]]]:
    import aiohttp

    session: list[Any] = []

    async def fetch(port: int, host: str) -> int:
        if not session:
            session.append(aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True, limit=0)))
        async with session[0].get(f"http://{ADDRESS}:{port}/", headers={"Host": host}) as r:
            await r.read()
            return r.status

    async def close() -> None:
        if session:
            await session[0].close()

    return fetch, close


async def run(fetch: Fetch, port: int, requests: int, sites: int, concurrency: int) -> float:
    """CPU seconds of this process for ``requests`` requests, ``concurrency`` at a time."""
    queue = list(range(requests))

    async def worker() -> None:
        while queue:
            index = queue.pop()
            status = await fetch(port, f"{site_name(index % sites)}.test")
            if status != 200:
                raise RuntimeError(f"status {status}")

    for _ in range(2):   # warm up, then measure
        queue = list(range(min(requests, 500)))
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    queue = list(range(requests))
    before = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    after = resource.getrusage(resource.RUSAGE_SELF)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(name: str, loop_name: str, port: int, args: argparse.Namespace) -> float:
    async def main() -> float:
        close: Callable[[], Awaitable[None]] | None = None
        if name == "aiohttp":
            fetch, close = aiohttp_fetcher()
        else:
            fetch = fetch_httptools if name == "httptools" else fetch_h11
        try:
            return await run(fetch, port, args.requests, args.sites, args.concurrency)
        finally:
            if close is not None:
                await close()

    if loop_name == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main()) / args.requests * 1000
    return asyncio.run(main()) / args.requests * 1000


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    port = free_port()
    started = time.monotonic()
    rows = []
    with nginx(args.sites, [port]):
        for loop_name in ("asyncio", "uvloop"):
            for name in ("httptools", "h11", "aiohttp"):
                runs = [measure(name, loop_name, port, args) for _ in range(args.repeat)]
                rows.append((name, loop_name, statistics.median(runs)))
    print(f"{args.requests} GETs per run, a new connection each, {args.concurrency} at a "
          f"time, median of {args.repeat} runs; took {time.monotonic() - started:.0f} s\n")
    print("| parser | loop | CPU-s / 1,000 requests |\n|---|---|---:|")
    for name, loop_name, cpu in rows:
        print(f"| {name} | {loop_name} | {cpu:.3f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
