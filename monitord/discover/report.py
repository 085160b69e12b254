"""``monitord discover``: what would be watched (a table, JSON, or the generated checks as
TOML), what was skipped and why, and what each site depends on."""

from __future__ import annotations

import json
import re
from typing import Any

from monitord.discover.checks import Raw
from monitord.discover.expand import Expansion
from monitord.discover.model import Site

FORMATS = ("table", "json", "toml")
DURATIONS = {"every", "timeout", "retry_every", "flap_quiet", "heal_window", "settle"}


def render(expansion: Expansion, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(as_json(expansion), indent=2)
    if fmt == "toml":
        return "\n".join(_toml_check(_raw(c)) for c in expansion.checks)
    return table(expansion)


def _checks_of(expansion: Expansion, site: Site) -> list[Any]:
    """The checks of ``site``'s server: its HTTP check of its scheme, and for a TLS
    server its certificate check."""
    own = [c for c in expansion.checks if expansion.site_of.get(c.name) == site.name]
    scheme = "https:" if site.tls else "http:"
    return [c for c in own if (c.probe == "http" and getattr(c, "url", "").startswith(scheme))
            or (c.probe != "http" and site.tls)]


def as_json(expansion: Expansion) -> dict[str, Any]:
    found = expansion.discovery
    sites = []
    for site in found.sites if found else []:
        checks = _checks_of(expansion, site)
        sites.append({"name": site.name, "aliases": list(site.aliases), "server": site.server,
                      "address": site.address, "port": site.port, "tls": site.tls,
                      "redirect": {"status": site.redirect_status, "to": site.redirect_to}
                      if site.redirect_status else None,
                      "root": site.root, "source": site.source,
                      "served_by": [{"kind": b.kind, "target": b.target} for b in site.backends],
                      "checks": [c.name for c in checks],
                      "depends_on": checks[0].depends_on if checks else []})
    return {"sites": sites,
            "skipped": [{"server": s.server, "name": s.name, "reason": s.reason,
                         "source": s.source} for s in expansion.skipped],
            "checks": [c.name for c in expansion.checks],
            "errors": dict(found.errors) if found else {}}


def table(expansion: Expansion) -> str:
    data = as_json(expansion)
    rows = [("SITE", "CHECKS", "LISTENS", "SERVED BY", "DEPENDS ON")]
    for site in data["sites"]:
        where = f"{site['address']}:{site['port']}" + (" tls" if site["tls"] else "")
        serves = ", ".join(f"{b['kind']} {b['target']}".strip() for b in site["served_by"])
        if site["redirect"]:
            serves = f"redirect {site['redirect']['status']} to {site['redirect']['to']}"
        rows.append((site["name"], ", ".join(site["checks"]) or "-", where, serves,
                     ", ".join(site["depends_on"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
             for r in rows]
    names = {site["name"] for site in data["sites"]}
    lines.append(f"\n{len(names)} sites ({len(data['sites'])} servers), "
                 f"{len(data['checks'])} checks")
    if data["skipped"]:
        lines.append(f"\nskipped ({len(data['skipped'])}):")
        lines += [f"  {s['name'] or '(no name)'}  {s['reason']}"
                  + (f"  [{s['source']}]" if s["source"] else "") for s in data["skipped"]]
    for server, error in data["errors"].items():
        lines.append(f"\n{server}: discovery failed: {error}")
    return "\n".join(lines)


def _raw(check: Any) -> Raw:
    """A check as the TOML an admin would write (defaults left out)."""
    raw: Raw = {}
    for key, value in check.model_dump(exclude_defaults=True).items():
        if isinstance(value, re.Pattern):
            value = value.pattern
        raw[key] = value
    raw["name"], raw["probe"] = check.name, check.probe
    for key in ("warn", "crit"):
        if key in raw:
            raw[key] = {m: r.text for m, r in getattr(check, key).items()}
    return raw


def _toml_check(raw: Raw) -> str:
    lines = ["[[check]]", f"name = {_toml(raw.pop('name'))}", f"probe = {_toml(raw.pop('probe'))}"]
    lines += [f"{key} = {_toml(value, key)}" for key, value in raw.items()]
    return "\n".join(lines) + "\n"


def _toml(value: Any, key: str = "") -> str:
    if key in DURATIONS and isinstance(value, float):
        return json.dumps(f"{value * 1000:.0f}ms" if value % 1 else f"{value:.0f}s")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)          # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml(v, str(k))}"
                                for k, v in value.items()) + " }"
    return json.dumps(str(value))
