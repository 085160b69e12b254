"""The web console in a real browser: Debian's headless Chromium, driven by Playwright,
against ``monitord central`` as a real process with a person added by the CLI.

It signs in through the form, reads the queue (P1 first, an overdue incident marked),
opens an incident whose probe output carries a script (shown as text, never run),
acknowledges and resolves it, and checks that a form stripped of its anti-forgery token
and a bare request with the session cookie are both refused and change nothing.

Then the queue of a busy night, with the service on SQLite and on PostgreSQL, on a phone
(390 px wide) and at a desk (1366 px): no page scrolls sideways, the filters go into the
URL and come back from it, a row is acknowledged with its own button, two are resolved in
one bulk form, and that form is refused without its token.

With $MONITORD_SCREENSHOTS set to a directory, it also saves queue-1366.png, queue-390.png
and incident.png there (the README's are made with
``MONITORD_SCREENSHOTS=docs/screenshots``).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.central.conftest import fresh_database
from tests.central.consoleclient import PASSWORD, add_user
from tests.central.test_server import (
    POLL_SECONDS,
    central,
    free_port,
    request,
    service,
    wait_healthy,
    write_config,
)
from tests.conftest import unavailable

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1200, "height": 760}
BROWSER_TIMEOUT_MS = 15000
OVERDUE_SECONDS = 20.0
PAYLOAD = "<script>window.__xss = 1</script>"
FORGED = "did not come from monitord"
SCREENSHOTS = os.environ.get("MONITORD_SCREENSHOTS", "")

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def playwright() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright Python package is not installed (pip install playwright)")
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as driver:
        yield driver


def step(fix: str, argv: list[str], output: str, code: int, status: str,
         summary: str) -> dict[str, Any]:
    return {"fix": fix, "argv": argv, "exit_code": code, "duration_seconds": 2.4,
            "output": output, "ended": f"exit {code} in 2.4s", "reprobe_status": status,
            "reprobe_summary": summary}


def event(kind: str, host: str, check: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "kind": kind, "host": host, "check": check,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **fields}


def shop_down() -> dict[str, Any]:
    """The P1, with a script in its probe output and in a fix's output."""
    url = "http://127.0.0.1/ (Host: shop.example)"
    return event(
        "problem", "web1", "shop", priority="P1", status="CRITICAL",
        title=f"web1/shop: HTTP 502 from {url}", summary=f"HTTP 502 from {url} in 38 ms",
        reason="the fixes did not help",
        body=f"The page said:\n<h1>502 Bad Gateway</h1>{PAYLOAD}\n",
        steps=[
            step("reload-service", ["reload-service", "nginx"],
                 "nginx: configuration file /etc/nginx/nginx.conf test is successful\n"
                 "Reloaded nginx.", 0, "CRITICAL", "HTTP 502"),
            step("restart-service", ["restart-service", "php8.2-fpm"],
                 f"Job for php8.2-fpm.service failed.\n{PAYLOAD}", 1, "CRITICAL",
                 "HTTP 502"),
        ])


def events(host: str) -> list[dict[str, Any]]:
    if host == "web1":
        return [event("heartbeat", "web1", interval_seconds=60), shop_down(),
                event("problem", "web1", "blog", priority="P3", status="WARNING",
                      title="web1/blog: slow", summary="HTTP 200 in 4.2 s (over 2 s)")]
    return [event("heartbeat", "web2", interval_seconds=60),
            event("problem", "web2", "disk-space", priority="P2", status="CRITICAL",
                  title="web2/disk-space: /var at 96%", summary="/var at 96% (over 95%)",
                  steps=[step("clean-logs", ["clean-logs", "/var/log"], "freed 120 MiB", 0,
                              "CRITICAL", "/var at 95.6%")]),
            event("healed", "web2", "php", status="CRITICAL", summary="php-fpm down",
                  steps=[step("restart-service", ["restart-service", "php8.2-fpm"], "",
                              0, "OK", "php-fpm running")])]


