"""Sites of a running Apache httpd, from its vhost dump (``apache2ctl -S``) and the
``<VirtualHost>`` blocks it names.

The dump gives each name-based vhost's address, port, name, aliases and the file and line
of its block; the block gives its DocumentRoot, TLS (``SSLEngine on``), a server-wide
``Redirect``, and what serves it (``SetHandler "proxy:unix:...|fcgi://..."``,
``ProxyPass`` / ``ProxyPassMatch``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from monitord.discover.model import Backend, Discovery, Site, Skipped
from monitord.discover.names import host_name, why_not_watched

_ADDRESS = re.compile(r"^(?P<addr>\S+):(?P<port>\d+)\s+is a NameVirtualHost")
_SINGLE = re.compile(r"^(?P<addr>\S+):(?P<port>\d+)\s+(?P<name>\S+)\s+\((?P<src>[^)]+)\)")
_VHOST = re.compile(r"^\s+(?:default server|port (?P<port>\d+) namevhost)\s+(?P<name>\S+)"
                    r"\s+\((?P<src>[^)]+)\)")
_ALIAS = re.compile(r"^\s+(?:wild )?alias\s+(?P<alias>\S+)")
_PID = re.compile(r'^PidFile:\s+"?(?P<pid>[^"]+)"?')
MAX_BLOCK_LINES = 2000

ReadFile = Callable[[str], list[str]]


def sites_from_dump(text: str, read: ReadFile) -> Discovery:
    """Sites of ``apache2ctl -S``'s output; ``read`` gives a vhost file's lines."""
    found = Discovery(servers={"apache2": _pid(text)})
    aliases: dict[int, list[str]] = {}      # a site's index -> the aliases listed after it
    address, seen = "", set[str]()
    for line in text.splitlines():
        single = _SINGLE.match(line)
        head = _ADDRESS.match(line) or single
        vhost = _VHOST.match(line)
        if head is not None:
            address = head.group("addr")
        if single is not None or (vhost is not None and vhost.group("port")):
            match = single or vhost
            assert match is not None
            port = int(match.group("port"))
            if _vhost(found, address, port, match.group("name"), match.group("src"), read,
                      seen):
                aliases[len(found.sites) - 1] = []
        elif (alias := _ALIAS.match(line)) is not None and found.sites \
                and len(found.sites) - 1 in aliases:
            aliases[len(found.sites) - 1].append(alias.group("alias"))
    found.files = sorted(seen_files(seen))
    return _with_aliases(found, aliases)


def seen_files(sources: set[str]) -> set[str]:
    return {source.rpartition(":")[0] for source in sources}


def _pid(text: str) -> str:
    for line in text.splitlines():
        match = _PID.match(line)
        if match:
            return match.group("pid")
    return "/run/apache2/apache2.pid"


def _vhost(found: Discovery, address: str, port: int, name: str, source: str, read: ReadFile,
           seen: set[str]) -> bool:
    """One vhost of the dump, added to ``found``: whether it is watched."""
    if source in seen:
        return False
    seen.add(source)
    block = _block(source, read)
    if not any(re.match(r"\s*ServerName\s", line, re.I) for line in block):
        found.skipped.append(Skipped("apache2", name, "no ServerName (the catch-all default "
                                     "of its address)", source))
        return False
    reason = why_not_watched(name)
    if reason:
        found.skipped.append(Skipped("apache2", name, reason, source))
        return False
    settings = _settings(block)
    redirect = _redirect(settings)
    local = {"*": "127.0.0.1", "_default_": "127.0.0.1", "0.0.0.0": "127.0.0.1",
             "[::]": "::1"}.get(address, address.strip("[]"))
    tls = settings.get("sslengine", [""])[0].lower() == "on"
    site = Site("apache2", host_name(name), (), local, port, tls, redirect[0], redirect[1],
                settings.get("documentroot", [""])[0], tuple(_backends(settings)), source)
    found.sites.append(site)
    return True


def _with_aliases(found: Discovery, pending: dict[int, list[str]]) -> Discovery:
    """Fold the aliases listed after each vhost into its site, skipping bad ones."""
    for index, aliases in pending.items():
        site = found.sites[index]
        good = []
        for alias in aliases:
            reason = why_not_watched(alias)
            if reason:
                found.skipped.append(Skipped("apache2", alias, reason, site.source))
            elif host_name(alias) not in good and host_name(alias) != site.name:
                good.append(host_name(alias))
        found.sites[index] = replace(site, aliases=tuple(good))
    return found


def _block(source: str, read: ReadFile) -> list[str]:
    """The lines of the ``<VirtualHost>`` block that starts at ``source`` (file:line)."""
    path, _, number = source.rpartition(":")
    if not number.isdigit():
        return []
    lines = read(path)[int(number) - 1 :][:MAX_BLOCK_LINES]
    for end, line in enumerate(lines):
        if re.match(r"\s*</VirtualHost>", line, re.I):
            return lines[: end + 1]
    return lines


def _settings(block: list[str]) -> dict[str, list[str]]:
    """Each directive's words, the first of each name (nested sections included)."""
    found: dict[str, list[str]] = {}
    for line in block:
        words = re.findall(r'"[^"]*"|\S+', line.strip())
        if words and not words[0].startswith(("#", "<")):
            found.setdefault(words[0].lower(), [w.strip('"') for w in words[1:]] or [""])
            if words[0].lower() in ("sethandler", "proxypass", "proxypassmatch"):
                found.setdefault(f"all:{words[0].lower()}", []).extend(
                    w.strip('"') for w in words[1:])
    return found


def _redirect(settings: dict[str, list[str]]) -> tuple[int, str]:
    """``Redirect [status] / URL`` or ``RedirectPermanent / URL`` for the whole site."""
    words = settings.get("redirect") or settings.get("redirectpermanent")
    if not words:
        return 0, ""
    status = {"permanent": 301, "temp": 302, "seeother": 303}.get(words[0].lower())
    if status is None and words[0].isdigit():
        status = int(words[0])
    rest = words[1:] if status is not None or words[0].lower() in ("gone",) else words
    if "redirectpermanent" in settings and not settings.get("redirect"):
        status = 301
    if len(rest) >= 2 and rest[0] == "/":
        return status or 302, rest[1]
    return 0, ""


def _backends(settings: dict[str, list[str]]) -> list[Backend]:
    found: list[Backend] = []
    for word in settings.get("all:sethandler", []) + settings.get("all:proxypassmatch", []) \
            + settings.get("all:proxypass", []):
        backend = _backend(word)
        if backend is not None and backend not in found:
            found.append(backend)
    return found or [Backend("static")]


def _backend(word: str) -> Backend | None:
    if word.startswith("proxy:unix:"):          # proxy:unix:/run/php/x.sock|fcgi://localhost
        return Backend("php-fpm", "unix:" + word[len("proxy:unix:"):].split("|", 1)[0])
    match = re.match(r"^(?:proxy:)?(fcgi|https?)://([^/]+)", word)
    if match is None or "$" in match.group(2):
        return None
    if match.group(1) == "fcgi":
        return Backend("php-fpm", match.group(2))
    target = match.group(2) if ":" in match.group(2) else f"{match.group(2)}:80"
    return Backend("upstream", target)
