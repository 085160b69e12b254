"""Following the web server as it changes: re-discover when its config files or its
workers change (polled every ``[sites] poll_every``) and at least every ``rescan_every``;
when the set of sites changes, keep it as the last good discovery and ask for a reload,
the daemon's SIGHUP path (unchanged checks keep their state and rhythm, removed ones are
retired). A server whose dump fails (a broken config) keeps its last good sites.

Retiring: a removed site's check that had an open incident gets a recovery-like event,
"site removed from the web server", so its incident is resolved.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from monitord.agent.crowd import NAME as NAME_DOWN
from monitord.agent.crowd import Crowd
from monitord.agent.events import EventMaker
from monitord.agent.healer import Outcome
from monitord.agent.slowness import NAME as NAME_SLOW
from monitord.agent.slowness import Slowness
from monitord.agent.state import CheckState
from monitord.config import Config
from monitord.discover import snapshot
from monitord.discover.model import Discovery
from monitord.discover.run import discover
from monitord.discover.watch import fingerprint
from monitord.events import Event, new_id, utc_now
from monitord.model import Result
from monitord.probes.base import CheckBase
from monitord.texts import plural

log = logging.getLogger("monitord.sites")
IO_TIMEOUT = 10.0
SHOWN_NAMES = 5


class Sender(Protocol):
    async def send(self, event: Event, state: CheckState | None = None) -> bool: ...


class SiteWatcher:
    def __init__(self, config: Config, reload: Callable[[], None]) -> None:
        self.config = config
        self.sites = config.sites
        self.reload = reload
        self.last = config.discovered.discovery     # the set the running config watches
        self.failed: dict[str, str] = {}            # server -> the error last logged

    async def run(self) -> None:
        """Until cancelled: discover when something changed, reload when the set did."""
        due = 0.0 if self.last is None else time.monotonic() + self.sites.rescan_every
        while True:
            changed = await self._changed()
            if changed or time.monotonic() >= due:
                due = time.monotonic() + self.sites.rescan_every
                await self.rediscover()     # a reload, if any, replaces this agent
            await asyncio.sleep(self.sites.poll_every)

    async def _changed(self) -> bool:
        if self.last is None:
            return True
        try:
            now = await self._fingerprint(self.last)
        except (OSError, TimeoutError) as e:
            log.debug("sites: cannot look at the web server's files: %s", e)
            return False
        return now != self.last.fingerprint

    async def _fingerprint(self, found: Discovery) -> str:
        async with asyncio.timeout(IO_TIMEOUT):
            return await asyncio.to_thread(fingerprint, found.files,
                                           list(found.servers.values()),
                                           self.sites.php_fpm.pool_files)

    async def rediscover(self) -> bool:
        """Discover now; whether the set changed (and a reload was asked for)."""
        try:
            found = await discover(self.sites)
            kept = self._keep_good(found)
            kept.fingerprint = await self._fingerprint(kept)
        except (OSError, TimeoutError) as e:
            log.error("sites: discovery failed (%s); the watched sites stay as they are",
                      e or type(e).__name__)
            return False
        if self.last is not None and kept.same_sites(self.last):
            self.last.fingerprint = kept.fingerprint
            await self._save(kept, [])
            return False
        removed = _removed(self.last, kept)
        await self._save(kept, removed)
        log.info("sites: %s", describe_change(self.last, kept))
        self.last = kept
        self.reload()
        return True

    def _keep_good(self, found: Discovery) -> Discovery:
        """``found``, with the last good sites of any server whose dump failed."""
        for server, error in found.errors.items():
            if self.failed.get(server) != error:
                log.error("sites: %s: %s; keeping the last good set of its sites",
                          server, error)
            self.failed[server] = error
            if self.last is not None:
                found.sites += [s for s in self.last.sites if s.server == server]
                found.skipped += [s for s in self.last.skipped if s.server == server]
                if server in self.last.servers:
                    found.servers[server] = self.last.servers[server]
                found.files += [f for f in self.last.files if f not in found.files]
        for server in [s for s in self.failed if s not in found.errors]:
            log.info("sites: %s: its config reads again", server)
            del self.failed[server]
        return found

    async def _save(self, found: Discovery, removed: list[str]) -> None:
        async with asyncio.timeout(IO_TIMEOUT):
            await asyncio.to_thread(snapshot.save, self.config.agent.state_dir, found,
                                    removed)


async def discover_once(config: Config) -> bool:
    """Before the daemon's first config, when no discovery is kept: discover now, so the
    sites are watched from the start rather than a reload later. Whether one was kept."""
    try:
        found = await discover(config.sites)
        found.fingerprint = await asyncio.to_thread(
            fingerprint, found.files, list(found.servers.values()),
            config.sites.php_fpm.pool_files)
    except (OSError, TimeoutError) as e:
        log.error("sites: discovery failed (%s); trying again while running", e)
        return False
    for server, error in found.errors.items():
        log.error("sites: %s: %s", server, error)
    if found.errors and not found.sites:
        return False
    await asyncio.to_thread(snapshot.save, config.agent.state_dir, found, [])
    log.info("sites: %s", plural(len(found.sites), "site") + " discovered")
    return True


def _removed(before: Discovery | None, after: Discovery) -> list[str]:
    if before is None:
        return []
    now = {s.name for s in after.sites}
    return sorted({s.name for s in before.sites} - now)


def describe_change(before: Discovery | None, after: Discovery) -> str:
    """One line: what was added and removed."""
    old = {s.name for s in before.sites} if before is not None else set()
    new = {s.name for s in after.sites}
    added, gone = sorted(new - old), sorted(old - new)
    parts = [f"{plural(len(new), 'site')} discovered"]
    if added and before is not None:
        parts.append(f"{len(added)} added ({_names(added)})")
    if gone:
        parts.append(f"{len(gone)} removed ({_names(gone)})")
    if before is not None and not added and not gone:
        parts.append("sites changed")
    return ", ".join(parts) + "; reloading"


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES])
    return shown + (f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES
                    else "")


async def retire(sender: Sender, config: Config, saved: dict[str, CheckState],
                 keep: set[str]) -> None:
    """Resolve the incidents of checks of removed sites: their checks are gone, so no
    recovery would ever come."""
    for name, why in sorted(config.discovered.retired.items()):
        state = saved.get(name)
        if name in keep or state is None or not state.escalated:
            continue
        log.info("%s: %s; its incident is resolved", name, why)
        summary = f"{why}: its check was retired"
        await sender.send(Event(id=new_id(), kind="recovery", host=config.host, check=name,
                                at=utc_now(), status="OK", summary=summary,
                                title=f"{config.host}/{name}: {why}",
                                body=f"{name} on {config.host}: {summary}."))


class Flow(Sender, Protocol):
    """What the site work needs of the agent's flow (``flow.CheckFlow``)."""

    config: Config
    events: EventMaker
    result_hooks: list[Callable[[CheckBase, Result], None]]
    crowd: Callable[[str, float], tuple[str | None, bool]] | None

    async def escalate(self, outcome: Outcome) -> None: ...