def night(host: str) -> list[dict[str, Any]]:
    """A busy night's fixed queue for the phone and desk test (and the README's screenshots):
    three hosts, a long unbroken summary, and a script in one."""
    found = {
        "web1": [problem("web1", "shop", "P1", "HTTP 502 from http://127.0.0.1/ (Host: "
                         "shop.example) in 38 ms"),
                 problem("web1", "blog", "P3", "HTTP 200 in 4.2 s (over 2 s)"),
                 event("healed", "web1", "php", status="CRITICAL", summary="php-fpm down",
                       steps=[step("restart-service", ["restart-service", "php8.2-fpm"], "",
                                   0, "OK", "php-fpm running")])],
        "web2": [problem("web2", "mysql", "P2", "mysqld: Too many connections (max 151)"),
                 problem("web2", "disk-space", "P2", "/var at 96% (over 95%)")],
        "web3": [problem("web3", "tls-shop", "P3", "certificate for shop.example expires in "
                         "12 days"),
                 problem("web3", "php-errors", "P3", "PHP Fatal error in /var/www/shop/"
                         "vendor/composer/autoload_real.php?" + "x" * 90 + " " + PAYLOAD)],
    }[host]
    return [event("heartbeat", host, interval_seconds=60), *found]


def problem(host: str, check: str, priority: str, summary: str) -> dict[str, Any]:
    return event("problem", host, check, priority=priority, status="CRITICAL",
                 title=f"{host}/{check}: {summary}", summary=summary)


@contextlib.contextmanager
def console(tmp_path: Path, seed: Callable[[str], list[dict[str, Any]]] | None = None,
            hosts: tuple[str, ...] = ("web1", "web2"), store_url: str = ""
            ) -> Iterator[tuple[str, str]]:
    """A central service with carol (a console password), agents (web1 and web2) and their
    events, on SQLite or the store at ``store_url``; yields its base URL and an operator
    token for checking the store."""
    port = free_port()
    config = write_config(tmp_path, port)
    if store_url:
        config.write_text(f'[central]\nlisten = "127.0.0.1:{port}"\n'
                          f'store_url = "{store_url}"\n')
    with config.open("a") as f:
        f.write('[policy]\nP3 = "1s"\n')       # so that the P3 is overdue at once
    made = add_user(config, "carol", PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    assert PASSWORD not in made.stdout + made.stderr
    tokens = {host: central("add-agent", host, "-c", str(config)).stdout.strip()
              for host in hosts}
    operator = central("add-operator", "olga", "-c", str(config)).stdout.strip()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "central.log"
    with service(config, log) as proc:
        wait_healthy(base, proc)
        for host, token in tokens.items():
            status, body = request(f"{base}/api/v1/events", {"events": (seed or events)(host)},
                                   token)
            assert status == 200, body
        yield base, operator
    logged = log.read_text()
    assert "Traceback" not in logged and PASSWORD not in logged


def timeline(base: str, operator: str, incident_id: int) -> list[Any]:
    status, body = request(f"{base}/api/v1/incidents/{incident_id}", token=operator)
    assert status == 200, body
    assert isinstance(body, dict)
    return list(body["incident"]["timeline"])


def reload_until(page: Any, text: str) -> None:
    """Reload until ``text`` shows (an incident turning overdue): bounded."""
    deadline = time.monotonic() + OVERDUE_SECONDS
    while text not in page.inner_text("main"):
        assert time.monotonic() < deadline, f"{text!r} never showed"
        time.sleep(POLL_SECONDS)
        page.reload()


def shoot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / name), full_page=True)


@contextlib.contextmanager
def chromium(playwright: Any, tmp_path: Path, viewport: dict[str, int]) -> Iterator[Any]:
    browser = playwright.chromium.launch_persistent_context(
        str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
        args=CHROMIUM_ARGS, viewport=viewport, locale="en-GB", timezone_id="UTC")
    try:
        browser.set_default_timeout(BROWSER_TIMEOUT_MS)
        yield browser
    finally:
        browser.close()


def test_console_in_a_browser(playwright: Any, tmp_path: Path) -> None:
    with console(tmp_path) as (base, operator), chromium(playwright, tmp_path,
                                                         VIEWPORT) as browser:
        page = browser.new_page()
        scripts_ran: list[str] = []
        page.on("dialog", lambda dialog: scripts_ran.append(dialog.message))
        sign_in(page, base)
        incident_id = check_queue(page)
        check_incident(page, base, operator, incident_id)
        check_forgeries(browser, page, base, operator, incident_id)
        assert scripts_ran == []


def sign_in(page: Any, base: str) -> None:
    page.goto(f"{base}/console/")
    assert page.url.startswith(f"{base}/console/login?next=")
    page.fill("input[name=name]", "carol")
    page.fill("input[name=password]", "not carol's password")
    page.click("button[type=submit]")
    assert "Wrong name or password." in page.inner_text("main")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    assert page.url == f"{base}/console/"
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["__Host-monitord_session"]   # Secure, so kept on loopback only
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Strict"


