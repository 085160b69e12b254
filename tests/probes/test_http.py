"""The http probe against real aiohttp servers on 127.0.0.1, run through the real runner."""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import ValidationError

from monitord.agent.runner import run_check
from monitord.model import Result, Status, Value
from monitord.probes.base import ProbeContext
from tests.conftest import make_check
from tests.probes.servers import (
    Authority,
    Identity,
    closed_port,
    self_signed,
    serve_app,
    serve_tcp,
    silent,
    until_closed,
)

SITES = {"shop.example": "Welcome to the shop", "blog.example": "Latest blog posts"}
STOPPING = web.AppKey("stopping", asyncio.Event)
BIG_BODY_BYTES = 600_000  # well past one socket read, below max_body_bytes


# --- the site under test ------------------------------------------------------------


async def index(request: web.Request) -> web.Response:
    """Name-based virtual hosts: the Host header picks the site, like nginx server_name."""
    name = request.host.rsplit(":", 1)[0]
    if name in SITES:
        return web.Response(text=SITES[name])
    if name == "127.0.0.1":
        return web.Response(text="It works")
    return web.Response(status=404, text=f"no site named {name}")


async def app_error(request: web.Request) -> web.Response:
    return web.Response(status=500, text="Fatal error: Uncaught PDOException")


async def php_warning(request: web.Request) -> web.Response:
    return web.Response(text="<b>Warning</b>: mysqli_connect(): (HY000/2002) refused")


async def slow(request: web.Request) -> web.Response:
    """Answers after ``seconds``, or at once when the server is being stopped."""
    stopping = request.app[STOPPING]
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(float(request.query["seconds"])):
            await stopping.wait()
    return web.Response(text="finally")


async def redirect(request: web.Request) -> web.Response:
    hops = int(request.match_info["hops"])
    if hops == 0:
        return web.Response(text="landed")
    raise web.HTTPMovedPermanently(f"/redirect/{hops - 1}")


async def loop(request: web.Request) -> web.Response:
    raise web.HTTPFound("/loop")


