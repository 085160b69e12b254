"""The checks the site rules give a discovery: raw check tables, validated afterwards by
the probes' own models like any the admin writes.

Names are stable across runs and valid check names: a site's HTTP check is named after
its primary name (``shop.example``; ``shop.example-https`` for its TLS server), its
certificate check ``shop.example-cert``; the web server's checks ``nginx-server`` and
``nginx-config``; a pool's ``php-fpm-pool-www``; an upstream's ``upstream-127.0.0.1-8081``.
Each site depends on the web server's check and on the check of what serves it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from monitord.discover.model import Backend, Discovery, Pool, Site, Skipped
from monitord.discover.names import check_base, token
from monitord.discover.rules import SiteRules, Sites
from monitord.model import Priority
from monitord.probes.base import HealStep

Raw = dict[str, Any]
TEST_FLAGS = {"nginx": ("-T", ["-t", "-q"]), "apache2": ("-S", ["-t"])}


@dataclass
class Generated:
    """Raw check tables, with the site each came from (for messages and retiring)."""

    checks: list[Raw] = field(default_factory=list)
    site_of: dict[str, str] = field(default_factory=dict)    # check name -> site name
    skipped: list[Skipped] = field(default_factory=list)


def generate(found: Discovery, sites: Sites, taken: set[str]) -> Generated:
    """The checks of every discovered site (and of its server, pools, upstreams) under
    ``sites``' rules; a site whose check name is ``taken`` by another check is skipped."""
    out = Generated()
    names = set(taken)
    parents: dict[str, str] = {}
    for server in sorted({s.server for s in found.sites}):
        parents[server] = sites.server_check or _add(out, names, server_checks(
            server, found.servers.get(server, ""), sites))
    pool_checks = {p.listen: p for p in found.pools}
    for site in found.sites:
        glob = sites.excluded(site.name)
        if glob:
            out.skipped.append(Skipped(site.server, site.name,
                                       f'excluded by [sites] exclude "{glob}"', site.source))
            continue
        depends = [parents[site.server]]
        for backend in site.backends:
            parent = _backend_check(out, names, backend, pool_checks, sites)
            if parent and parent not in depends:
                depends.append(parent)
        _site(out, names, site, sites.rules_for(site.name), depends)
    return out


def _add(out: Generated, names: set[str], checks: list[Raw]) -> str:
    """Add ``checks`` not already there; the first one's name."""
    for check in checks:
        if check["name"] not in names:
            names.add(check["name"])
            out.checks.append(check)
    return str(checks[0]["name"])


def server_checks(server: str, pid_file: str, sites: Sites) -> list[Raw]:
    """The web server's liveness (its master by pid file: the sites' parent) and its
    config test (a config it would refuse on the next reload, reported with nginx's or
    Apache's own words)."""
    command = (sites.nginx if server == "nginx" else sites.apache2).command
    flag, test = TEST_FLAGS[server]
    test_command = [w for w in command if w != flag] + test
    live: Raw = {"name": f"{server}-server", "probe": "process", "priority": Priority.P1,
                 "description": f"the {server} master process runs (discovered sites "
                 "depend on it)", "every": "30s", "timeout": "5s", "fail_after": 2,
                 "heal": _heal(sites.server_heal)}
    live.update({"pidfile": pid_file} if pid_file else {"process": server})
    config: Raw = {"name": f"{server}-config", "probe": "nagios", "command": test_command,
                   "description": f"{server} would accept its config on the next reload",
                   "every": _seconds(sites.rescan_every),    # tested as often as read
                   "timeout": _seconds(min(sites.discover_timeout, sites.rescan_every)),
                   "fail_after": 1, "priority": Priority.P2,
                   "warning_priority": Priority.P2}
    return [live, config]


def _backend_check(out: Generated, names: set[str], backend: Backend,
                   pools: dict[str, Pool], sites: Sites) -> str:
    if backend.kind == "php-fpm" and backend.target in pools:
        name = f"php-fpm-pool-{token(pools[backend.target].name)}"
        if name in names:      # made for an earlier site of the pool
            return name
        return _add(out, names, [pool_check(pools[backend.target], sites)])
    if backend.kind == "upstream" and backend.target and not backend.target.startswith("unix:"):
        host, _, port = backend.target.rpartition(":")
        if port.isdigit():
            return _add(out, names, [{
                "name": f"upstream-{token(backend.target)}", "probe": "tcp",
                "host": host.strip("[]"), "port": int(port), "priority": Priority.P1,
                "description": f"the upstream {backend.target} accepts connections",
                "every": "30s", "timeout": "5s", "fail_after": 2}])
    return ""


