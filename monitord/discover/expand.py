"""The site rules applied to the last good discovery: validated checks for the config.

The checks are validated by the probes' own models, like any the admin writes. A site
whose checks do not validate (a name the web server accepts and a check refuses) is
skipped with the reason; the rules themselves are validated on a sample site first
(``sample``), so a mistake in them is one config error, not one per site.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError

from monitord.discover import snapshot
from monitord.discover.checks import Generated, Raw, generate
from monitord.discover.model import Backend, Discovery, Pool, Site, Skipped
from monitord.discover.names import check_base
from monitord.discover.rules import Sites
from monitord.probes import REGISTRY
from monitord.probes.base import CheckBase
from monitord.schema import messages

REMOVED = "site removed from the web server"


@dataclass
class Expansion:
    checks: list[CheckBase] = field(default_factory=list)
    discovery: Discovery | None = None
    site_of: dict[str, str] = field(default_factory=dict)     # check -> site name
    skipped: list[Skipped] = field(default_factory=list)
    retired: dict[str, str] = field(default_factory=dict)     # check -> why it went


def sample(sites: Sites) -> list[Raw]:
    """The checks the rules give a plain and a TLS site behind a pool, on each server."""
    found = Discovery(pools=[Pool("sample", "unix:/run/php/sample.sock")])
    for server in sites.discover:
        backend = Backend("php-fpm", "unix:/run/php/sample.sock")
        found.sites += [Site(server, f"{server}.example", (), "127.0.0.1", 80, False,
                             backends=(backend,)),
                        Site(server, f"{server}.example", (), "127.0.0.1", 443, True,
                             backends=(backend,))]
        found.servers[server] = "/run/sample.pid"
    return generate(found, sites, set()).checks


def expand(sites: Sites, state_dir: str, taken: set[str]) -> Expansion:
    """Checks for the sites of the kept discovery ([] before the first one)."""
    found, removed = snapshot.load(state_dir)
    if found is None:
        return Expansion()
    return expand_found(found, removed, sites, taken)


def expand_found(found: Discovery, removed: list[str], sites: Sites,
                 taken: set[str]) -> Expansion:
    generated = generate(found, sites, taken)
    out = Expansion(discovery=found, skipped=[*found.skipped, *generated.skipped])
    refused: set[str] = set()
    for raw in generated.checks:
        check = _validated(raw, generated, out)
        if check is None:
            refused.add(raw["name"])
        else:
            out.checks.append(check)
    # A site whose parent check was refused waits on nothing rather than on a ghost.
    if refused:
        out.checks = [c.model_copy(update={"depends_on": [p for p in c.depends_on
                                                          if p not in refused]})
                      for c in out.checks]
    out.site_of = {c.name: generated.site_of[c.name] for c in out.checks
                   if c.name in generated.site_of}
    out.retired = {check_base(name) + suffix: REMOVED for name in removed
                   for suffix in ("", "-https", "-cert")}
    return out


def _validated(raw: Raw, generated: Generated, out: Expansion) -> CheckBase | None:
    try:
        return REGISTRY[raw["probe"]].config.model_validate(raw)
    except ValidationError as e:
        model = REGISTRY[raw["probe"]].config
        site = generated.site_of.get(raw["name"]) or str(raw["name"])
        out.skipped.append(Skipped("nginx", site, "its check is refused: "
                                   + "; ".join(messages(e, model))[:300]))
        return None
