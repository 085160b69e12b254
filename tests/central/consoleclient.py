"""A person at the web console, for the tests: a cookie jar kept by hand over the API
tests' running app, forms read from the pages, and wire events with fix steps.

Cookies are handled here rather than by the test client's jar, which (rightly) does not
send Secure cookies over plain http; the tests also need to forge and replay them.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multidict import CIMultiDictProxy

from monitord.central.passwords import hash_password
from tests.central.apiclient import T0, Api

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
XSS = "<script>window.__xss = 1; alert(1)</script>"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass(frozen=True)
class Page:
    status: int
    text: str
    headers: CIMultiDictProxy[str]
    set_cookies: dict[str, dict[str, str]]    # name -> attributes, "value" among them

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")

    def csrf(self) -> str:
        found = _CSRF.search(self.text)
        assert found, f"no form token on the page:\n{self.text}"
        return found[1]


@dataclass
class Person:
    api: Api
    cookies: dict[str, str] = field(default_factory=dict)

    async def get(self, path: str) -> Page:
        return await self.request("GET", path)

    async def post(self, path: str, form: dict[str, str]) -> Page:
        return await self.request("POST", path, form)

    async def request(self, method: str, path: str, form: Mapping[str, str] | None = None
                      ) -> Page:
        self.api.client.session.cookie_jar.clear()
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        response = await self.api.client.request(method, path, data=form, headers=headers,
                                                 allow_redirects=False)
        text = await response.text()
        set_cookies = {}
        for name, morsel in response.cookies.items():
            set_cookies[name] = {"value": morsel.value, **{k: str(v) for k, v in morsel.items()}}
            if morsel["max-age"] == "0":
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = morsel.value
        return Page(response.status, text, response.headers, set_cookies)

    async def sign_in(self, name: str, password: str = PASSWORD,
                      next_page: str = "/console/") -> Page:
        form = await self.get("/console/login")
        assert form.status == 200, form.text
        return await self.post("/console/login", {"csrf": form.csrf(), "name": name,
                                                  "password": password, "next": next_page})

    async def act(self, incident_id: int, action: str, **fields: str) -> Page:
        """Post one of an incident page's forms, with the token the page carries."""
        page = await self.get(f"/console/incidents/{incident_id}")
        assert page.status == 200, page.text
        return await self.post(f"/console/incidents/{incident_id}/{action}",
                               {"csrf": page.csrf(), **fields})


async def add_person(api: Api, name: str, password: str = PASSWORD) -> None:
    await api.store.set_password(name, hash_password(password), T0)


async def signed_in(api: Api, name: str = "carol") -> Person:
    await add_person(api, name)
    person = Person(api)
    page = await person.sign_in(name)
    assert page.status == 303, page.text
    return person


def add_user(config: Path, name: str, stdin: str) -> subprocess.CompletedProcess[str]:
    """``monitord central add-user NAME``, the password on standard input (not a TTY)."""
    return subprocess.run([sys.executable, "-m", "monitord", "central", "add-user", name,
                           "-c", str(config)], cwd=ROOT, input=stdin, capture_output=True,
                          text=True, timeout=60, check=False)


# --- wire events (JSON) with the fixes that ran ------------------------------------------

def step(fix: str = "restart-service", worked: bool = False, output: str = "done",
         argv: tuple[str, ...] = ()) -> dict[str, Any]:
    code = 0 if worked else 1
    return {"fix": fix, "argv": list(argv or (fix, "nginx")), "exit_code": code,
            "duration_seconds": 1.5, "output": output, "ended": f"exit {code} in 1.5s",
            "reprobe_status": "OK" if worked else "CRITICAL",
            "reprobe_summary": "HTTP 200" if worked else "HTTP 502"}


def healed(check: str = "web", host: str = "web1", steps: tuple[dict[str, Any], ...] = (),
           at: dt.datetime = T0) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "kind": "healed", "host": host, "check": check,
            "at": at.isoformat(), "status": "CRITICAL", "summary": f"{check}: HTTP 502",
            "reason": "healed", "steps": list(steps or (step(worked=True),))}