async def big(request: web.Request) -> web.StreamResponse:
    """A chunked body of BIG_BODY_BYTES whose last bytes are END-OF-PAGE."""
    response = web.StreamResponse()
    await response.prepare(request)
    chunk = b"x" * 50_000
    for _ in range(BIG_BODY_BYTES // len(chunk) - 1):
        await response.write(chunk)
    await response.write(chunk[: -len(b"END-OF-PAGE")] + b"END-OF-PAGE")
    await response.write_eof()
    return response


async def echo(request: web.Request) -> web.Response:
    body = await request.text()
    return web.Response(text=f"{request.method} {request.headers.get('X-Probe')} {body}")


async def close_after(request: web.Request) -> web.Response:
    """A tiny page sent with ``Connection: close``."""
    response = web.Response(text="bye")
    response.force_close()
    return response


async def on_shutdown(app: web.Application) -> None:
    app[STOPPING].set()


def make_app() -> web.Application:
    app = web.Application()
    app[STOPPING] = asyncio.Event()
    app.on_shutdown.append(on_shutdown)
    app.router.add_get("/", index)
    app.router.add_get("/error", app_error)
    app.router.add_get("/warning", php_warning)
    app.router.add_get("/slow", slow)
    app.router.add_get("/redirect/{hops}", redirect)
    app.router.add_get("/loop", loop)
    app.router.add_get("/big", big)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/close", close_after)
    return app


@pytest.fixture
async def site() -> AsyncIterator[str]:
    async with serve_app(make_app()) as port:
        yield f"http://127.0.0.1:{port}"


async def run_http(ctx: ProbeContext, url: str, **fields: Any) -> Result:
    return await run_check(make_check("http", url=url, **fields), ctx)


def reading(result: Result, name: str) -> Value:
    values = [r.value for r in result.readings if r.name == name]
    assert len(values) == 1, f"expected one {name} reading in {result.readings}"
    return values[0]


def has_reading(result: Result, name: str) -> bool:
    return any(r.name == name for r in result.readings)


# --- status and readings ------------------------------------------------------------


async def test_site_answering_200_is_ok_with_readings(ctx: ProbeContext, site: str) -> None:
    result = await run_http(ctx, f"{site}/")
    assert result.status is Status.OK
    assert result.summary.startswith(f"HTTP 200 from {site}/ in ")
    assert reading(result, "status_code") == 200
    assert reading(result, "content_bytes") == len("It works")
    assert reading(result, "redirects") == 0
    assert isinstance(reading(result, "response_seconds"), float)
    assert not has_reading(result, "cert_days_left")


async def test_server_error_500_is_critical(ctx: ProbeContext, site: str) -> None:
    result = await run_http(ctx, f"{site}/error")
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(f"HTTP 500 from {site}/error in ")
    assert result.summary.endswith("expected a status below 400")
    assert reading(result, "status_code") == 500


async def test_expect_status_accepts_a_listed_error_status(ctx: ProbeContext, site: str) -> None:
    result = await run_http(ctx, f"{site}/no-such-page", expect_status=[404, 410])
    assert result.status is Status.OK
    assert "HTTP 404" in result.summary


async def test_expect_status_rejects_an_unlisted_200(ctx: ProbeContext, site: str) -> None:
    result = await run_http(ctx, f"{site}/", expect_status=[204, 301])
    assert result.status is Status.CRITICAL
    assert result.summary.endswith("expected status 204, 301")


async def test_method_headers_and_body_are_sent(ctx: ProbeContext, site: str) -> None:
    result = await run_http(ctx, f"{site}/echo", method="POST", headers={"X-Probe": "yes"},
                            body="ping", body_matches="^POST yes ping$")
    assert result.status is Status.OK, result.summary


# --- failures to get an answer ------------------------------------------------------


async def test_answer_slower_than_timeout_is_critical_timed_out(
    ctx: ProbeContext, site: str
) -> None:
    result = await run_http(ctx, f"{site}/slow?seconds=30", timeout="1s",
                            host_header="shop.example")
    assert result.status is Status.CRITICAL
    assert result.summary == f"{site}/slow?seconds=30 (Host: shop.example): timed out after 1s"


async def test_server_that_never_answers_times_out(ctx: ProbeContext) -> None:
    async with serve_tcp(silent) as port:
        result = await run_http(ctx, f"http://127.0.0.1:{port}/", timeout="1s")
    assert result.status is Status.CRITICAL
    assert result.summary == f"http://127.0.0.1:{port}/: timed out after 1s"


async def test_closed_port_is_critical_connection_refused(ctx: ProbeContext) -> None:
    with closed_port() as port:
        result = await run_http(ctx, f"http://127.0.0.1:{port}/")
    assert result.status is Status.CRITICAL
    assert result.summary == f"cannot connect to http://127.0.0.1:{port}/: connection refused"


async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readline()


async def test_server_hanging_up_without_answer_is_critical(ctx: ProbeContext) -> None:
    async with serve_tcp(hang_up) as port:
        result = await run_http(ctx, f"http://127.0.0.1:{port}/")
    assert result.status is Status.CRITICAL
    assert result.summary == (
        f"http://127.0.0.1:{port}/ closed the connection without answering"
    )


async def not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    await writer.drain()
    await until_closed(reader)


async def test_non_http_answer_is_critical_bad_response(ctx: ProbeContext) -> None:
    async with serve_tcp(not_http) as port:
        result = await run_http(ctx, f"http://127.0.0.1:{port}/")
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(f"bad HTTP response from http://127.0.0.1:{port}/: ")


# --- latency thresholds -------------------------------------------------------------


async def test_response_slower_than_crit_threshold_is_critical(
    ctx: ProbeContext, site: str
) -> None:
    result = await run_http(ctx, f"{site}/slow?seconds=0.3", crit={"response_seconds": 0.1})
    assert result.status is Status.CRITICAL
    assert "HTTP 200" in result.summary
    assert "response_seconds" in result.summary
    assert result.summary.endswith("> 0.1")


async def test_response_slower_than_warn_threshold_warns(ctx: ProbeContext, site: str) -> None:
    result = await run_http(ctx, f"{site}/slow?seconds=0.3", warn={"response_seconds": 0.1},
                            crit={"response_seconds": 50})
    assert result.status is Status.WARNING
    assert result.summary.endswith("> 0.1")


async def test_response_within_threshold_is_ok(ctx: ProbeContext, site: str) -> None:
    result = await run_http(ctx, f"{site}/", warn={"response_seconds": 40},
                            crit={"response_seconds": 50})
    assert result.status is Status.OK


# --- redirects ----------------------------------------------------------------------


async def test_redirect_not_followed_reports_301(ctx: ProbeContext, site: str) -> None:
    result = await run_http(ctx, f"{site}/redirect/1")
    assert result.status is Status.OK
    assert result.summary.startswith(f"HTTP 301 from {site}/redirect/1 in ")
    assert "/redirect/0" in result.summary  # where it points
    assert reading(result, "status_code") == 301
    assert reading(result, "redirects") == 0


async def test_redirect_not_followed_fails_expect_status_200(
    ctx: ProbeContext, site: str
) -> None:
    result = await run_http(ctx, f"{site}/redirect/1", expect_status=[200])
    assert result.status is Status.CRITICAL
    assert "HTTP 301" in result.summary
    assert result.summary.endswith("expected status 200")


async def test_redirects_followed_reach_final_page(ctx: ProbeContext, site: str) -> None:
    result = await run_http(ctx, f"{site}/redirect/3", follow_redirects=True,
                            expect_status=[200], body_matches="^landed$")
    assert result.status is Status.OK, result.summary
    assert reading(result, "redirects") == 3


async def test_exactly_max_redirects_are_followed(ctx: ProbeContext, site: str) -> None:
    result = await run_http(ctx, f"{site}/redirect/3", follow_redirects=True, max_redirects=3)
    assert result.status is Status.OK, result.summary
    assert reading(result, "status_code") == 200


async def test_more_redirects_than_max_is_critical(ctx: ProbeContext, site: str) -> None:
    result = await run_http(ctx, f"{site}/redirect/3", follow_redirects=True, max_redirects=2)
    assert result.status is Status.CRITICAL
    assert result.summary == f"more than 2 redirects from {site}/redirect/3"


async def test_max_redirects_zero_follows_none(ctx: ProbeContext, site: str) -> None:
    result = await run_http(ctx, f"{site}/redirect/1", follow_redirects=True, max_redirects=0)
    assert result.status is Status.CRITICAL
    assert result.summary == f"more than 0 redirects from {site}/redirect/1"


async def test_redirect_loop_is_critical(ctx: ProbeContext, site: str) -> None:
    result = await run_http(ctx, f"{site}/loop", follow_redirects=True)
    assert result.status is Status.CRITICAL
    assert result.summary == f"more than 5 redirects from {site}/loop"


# --- name-based virtual hosts -------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SITES))
async def test_host_header_selects_the_site(ctx: ProbeContext, site: str, name: str) -> None:
    result = await run_http(ctx, f"{site}/", host_header=name, body_matches=SITES[name])
    assert result.status is Status.OK, result.summary
    assert result.summary.startswith(f"HTTP 200 from {site}/ (Host: {name}) in ")


async def test_host_header_of_other_site_fails_body_match(ctx: ProbeContext, site: str) -> None:
    result = await run_http(ctx, f"{site}/", host_header="blog.example", body_matches="shop")
    assert result.status is Status.CRITICAL
    assert result.summary.endswith("body does not match 'shop'")


async def test_unknown_site_name_is_critical_404(ctx: ProbeContext, site: str) -> None:
    result = await run_http(ctx, f"{site}/", host_header="gone.example")
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(f"HTTP 404 from {site}/ (Host: gone.example) in ")


# --- body patterns ------------------------------------------------------------------


async def test_body_not_matches_finds_php_warning(ctx: ProbeContext, site: str) -> None:
    result = await run_http(ctx, f"{site}/warning", body_not_matches="Warning|Fatal error")
    assert result.status is Status.CRITICAL
    assert "HTTP 200" in result.summary
    assert result.summary.endswith("body matches 'Warning|Fatal error'")


async def test_body_not_matches_passes_clean_page(ctx: ProbeContext, site: str) -> None:
    result = await run_http(ctx, f"{site}/", body_not_matches="Warning|Fatal error")
    assert result.status is Status.OK
    assert reading(result, "body_not_matches") is True


async def test_body_match_searches_the_whole_body(ctx: ProbeContext, site: str) -> None:
    result = await run_http(ctx, f"{site}/big", body_matches="END-OF-PAGE$")
    assert result.status is Status.OK, result.summary
    assert reading(result, "content_bytes") == BIG_BODY_BYTES


async def test_body_past_max_body_bytes_is_not_read(ctx: ProbeContext, site: str) -> None:
    result = await run_http(ctx, f"{site}/big", body_matches="END-OF-PAGE", max_body_bytes=1000)
    assert result.status is Status.CRITICAL
    assert reading(result, "content_bytes") == 1000
    assert result.summary.endswith("body does not match 'END-OF-PAGE'")


# --- TLS ----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def tls_site(identity: Identity) -> AsyncIterator[str]:
    async with serve_app(make_app(), identity.server_context()) as port:
        yield f"https://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("certs")


@pytest.fixture(scope="module")
def authority(certs: Path) -> Authority:
    return Authority(certs)


async def test_self_signed_certificate_is_rejected_when_verifying(
    ctx: ProbeContext, certs: Path
) -> None:
    async with tls_site(self_signed(certs, "shop.example")) as url:
        result = await run_http(ctx, url, host_header="shop.example")
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(f"TLS certificate of {url} (Host: shop.example) rejected: ")
    assert "self-signed certificate" in result.summary or "self signed" in result.summary


async def test_self_signed_certificate_without_verify_reports_days_left(
    ctx: ProbeContext, certs: Path
) -> None:
    async with tls_site(self_signed(certs, "shop.example", days=90)) as url:
        result = await run_http(ctx, url, host_header="shop.example", verify_tls=False,
                                body_matches="Welcome to the shop")
    assert result.status is Status.OK, result.summary
    assert 89.9 < float(reading(result, "cert_days_left")) <= 90
    assert result.summary.endswith("certificate expires in 90 days")


async def test_certificate_expiring_in_3_days_warns(ctx: ProbeContext, certs: Path) -> None:
    async with tls_site(self_signed(certs, "shop.example", days=3)) as url:
        result = await run_http(ctx, url, host_header="shop.example", verify_tls=False,
                                warn={"cert_days_left": "14:"}, crit={"cert_days_left": "1:"})
    assert result.status is Status.WARNING
    assert result.summary.endswith("certificate expires in 3 days: cert_days_left 3 < 14")


async def test_expired_certificate_is_rejected_when_verifying(
    ctx: ProbeContext, certs: Path, authority: Authority
) -> None:
    expired = authority.issue("shop.example", days=2, expired=True)
    async with tls_site(expired) as url:
        result = await run_http(ctx, url, host_header="shop.example",
                                ca_file=str(authority.cert_file))
    assert result.status is Status.CRITICAL
    assert "rejected: certificate has expired" in result.summary


async def test_expired_certificate_without_verify_has_negative_days_left(
    ctx: ProbeContext, certs: Path
) -> None:
    async with tls_site(self_signed(certs, "shop.example", days=2, expired=True)) as url:
        result = await run_http(ctx, url, host_header="shop.example", verify_tls=False,
                                crit={"cert_days_left": "0:"})
    assert result.status is Status.CRITICAL
    assert -2.01 < float(reading(result, "cert_days_left")) < -1.99
    assert result.summary.endswith("cert_days_left -2 < 0")


async def test_private_ca_is_untrusted_without_ca_file(
    ctx: ProbeContext, authority: Authority
) -> None:
    async with tls_site(authority.issue("shop.example")) as url:
        result = await run_http(ctx, url, host_header="shop.example")
    assert result.status is Status.CRITICAL
    assert "rejected: unable to get local issuer certificate" in result.summary


async def test_ca_file_trusts_private_ca(ctx: ProbeContext, authority: Authority) -> None:
    async with tls_site(authority.issue("shop.example", days=30)) as url:
        result = await run_http(ctx, url, host_header="shop.example",
                                ca_file=str(authority.cert_file), body_matches="shop")
    assert result.status is Status.OK, result.summary
    assert 29.9 < float(reading(result, "cert_days_left")) <= 30


async def test_certificate_for_another_name_is_rejected(
    ctx: ProbeContext, authority: Authority
) -> None:
    async with tls_site(authority.issue("shop.example")) as url:
        result = await run_http(ctx, url, host_header="blog.example",
                                ca_file=str(authority.cert_file))
    assert result.status is Status.CRITICAL
    assert "rejected: Hostname mismatch" in result.summary


def sni_context(
    by_name: dict[str, Identity], handshakes: list[str] | None = None
) -> ssl.SSLContext:
    """A server TLS context that picks the certificate by the client's server name, and
    notes each handshake's name in ``handshakes``."""
    contexts = {name: identity.server_context() for name, identity in by_name.items()}
    default = contexts[min(contexts)]

    def pick(sock: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        if handshakes is not None:
            handshakes.append(server_name or "")
        sock.context = contexts.get(server_name or "", default)

    default.sni_callback = pick
    return default


@pytest.mark.parametrize("name", sorted(SITES))
async def test_host_header_is_the_tls_server_name(
    ctx: ProbeContext, authority: Authority, name: str
) -> None:
    tls = sni_context({site: authority.issue(site) for site in SITES})
    async with serve_app(make_app(), tls) as port:
        result = await run_http(ctx, f"https://127.0.0.1:{port}/", host_header=name,
                                ca_file=str(authority.cert_file), body_matches=SITES[name])
    assert result.status is Status.OK, result.summary


async def test_days_left_reported_for_head_request(ctx: ProbeContext, certs: Path) -> None:
    async with tls_site(self_signed(certs, "shop.example", days=10)) as url:
        result = await run_http(ctx, url, method="HEAD", verify_tls=False)
    assert result.status is Status.OK, result.summary
    assert 9.9 < float(reading(result, "cert_days_left")) <= 10


async def test_certificate_is_read_from_the_kept_alive_connection(
    ctx: ProbeContext, certs: Path
) -> None:
    handshakes: list[str] = []
    tls = sni_context({"shop.example": self_signed(certs, "shop.example")}, handshakes)
    async with serve_app(make_app(), tls) as port:
        check = make_check("http", url=f"https://127.0.0.1:{port}/", verify_tls=False,
                           host_header="shop.example", keep_alive=True)
        results = [await run_check(check, ctx) for _ in range(3)]
    assert all(has_reading(result, "cert_days_left") for result in results)
    assert handshakes == ["shop.example"]


async def test_days_left_reported_when_server_closes_the_connection(
    ctx: ProbeContext, certs: Path
) -> None:
    async with tls_site(self_signed(certs, "shop.example", days=10)) as url:
        result = await run_http(ctx, f"{url}close", host_header="shop.example",
                                verify_tls=False)
    assert result.status is Status.OK, result.summary
    assert 9.9 < float(reading(result, "cert_days_left")) <= 10


async def test_days_left_reported_after_redirect_to_https(
    ctx: ProbeContext, site: str, certs: Path
) -> None:
    async with tls_site(self_signed(certs, "shop.example", days=10)) as url:

        async def to_https(request: web.Request) -> web.Response:
            raise web.HTTPMovedPermanently(url)

        app = web.Application()
        app.router.add_get("/", to_https)
        async with serve_app(app) as port:
            result = await run_http(ctx, f"http://127.0.0.1:{port}/", follow_redirects=True,
                                    verify_tls=False, body_matches="It works")
    assert result.status is Status.OK, result.summary
    assert reading(result, "redirects") == 1
    assert 9.9 < float(reading(result, "cert_days_left")) <= 10


async def test_https_to_a_plain_http_port_is_critical_handshake_failure(
    ctx: ProbeContext, site: str
) -> None:
    url = site.replace("http://", "https://") + "/"
    result = await run_http(ctx, url)
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(f"TLS handshake with {url} failed: ")


async def test_ca_file_is_reloaded_when_it_changes(
    ctx: ProbeContext, authority: Authority, tmp_path: Path
) -> None:
    ca_file = tmp_path / "trusted.pem"
    ca_file.write_bytes(Authority(tmp_path, "Some Other CA").cert_file.read_bytes())
    os.utime(ca_file, ns=(1_000_000_000, 1_000_000_000))
    async with tls_site(authority.issue("shop.example")) as url:
        check = make_check("http", url=url, host_header="shop.example", ca_file=str(ca_file))
        before = await run_check(check, ctx)
        ca_file.write_bytes(authority.cert_file.read_bytes())
        os.utime(ca_file, ns=(2_000_000_000, 2_000_000_000))
        after = await run_check(check, ctx)
    assert before.status is Status.CRITICAL
    assert "rejected" in before.summary
    assert after.status is Status.OK, after.summary


async def test_ca_file_that_is_no_certificate_is_unknown(
    ctx: ProbeContext, tmp_path: Path
) -> None:
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate\n")
    result = await run_http(ctx, "https://127.0.0.1:1/", ca_file=str(not_pem))
    assert result.status is Status.UNKNOWN
    assert result.summary.startswith(f"cannot load ca_file {not_pem}: ")
    assert "no certificate" in result.summary


async def test_missing_ca_file_is_unknown(ctx: ProbeContext, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    result = await run_http(ctx, "https://127.0.0.1:1/", ca_file=str(missing))
    assert result.status is Status.UNKNOWN
    assert result.summary.startswith(f"cannot load ca_file {missing}: ")


def test_relative_ca_file_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match="absolute path"):
        make_check("http", url="https://127.0.0.1/", ca_file="ca.pem")


def test_ca_file_needs_verify_tls() -> None:
    with pytest.raises(ValidationError, match="ca_file"):
        make_check("http", url="https://127.0.0.1/", ca_file="/etc/ssl/ca.pem", verify_tls=False)


ERROR_PAGE = "(?i)(Fatal error|Uncaught PDOException)"


async def test_an_application_error_page_is_a_script_error_not_a_site_down(
        ctx: ProbeContext, site: str) -> None:
    check = make_check("http", url=f"{site}/error", error_page=ERROR_PAGE, priority="P1",
                       warning_priority="P3")
    result = await run_check(check, ctx)
    assert result.status is Status.WARNING     # a 500 with the app's error page: P3
    assert check.priority_for(result.status) == "P3"
    assert "the application's error page" in result.summary
    assert "expected status" not in result.summary


async def test_a_bare_5xx_is_still_the_site_down_with_an_error_page_rule(
        ctx: ProbeContext) -> None:
    async def gateway(request: web.Request) -> web.Response:
        return web.Response(status=502, text="<h1>502 Bad Gateway</h1>")

    app = web.Application()
    app.router.add_get("/", gateway)
    async with serve_app(app) as port:
        check = make_check("http", url=f"http://127.0.0.1:{port}/", error_page=ERROR_PAGE)
        result = await run_check(check, ctx)
    assert result.status is Status.CRITICAL and "expected a status below 400" in result.summary
