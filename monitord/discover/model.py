"""What discovery finds: sites, the names it skipped and why, PHP-FPM pools.

Plain data, kept as JSON in the state directory (the last good discovery), so a broken
web server config or a restart during one keeps the set that was watched.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Server = Literal["nginx", "apache2"]
BackendKind = Literal["php-fpm", "upstream", "static"]


@dataclass(frozen=True, slots=True)
class Backend:
    """What serves a site: a PHP-FPM pool's socket or address, or an upstream address."""

    kind: BackendKind
    target: str = ""          # "unix:/run/php/www.sock", "127.0.0.1:9000", "127.0.0.1:8081"


@dataclass(frozen=True, slots=True)
class Site:
    server: Server
    name: str                  # the primary name: the Host header and the TLS server name
    aliases: tuple[str, ...]
    address: str               # where to reach it on this machine: "127.0.0.1", "::1"
    port: int
    tls: bool
    redirect_status: int = 0   # a server-wide redirect: its status, and where to
    redirect_to: str = ""
    root: str = ""
    backends: tuple[Backend, ...] = ()
    source: str = ""           # "file:line" of its server block

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        scheme = "https" if self.tls else "http"
        default = 443 if self.tls else 80
        port = "" if self.port == default else f":{self.port}"
        return f"{scheme}://{host}{port}/"


@dataclass(frozen=True, slots=True)
class Skipped:
    """A server block or a name that is not watched, and why."""

    server: Server
    name: str                  # as written ("_", "~^www\\d+", "*.example.com", "")
    reason: str
    source: str = ""


@dataclass(frozen=True, slots=True)
class Pool:
    """A PHP-FPM pool from its pool file."""

    name: str
    listen: str                # "unix:/run/php/www.sock" or "127.0.0.1:9001"
    ondemand: bool = False     # pm = ondemand: no workers while idle
    source: str = ""


@dataclass
class Discovery:
    sites: list[Site] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    pools: list[Pool] = field(default_factory=list)
    servers: dict[str, str] = field(default_factory=dict)   # server -> its pid file
    errors: dict[str, str] = field(default_factory=dict)    # server -> why it failed
    files: list[str] = field(default_factory=list)          # the config files read
    fingerprint: str = ""       # of those files and the servers' workers, when read

    def to_json(self) -> dict[str, Any]:
        return {"sites": [asdict(s) for s in self.sites],
                "skipped": [asdict(s) for s in self.skipped],
                "pools": [asdict(p) for p in self.pools],
                "servers": dict(self.servers), "errors": dict(self.errors),
                "files": list(self.files), "fingerprint": self.fingerprint}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Discovery:
        sites = [Site(**{**s, "aliases": tuple(s["aliases"]),
                         "backends": tuple(Backend(**b) for b in s["backends"])})
                 for s in data.get("sites", [])]
        return cls(sites, [Skipped(**s) for s in data.get("skipped", [])],
                   [Pool(**p) for p in data.get("pools", [])],
                   dict(data.get("servers", {})), dict(data.get("errors", {})),
                   list(data.get("files", [])), str(data.get("fingerprint", "")))

    def same_sites(self, other: Discovery) -> bool:
        """Whether ``other`` would be watched the same way (errors aside)."""
        return (self.sites, self.pools, self.servers) == (other.sites, other.pools,
                                                          other.servers)
