"""Discovery from a real nginx with 300 vhosts over includes, and the generated checks run
against it: plain, TLS under the test's CA, redirects, PHP-FPM pools and an upstream."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from monitord.agent.runner import run_check
from monitord.discover.expand import expand_found
from monitord.discover.model import Backend
from monitord.discover.rules import Sites
from monitord.discover.run import as_running, discover
from monitord.model import Status
from monitord.probes.base import ProbeContext, Shared
from tests.discover.conftest import SITES
from tests.discover.servers import SiteNginx, kind, site


def rules(nginx: SiteNginx, **more: object) -> Sites:
    return Sites.model_validate({
        "discover": ["nginx"], "nginx": {"command": [*nginx.argv, "-T"]},
        "php_fpm": {"pool_files": [str(p.pool_file) for p in nginx.pools.values()]},
        "ca_file": str(nginx.ca.ca_file), **more})


async def test_every_vhost_is_found_with_names_tls_redirects_and_backends(
        nginx: SiteNginx) -> None:
    found = await discover(rules(nginx))
    assert found.errors == {}
    by_scheme = {(s.name, s.tls): s for s in found.sites}
    tls = [i for i in range(SITES) if kind(i) == "tls"]
    assert len(found.sites) == SITES + len(tls)
    plain = by_scheme[(site(5), False)]
    assert plain.aliases == (f"www.{site(5)}",)
    assert (plain.address, plain.port) == ("127.0.0.1", nginx.port)
    assert plain.backends == (Backend("upstream", f"127.0.0.1:{nginx.upstream.port}"),)
    assert plain.source.endswith("sites/part00.conf:7")  # site0 takes two lines
    redirect = by_scheme[(site(10), False)]
    assert (redirect.redirect_status, redirect.redirect_to) == (
        301, f"https://{site(10)}$request_uri")
    secure = by_scheme[(site(10), True)]
    assert (secure.port, secure.root) == (nginx.tls_port, str(nginx.docs))
    php = by_scheme[(site(1), False)]
    assert php.backends == (Backend("php-fpm", f"unix:{nginx.pools['a'].socket}"),)
    assert {p.name for p in found.pools} == {"poola", "poolb"}
    assert found.servers == {"nginx": str(nginx.prefix / "nginx.pid")}


async def test_catch_all_wildcard_and_regex_names_are_skipped_with_the_reason(
        nginx: SiteNginx) -> None:
    found = await discover(rules(nginx))
    reasons = {s.name: s.reason for s in found.skipped}
    assert reasons == {
        "_": "the catch-all name _",
        "*.wild.example": "a wildcard name: no one name to ask for",
        "~^re\\d+\\.example$": "a regular expression name: no one name to ask for",
    }
    assert all(s.source.startswith(str(nginx.conf)) for s in found.skipped)


async def test_a_config_nginx_refuses_is_reported_in_its_own_words(nginx: SiteNginx) -> None:
    nginx.write(broken=True)
    found = await discover(rules(nginx))
    assert found.sites == []
    assert 'unknown directive "this_is_not_a_directive"' in found.errors["nginx"]


async def test_each_site_depends_on_nginx_and_on_what_serves_it(nginx: SiteNginx) -> None:
    found = await discover(rules(nginx))
    checks = {c.name: c for c in expand_found(found, [], rules(nginx), set()).checks}
    assert checks[site(5)].depends_on == ["nginx-server",
                                          f"upstream-127.0.0.1-{nginx.upstream.port}"]
    assert checks[site(1)].depends_on == ["nginx-server", "php-fpm-pool-poola"]
    assert checks[site(2)].depends_on == ["nginx-server", "php-fpm-pool-poolb"]
    assert checks[f"{site(10)}-cert"].depends_on == ["nginx-server"]
    assert f"{site(10)}-https" in checks


async def test_the_generated_checks_pass_against_the_running_servers(nginx: SiteNginx) -> None:
    found = await discover(rules(nginx))
    checks = {c.name: c for c in expand_found(found, [], rules(nginx), set()).checks}
    names = ["nginx-server", "nginx-config", "php-fpm-pool-poola",
             f"upstream-127.0.0.1-{nginx.upstream.port}", site(1), site(5), site(10),
             f"{site(10)}-https", f"{site(10)}-cert"]
    shared = Shared()
    try:
        results = await asyncio.gather(*(run_check(checks[n], ProbeContext(shared))
                                         for n in names))
    finally:
        await shared.close()
    assert {n: (r.status, r.summary) for n, r in zip(names, results, strict=True)
            if r.status is not Status.OK} == {}


async def test_excluded_and_overridden_sites_follow_the_rules(nginx: SiteNginx,
                                                             tmp_path: Path) -> None:
    sites = rules(nginx, exclude=["site1?.example"],
                  override=[{"match": ["site2*"], "every": "15s", "expect_status": [200]}])
    found = await discover(sites)
    expansion = expand_found(found, [], sites, set())
    checks = {c.name: c for c in expansion.checks}
    assert site(15) not in checks and site(5) in checks
    assert any(s.name == site(15) and "exclude" in s.reason for s in expansion.skipped)
    assert (checks[site(25)].every, checks[site(25)].expect_status) == (15.0, [200])
    assert checks[site(5)].every == 60.0


def test_the_default_command_reads_the_config_the_running_master_was_started_with(
        nginx: SiteNginx) -> None:
    command = as_running(["/usr/sbin/nginx", "-T"], str(nginx.prefix / "nginx.pid"))
    assert command == [*nginx.argv, "-T"]


def test_monitord_discover_prints_sites_skipped_names_and_dependencies(
        nginx: SiteNginx, tmp_path: Path) -> None:
    from tests.processes import monitord

    config = tmp_path / "monitord.toml"
    pools = json.dumps([str(p.pool_file) for p in nginx.pools.values()])
    command = json.dumps([*nginx.argv, "-T"])
    config.write_text(f'[agent]\nstate_dir = "{tmp_path / "state"}"\n[sites]\n'
                      f'discover = ["nginx"]\nnginx = {{ command = {command} }}\n'
                      f"php_fpm = {{ pool_files = {pools} }}\n")
    answer = json.loads(monitord("discover", "-c", str(config), "--format", "json"))
    assert len({s["name"] for s in answer["sites"]}) == SITES
    php = next(s for s in answer["sites"] if s["name"] == site(1))
    assert php["depends_on"] == ["nginx-server", "php-fpm-pool-poola"]
    assert len(answer["skipped"]) == 3
    table = monitord("discover", "-c", str(config))
    assert f"{SITES} sites ({SITES + SITES // 10} servers)" in table
    assert "the catch-all name _" in table