class SiteWork:
    """Everything the agent does for discovered sites: follow the web server, judge many
    sites down and the server slow, retire removed sites. Idle without [sites]."""

    def __init__(self, flow: Flow, reload: Callable[[], None]) -> None:
        config = flow.config
        self.flow = flow
        self.enabled = config.sites.enabled
        site_checks = {c.name: c.every for c in config.checks
                       if c.name in config.discovered.site_of and c.probe == "http"}
        self.watcher = SiteWatcher(config, reload)
        self.crowd = Crowd(set(site_checks), config.sites.down, config.host, self._escalate,
                           self._recover)
        self.slowness = Slowness(site_checks, config.sites.slow, config.host, self._escalate,
                                 self._recover)
        self.opened: set[str] = set()          # the aggregate incidents open now
        if self.enabled:
            flow.result_hooks += [self.crowd.observe, self.slowness.observe]
            flow.crowd = self.crowd.waited_on

    async def start(self, saved: dict[str, CheckState], keep: set[str]) -> None:
        """After the outbox opens: resolve removed sites' incidents; take up the
        aggregate incidents that were open when the daemon last stopped."""
        await retire(self.flow, self.flow.config, saved, keep)
        if self.enabled:
            self.opened = set(await asyncio.to_thread(_load_open,
                                                      self.flow.config.agent.state_dir))
            self.crowd.resume(NAME_DOWN in self.opened)
            self.slowness.open = NAME_SLOW in self.opened

    async def run(self) -> None:
        """The watcher and the slowness judge, until cancelled; a failure of either is
        logged and never ends the agent."""
        if not self.enabled:
            return
        await asyncio.gather(_logged(self.watcher.run(), "following the web server"),
                             _logged(self.slowness.run(), "judging the server's speed"))

    async def close(self) -> None:
        await self.crowd.close()

    async def _escalate(self, outcome: Outcome) -> None:
        await self.flow.escalate(outcome)
        self.opened.add(outcome.check)
        await self._save_open()

    async def _recover(self, name: str, result: Result) -> None:
        await self.flow.send(self.flow.events.recovery(name, result))
        self.opened.discard(name)
        await self._save_open()

    async def _save_open(self) -> None:
        try:
            async with asyncio.timeout(IO_TIMEOUT):
                await asyncio.to_thread(_save_open, self.flow.config.agent.state_dir,
                                        sorted(self.opened))
        except (OSError, TimeoutError) as e:
            log.error("sites: cannot keep the open aggregate incidents (%s)", e)


async def _logged(work: Awaitable[None], what: str) -> None:
    try:
        await work
    except Exception:   # the agent's checks matter more than this
        log.exception("sites: %s failed; it stops until the next reload", what)


OPEN_FILE = "aggregates.json"


def _load_open(state_dir: str) -> list[str]:
    try:
        with open(Path(state_dir) / OPEN_FILE, encoding="utf-8") as f:
            return [str(n) for n in json.load(f)]
    except (OSError, ValueError, TypeError):
        return []


def _save_open(state_dir: str, names: list[str]) -> None:
    path = Path(state_dir) / OPEN_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(names), encoding="utf-8")
    os.replace(temporary, path)
