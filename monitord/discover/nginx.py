"""Sites of a running nginx, from its effective configuration (``nginx -T``).

Each ``server`` block of ``http`` gives a site per scheme for its first watchable name:
where it listens (a wildcard address is asked on loopback), TLS or not, a server-wide
redirect, its root, and what serves it (``fastcgi_pass`` to a PHP-FPM pool, ``proxy_pass``
to an upstream). Names that cannot be asked for (``_``, regular expressions, wildcards,
no name on a default server) are skipped with the reason.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from monitord.discover.model import Backend, Discovery, Site, Skipped
from monitord.discover.names import host_name, why_not_watched
from monitord.discover.nginxconf import Directive, Dump, line_at, resolve, split_dump

REDIRECTS = {301, 302, 303, 307, 308}
DEFAULT_PID = "/run/nginx.pid"


@dataclass(frozen=True, slots=True)
class Listen:
    address: str
    port: int
    tls: bool
    default: bool


def sites_from_dump(text: str) -> Discovery:
    """Sites, skipped names and the pid file of the config in ``nginx -T``'s output."""
    dump = split_dump(text)
    tree = resolve(dump)
    found = Discovery(servers={"nginx": _pid_file(tree, dump)}, files=list(dump.files))
    where = _Where(dump)
    for http in (d for d in tree if d.name == "http"):
        upstreams = {u.args[0]: u for u in http.find("upstream") if u.args}
        for server in http.find("server"):
            _server(server, where(server), upstreams, found)
    return found


class _Where:
    """"file:line" of a directive, counting lines only for the ones asked about."""

    def __init__(self, dump: Dump) -> None:
        self.dump = dump

    def __call__(self, directive: Directive) -> str:
        text = self.dump.files.get(directive.path, "")
        return f"{directive.path}:{line_at(text, directive.offset)}"


def _pid_file(tree: list[Directive], dump: Dump) -> str:
    pid = next((d.args[0] for d in tree if d.name == "pid" and d.args), DEFAULT_PID)
    return pid if os.path.isabs(pid) else os.path.join(os.path.dirname(dump.main), pid)


def _server(server: Directive, source: str, upstreams: dict[str, Directive],
            found: Discovery) -> None:
    listens = [x for d in server.find("listen") if (x := _listen(d.args)) is not None] \
        if server.find("listen") else [Listen("127.0.0.1", 80, False, False)]
    written = [n for d in server.find("server_name") for n in d.args] or [""]
    names: list[str] = []
    for name in written:
        reason = why_not_watched(name.removeprefix("."))
        if reason:
            found.skipped.append(Skipped("nginx", name, reason, source))
        elif host_name(name) not in names:
            names.append(host_name(name))
    if not names or not listens:
        if names:
            found.skipped.append(Skipped("nginx", names[0], "listens on no TCP address",
                                         source))
        return
    for tls in sorted({x.tls for x in listens}):
        listen = next(x for x in listens if x.tls == tls)
        found.sites.append(_site(server, source, names, listen, upstreams))


def _site(server: Directive, source: str, names: list[str], listen: Listen,
          upstreams: dict[str, Directive]) -> Site:
    status, target = _redirect(server)
    root = server.first("root")
    return Site("nginx", names[0], tuple(names[1:]), listen.address, listen.port, listen.tls,
                status, target, root.args[0] if root and root.args else "",
                tuple(_backends(server, upstreams)), source)


def _listen(args: list[str]) -> Listen | None:
    """A ``listen`` directive's address, as reachable from this machine."""
    if not args or args[0].startswith("unix:") or "quic" in args[1:]:
        return None
    where = args[0]
    match = re.fullmatch(r"(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:]+))?:?(?P<port>\d+)?", where)
    if match is None:
        return None
    host = match.group("v6") or match.group("host") or "*"
    if host.isdigit() and match.group("port") is None:     # "listen 8080;"
        host, port = "*", int(host)
    else:
        port = int(match.group("port") or 80)
    if not 1 <= port <= 65535:
        return None
    address = {"*": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1",
               "localhost": "127.0.0.1"}.get(host, host)
    flags = set(args[1:])
    return Listen(address, port, "ssl" in flags,
                  bool(flags & {"default_server", "default"}))


def _redirect(server: Directive) -> tuple[int, str]:
    """A redirect of the whole server: ``return 301 URL`` in the server or its
    ``location /``."""
    places = [server, *(d for d in server.find("location") if d.args == ["/"])]
    for place in places:
        ret = place.first("return")
        if ret is not None and ret.args and ret.args[0].isdigit() \
                and int(ret.args[0]) in REDIRECTS and len(ret.args) > 1:
            return int(ret.args[0]), ret.args[1]
    return 0, ""


def _backends(server: Directive, upstreams: dict[str, Directive]) -> list[Backend]:
    found: list[Backend] = []
    for directive in _walk(server):
        if directive.name == "fastcgi_pass" and directive.args:
            found.append(Backend("php-fpm", _address(directive.args[0], upstreams)))
        elif directive.name == "proxy_pass" and directive.args:
            target = re.sub(r"^https?://", "", directive.args[0]).split("/", 1)[0]
            found.append(Backend("upstream", _address(target, upstreams)))
    unique = list(dict.fromkeys(b for b in found if b.target))
    return unique or [Backend("static")]


def _address(target: str, upstreams: dict[str, Directive]) -> str:
    """An upstream's first server, or the address itself ("" for one made of variables)."""
    if "$" in target:
        return ""
    upstream = upstreams.get(target)
    if upstream is not None:
        server = upstream.first("server")
        target = server.args[0] if server and server.args else ""
    if target.startswith("unix:"):
        return target
    if target and ":" not in target.lstrip("["):
        target += ":80"
    return target


def _walk(directive: Directive) -> list[Directive]:
    out: list[Directive] = []
    for child in directive.block or []:
        out.append(child)
        if child.block is not None:
            out.extend(_walk(child))
    return out