def pool_check(pool: Pool, sites: Sites) -> Raw:
    """A pool that listens on TCP answers there; one on a socket has its workers (an
    ondemand pool has none while idle: its master then)."""
    check: Raw = {"name": f"php-fpm-pool-{token(pool.name)}", "priority": Priority.P1,
                  "description": f"PHP-FPM pool {pool.name} ({pool.listen}) is up",
                  "every": "30s", "timeout": "5s", "fail_after": 2,
                  "heal": _heal(sites.php_fpm.pool_heal)}
    if not pool.listen.startswith("unix:"):
        host, _, port = pool.listen.rpartition(":")
        check.update(probe="tcp", host=host.strip("[]") or "127.0.0.1", port=int(port))
    elif pool.ondemand:
        check.update(probe="process", cmdline=r"^php-fpm: master process")
    else:
        check.update(probe="process", cmdline=rf"^php-fpm: pool {_literal(pool.name)}\s*$")
    return check


def _site(out: Generated, names: set[str], site: Site, rules: SiteRules,
          depends: list[str]) -> None:
    base = check_base(site.name)
    http = f"{base}-https" if site.tls else base
    if http in names:
        out.skipped.append(Skipped(site.server, site.name, f'its check name "{http}" is '
                                   "taken by another check", site.source))
        return
    checks = [site_check(http, site, rules, depends)]
    if site.tls and rules.certificate:
        checks.append(certificate_check(f"{base}-cert", site, rules, depends[:1]))
    for check in checks:
        if check["name"] not in names:
            names.add(check["name"])
            out.checks.append(check)
            out.site_of[check["name"]] = site.name


def site_check(name: str, site: Site, rules: SiteRules, depends: list[str]) -> Raw:
    check: Raw = {
        "name": name, "probe": "http", "url": site.url.rstrip("/") + rules.path,
        "host_header": site.name, "depends_on": depends,
        "description": _describe(site), **_common(rules),
        "verify_tls": rules.verify_tls,
        "warn": _ranges(rules.warn), "crit": _ranges(rules.crit),
    }
    if rules.ca_file:
        check["ca_file"] = rules.ca_file
    if site.redirect_status:
        check["expect_status"] = [site.redirect_status]
    else:
        check["expect_status"] = list(rules.expect_status)
        if rules.error_page is not None:
            check["error_page"] = rules.error_page.pattern
            check["warning_priority"] = rules.script_error_priority.value
    return check


def certificate_check(name: str, site: Site, rules: SiteRules, depends: list[str]) -> Raw:
    check: Raw = {
        "name": name, "probe": "tls", "host": site.address, "port": site.port,
        "server_name": site.name, "verify_tls": rules.verify_tls, "depends_on": depends,
        "description": f"the certificate of {site.name} is valid and not about to expire",
        "every": _seconds(rules.certificate_every), "timeout": _seconds(rules.timeout),
        "fail_after": 1, "priority": rules.certificate_priority.value,
    }
    if rules.certificate_warning_priority is not None:
        check["warning_priority"] = rules.certificate_warning_priority.value
    if rules.ca_file:
        check["ca_file"] = rules.ca_file
    return check


def _common(rules: SiteRules) -> Raw:
    return {"every": _seconds(rules.every), "timeout": _seconds(rules.timeout),
            "fail_after": rules.fail_after, "retry_every": _seconds(rules.retry_every),
            "recover_after": rules.recover_after, "priority": rules.priority.value,
            "heal": _heal(rules.heal)}


def _describe(site: Site) -> str:
    serves = ", ".join(f"{b.kind} {b.target}".strip() for b in site.backends)
    also = f" (also {', '.join(site.aliases[:3])}{'...' if len(site.aliases) > 3 else ''})" \
        if site.aliases else ""
    redirect = f", redirects to {site.redirect_to}" if site.redirect_status else ""
    return f"site {site.name}{also} on {site.server}, served by {serves}{redirect}"[:500]


def _heal(steps: list[HealStep]) -> list[Raw]:
    return [{"run": s.run, "args": list(s.args), "settle": _seconds(s.settle),
             "timeout": _seconds(s.timeout)} for s in steps]


def _seconds(value: float) -> str:
    """A duration in the config's own notation (the models read strings)."""
    return f"{value * 1000:.0f}ms"


def _ranges(ranges: dict[str, Any]) -> dict[str, str]:
    return {metric: bound.text for metric, bound in ranges.items()}


def _literal(text: str) -> str:
    import re

    return re.escape(text)
