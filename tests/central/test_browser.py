"""The web console in a real browser: Debian's headless Chromium, driven by Playwright,
against ``monitord central`` as a real process with a person added by the CLI.

It signs in through the form, reads the queue (P1 first, an overdue incident marked),
opens an incident whose probe output carries a script (shown as text, never run),
acknowledges and resolves it, and checks that a form stripped of its anti-forgery token
and a bare request with the session cookie are both refused and change nothing.

With $MONITORD_SCREENSHOTS set to a directory, it also saves queue.png and incident.png
there (the README's are made with ``MONITORD_SCREENSHOTS=docs/screenshots``).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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


@contextlib.contextmanager
def console(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A central service with carol (a console password), agents web1 and web2 and their
    events; yields its base URL and an operator token for checking the store."""
    port = free_port()
    config = write_config(tmp_path, port)
    with config.open("a") as f:
        f.write('[policy]\nP3 = "1s"\n')       # so that the P3 is overdue at once
    made = add_user(config, "carol", PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    assert PASSWORD not in made.stdout + made.stderr
    tokens = {host: central("add-agent", host, "-c", str(config)).stdout.strip()
              for host in ("web1", "web2")}
    operator = central("add-operator", "olga", "-c", str(config)).stdout.strip()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "central.log"
    with service(config, log) as proc:
        wait_healthy(base, proc)
        for host, token in tokens.items():
            status, body = request(f"{base}/api/v1/events", {"events": events(host)}, token)
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


def test_console_in_a_browser(playwright: Any, tmp_path: Path) -> None:
    with console(tmp_path) as (base, operator):
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM),
            headless=True, args=CHROMIUM_ARGS, viewport=VIEWPORT, locale="en-GB",
            timezone_id="UTC")
        try:
            browser.set_default_timeout(BROWSER_TIMEOUT_MS)
            page = browser.new_page()
            scripts_ran: list[str] = []
            page.on("dialog", lambda dialog: scripts_ran.append(dialog.message))
            sign_in(page, base)
            incident_id = check_queue(page)
            check_incident(page, base, operator, incident_id)
            check_forgeries(browser, page, base, operator, incident_id)
            assert scripts_ran == []
        finally:
            browser.close()


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
    shoot(page, "queue.png")
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