def check_queue(page: Any) -> int:
    """P1 first, then P2, then the overdue P3; returns the P1's incident id."""
    reload_until(page, "OVERDUE")
    rows = page.locator("table.queue tbody tr")
    assert rows.count() == 3
    priorities = [rows.nth(n).locator("td").nth(1).inner_text() for n in range(3)]
    assert priorities == ["P1", "P2", "P3"]
    assert "OVERDUE" in rows.nth(2).inner_text() and "OVERDUE" not in rows.nth(0).inner_text()
    assert "1 OVERDUE" in page.inner_text("header")
    link = rows.nth(0).locator("td").nth(0).locator("a")
    incident_id = int(link.inner_text().lstrip("#"))
    link.click()
    return incident_id


def check_incident(page: Any, base: str, operator: str, incident_id: int) -> None:
    assert page.url == f"{base}/console/incidents/{incident_id}"
    shown = page.inner_text("main")
    assert PAYLOAD in shown                      # the script, as text
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator("main script").count() == 0
    page.fill("form[action$='/acknowledge'] input[name=note]", "looking at php-fpm")
    page.click("form[action$='/acknowledge'] button")
    assert page.inner_text("#status") == "acknowledged"
    page.fill("form[action$='/comment'] textarea", "php-fpm pool exhausted since the deploy; "
                                                   "raising pm.max_children")
    page.click("form[action$='/comment'] button")
    shoot(page, "incident.png")
    page.fill("form[action$='/resolve'] input[name=note]", "pool raised, shop answers")
    page.click("form[action$='/resolve'] button")
    assert page.inner_text("#status") == "resolved"
    kinds = [(e["kind"], e["who"]) for e in timeline(base, operator, incident_id)]
    assert [k for k in kinds if k[1] == "carol"] == [
        ("acknowledged", "carol"), ("comment", "carol"), ("resolved", "carol")]


def check_forgeries(browser: Any, page: Any, base: str, operator: str,
                    incident_id: int) -> None:
    before = timeline(base, operator, incident_id)
    page.evaluate("document.querySelector(\"form[action$='/comment'] input[name=csrf]\")"
                  ".remove()")
    page.fill("form[action$='/comment'] textarea", "forged")
    with page.expect_response(f"{base}/console/incidents/{incident_id}/comment") as answer:
        page.click("form[action$='/comment'] button")
    assert answer.value.status == 403
    assert FORGED in page.inner_text("main")
    bare = browser.request.post(f"{base}/console/incidents/{incident_id}/comment",
                                form={"text": "forged too"}, max_redirects=0)
    assert bare.status == 403 and FORGED in bare.text()
    assert timeline(base, operator, incident_id) == before
    assert json.dumps(before).count("forged") == 0


# --- the queue on a phone and at a desk --------------------------------------------------

