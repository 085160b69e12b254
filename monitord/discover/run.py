"""Running discovery: each configured web server's dump through the one subprocess path,
parsed off the event loop, every step under a deadline; PHP-FPM's pool files read.

A server whose dump fails (``nginx -T`` refusing a broken config, a missing binary) is
reported in ``Discovery.errors`` with its own words; the caller keeps the last good set
for it.
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

from monitord.commands import run_command
from monitord.discover import apache, nginx, phpfpm
from monitord.discover.model import Discovery
from monitord.discover.nginxconf import NginxConfigError
from monitord.discover.rules import NginxSource, Sites

MAX_DUMP_BYTES = 256 * 2**20
MAX_VHOST_FILE_BYTES = 4 * 2**20
ERROR_CHARS = 500


async def discover(sites: Sites) -> Discovery:
    """What ``sites`` says to read, read now."""
    found = Discovery()
    async with asyncio.timeout(sites.discover_timeout):
        for server in sites.discover:
            part = await _server(server, sites)
            found.sites += part.sites
            found.skipped += part.skipped
            found.servers.update(part.servers)
            found.errors.update(part.errors)
        found.pools = await asyncio.to_thread(phpfpm.pools, sites.php_fpm.pool_files)
    return found


async def _server(server: str, sites: Sites) -> Discovery:
    command = sites.nginx.command if server == "nginx" else sites.apache2.command
    if server == "nginx" and command == NginxSource().command:
        command = await asyncio.to_thread(as_running, command, DEFAULT_NGINX_PID)
    done = await run_command(command, timeout=sites.discover_timeout,
                             max_output=MAX_DUMP_BYTES)
    if not done.ok or done.truncated:
        why = done.error or _last_words(done.output) or done.describe()
        return Discovery(errors={server: f"{' '.join(command)}: {why}"[:ERROR_CHARS]})
    try:
        if server == "nginx":
            return await asyncio.to_thread(nginx.sites_from_dump, done.output)
        read = functools.lru_cache(maxsize=256)(_read_lines)
        return await asyncio.to_thread(apache.sites_from_dump, done.output, read)
    except NginxConfigError as e:
        return Discovery(errors={server: f"cannot read the dump: {e}"[:ERROR_CHARS]})


DEFAULT_NGINX_PID = "/run/nginx.pid"


def as_running(command: list[str], pid_file: str) -> list[str]:
    """``command`` with the ``-p`` and ``-c`` the running master was started with (its
    command line keeps them: "nginx: master process /usr/sbin/nginx -c /etc/x.conf"), so
    that ``nginx -T`` reads what that nginx reads; ``command`` as it is when no master
    runs from ``pid_file``."""
    import psutil

    try:
        with open(pid_file) as f:
            words = " ".join(psutil.Process(int(f.read(32).strip())).cmdline()).split()
    except (OSError, ValueError, psutil.Error):
        return command
    if "master" not in words[:3]:
        return command
    extra = [w for i, w in enumerate(words[1:], start=1)
             if w in ("-p", "-c") or (i > 1 and words[i - 1] in ("-p", "-c"))]
    return [command[0], *extra, *command[1:]]


def _last_words(output: str) -> str:
    """The server's complaint: the lines of its output that say what is wrong."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    bad = [line for line in lines if any(w in line for w in ("emerg", "rror", "failed"))]
    return "; ".join((bad or lines)[:2])


def _read_lines(path: str) -> list[str]:
    try:
        with Path(path).open(encoding="utf-8", errors="replace") as f:
            return f.read(MAX_VHOST_FILE_BYTES).splitlines()
    except OSError:
        return []