WIDTHS = {"desk": {"width": 1366, "height": 860}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(params=["sqlite", "postgres"])
async def store_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """"" (the central's own SQLite file) or a fresh PostgreSQL database. (Listed before
    ``playwright`` in a test, so that it is made before the browser's loop runs.)"""
    if request.param == "sqlite":
        yield ""
        return
    async with fresh_database() as dsn:
        yield dsn


@pytest.mark.parametrize("width", WIDTHS)
def test_queue_on_a_phone_and_at_a_desk(store_url: str, playwright: Any, tmp_path: Path,
                                        width: str) -> None:
    viewport = WIDTHS[width]
    with (console(tmp_path, night, ("web1", "web2", "web3"), store_url) as (base, operator),
          chromium(playwright, tmp_path, viewport) as browser):
        page = browser.new_page()
        scripts_ran: list[str] = []
        page.on("dialog", lambda dialog: scripts_ran.append(dialog.message))
        sign_in(page, base)
        reload_until(page, "OVERDUE")
        assert queue_checks(page) == ["shop", "mysql", "disk-space", "blog", "tls-shop",
                                      "php-errors"]
        assert PAYLOAD in page.inner_text("main")           # the script, as text
        assert page.evaluate("typeof window.__xss") == "undefined"
        fits(page)
        if not store_url:                                   # one of each width
            shoot(page, f"queue-{viewport['width']}.png")
        filter_in_the_url(page, base)
        acknowledge_from_the_queue(page, base, operator)
        bulk_resolve(page, base, operator)
        forged_bulk_changes_nothing(page, base, operator)
        page.click("td.id a")                               # an incident's page
        assert "/console/incidents/" in page.url
        fits(page)
        page.click("td a[href='/console/hosts/web1']")       # its host's page
        assert page.url == f"{base}/console/hosts/web1"
        assert "Open incidents" in page.inner_text("main")
        assert "restart-service" in page.inner_text("main")  # its heal
        fits(page)
        for other in ("hosts", "fixes", "schedules", "people", "policies"):   # the rest too
            page.goto(f"{base}/console/{other}")
            fits(page)
        assert scripts_ran == []


def queue_checks(page: Any) -> list[str]:
    """The checks of the queue's rows, top to bottom."""
    return [str(c) for c in page.locator("table.queue tbody td.check").all_inner_texts()]


def fits(page: Any) -> None:
    """No sideways scrolling: the page is no wider than the window."""
    wide, window = page.evaluate(
        "[document.scrollingElement.scrollWidth, window.innerWidth]")
    assert wide <= window, f"{page.url} is {wide} px wide in a {window} px window"


def filter_in_the_url(page: Any, base: str) -> None:
    """The filter form writes the URL; the URL, reloaded, is the same queue and form."""
    page.fill("form.filters input[name=host]", "web2")
    page.check("form.filters input[name=priority][value=P2]")
    page.click("form.filters button[type=submit]")
    assert page.url == f"{base}/console/?host=web2&check=&text=&priority=P2"
    assert queue_checks(page) == ["mysql", "disk-space"]
    fits(page)
    page.reload()
    assert queue_checks(page) == ["mysql", "disk-space"]
    assert page.input_value("form.filters input[name=host]") == "web2"
    assert page.is_checked("form.filters input[name=priority][value=P2]")
    page.fill("form.filters input[name=text]", "connections")
    page.click("form.filters button[type=submit]")
    assert queue_checks(page) == ["mysql"]
    page.goto(f"{base}/console/?priority=P9")
    assert "priority: expected P1, P2 or P3, got 'P9'." in page.inner_text("#filter-error")
    page.click("form.filters a:text('Clear')")
    assert page.url == f"{base}/console/" and len(queue_checks(page)) == 6


def row(page: Any, check: str) -> Any:
    return page.locator("table.queue tbody tr", has=page.locator(f"td.check:text-is('{check}')"))


def acknowledge_from_the_queue(page: Any, base: str, operator: str) -> None:
    mysql = row(page, "mysql")
    incident_id = int(mysql.locator("td.id").inner_text().lstrip("#"))
    mysql.locator("button:text('Acknowledge')").click()
    assert page.url == f"{base}/console/?done=acknowledged&count=1"
    assert page.inner_text("p.done") == "Acknowledged 1 incident."
    assert row(page, "mysql").locator("td.status").inner_text() == "acknowledged"
    assert row(page, "mysql").locator("button:text('Acknowledge')").count() == 0
    assert ("acknowledged", "carol") in [
        (e["kind"], e["who"]) for e in timeline(base, operator, incident_id)]


def bulk_resolve(page: Any, base: str, operator: str) -> None:
    page.click("a:text('Select several…')")
    assert page.url == f"{base}/console/?select=none"
    chosen = [int(row(page, check).locator("td.id").inner_text().lstrip("#"))
              for check in ("blog", "tls-shop")]
    for check in ("blog", "tls-shop"):
        row(page, check).locator("td.pick input").check()
    fits(page)
    page.fill("form#bulk input[name=note]", "known: shop certificate renewed")
    page.click("form#bulk button:text('Resolve selected')")
    assert page.url == f"{base}/console/?done=resolved&count=2"
    assert page.inner_text("p.done") == "Resolved 2 incidents."
    assert queue_checks(page) == ["shop", "mysql", "disk-space", "php-errors"]
    for incident_id in chosen:
        last = timeline(base, operator, incident_id)[-1]
        assert (last["kind"], last["who"], last["text"]) == (
            "resolved", "carol", "known: shop certificate renewed")


def forged_bulk_changes_nothing(page: Any, base: str, operator: str) -> None:
    page.goto(f"{base}/console/?select=all")
    incident_id = int(page.locator("td.id").first.inner_text().lstrip("#"))
    before = timeline(base, operator, incident_id)
    page.evaluate("document.querySelector('form#bulk input[name=csrf]').remove()")
    with page.expect_response(f"{base}/console/bulk") as answer:
        page.click("form#bulk button:text('Resolve selected')")
    assert answer.value.status == 403
    assert FORGED in page.inner_text("main")
    assert timeline(base, operator, incident_id) == before
    page.goto(f"{base}/console/")
    assert len(queue_checks(page)) == 4
