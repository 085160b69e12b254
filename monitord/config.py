"""Loading the agent's TOML config: includes, stock packs, strict validation.

Every problem in every file is collected and reported at once, each as
``FILE: check "NAME": KEY: what was expected, got what was found``.
"""

from __future__ import annotations

import glob
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from monitord.discover.expand import Expansion, expand, sample
from monitord.discover.rules import Sites
from monitord.errors import ConfigError
from monitord.fixes import available_fixes, find_fix, fix_dirs
from monitord.graph import MAX_DEPTH, find_cycles, too_deep
from monitord.loader import Loader, check_keys, section
from monitord.model import Priority
from monitord.probes import REGISTRY
from monitord.probes.base import OWN_COMMANDS, CheckBase
from monitord.schema import (
    Duration,
    DurationOrZero,
    OptionalPriority,
    PolicyConfig,
    PriorityField,
    StrictModel,
    found,
    messages,
    show_path,
    suggest,
)

PACK_PREFIX = "pack:"
SOURCE_PACKS = Path(__file__).resolve().parent.parent / "checks"
INSTALLED_PACKS = Path("/usr/share/monitord/checks")


class AgentConfig(StrictModel):
    host: str = Field(default="", pattern=r"^([A-Za-z0-9][A-Za-z0-9_.:-]{0,199})?$")
    state_dir: str = "/var/lib/monitord"
    max_concurrent_probes: int = Field(default=100, ge=1, le=10000)
    start_rate: float = Field(default=50.0, gt=0)
    packs_dir: str = ""
    shutdown_timeout: Duration = 10.0


class Defaults(StrictModel):
    every: Duration = 60.0
    timeout: Duration = 10.0
    fail_after: int = Field(default=3, ge=1, le=100)
    retry_every: Duration = 2.0    # a first failure is confirmed at this pace, not every's
    recover_after: int = Field(default=2, ge=1, le=100)
    priority: PriorityField = Priority.P3
    warning_priority: OptionalPriority = None
    flap_window: int = Field(default=20, ge=4, le=200)
    flap_threshold: float = Field(default=0.5, gt=0, le=1)
    flap_quiet: Duration = 300.0   # steady this long ends a flapping spell
    heal_budget: int = Field(default=3, ge=0, le=100)
    heal_window: Duration = 3600.0


class HealerConfig(StrictModel):
    dry_run: bool = False
    grace: DurationOrZero = 120.0
    max_concurrent_fixes: int = Field(default=2, ge=1, le=100)
    remediations_dir: str = "/etc/monitord/remediations.d"
    max_output_bytes: int = Field(default=65536, ge=1024, le=10485760)


class StoreConfig(StrictModel):
    url: str = ""                 # "" = sqlite://STATE_DIR/incidents.db (the embedded store)
    token_file: str = ""          # this agent's token for a central service (https:// URL)
    verify_tls: bool = True

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value and not value.startswith(("sqlite:///", "http://", "https://")):
            raise ValueError('expected "sqlite:///PATH" or a central service URL like '
                             '"https://central.example:8460"')
        return value


class OutboxConfig(StrictModel):
    max_rows: int = Field(default=100_000, ge=100)
    max_bytes: int = Field(default=64 * 2**20, ge=2**20)
    min_free_bytes: int = Field(default=100 * 2**20, ge=0)
    batch: int = Field(default=100, ge=1, le=500)


class HeartbeatConfig(StrictModel):
    every: Duration = 60.0

    @field_validator("every")
    @classmethod
    def _at_most_a_day(cls, value: float) -> float:
        if value > 86400:   # the store's bound on a heartbeat's interval
            raise ValueError("expected a duration of at most 1d")
        return value


class StatusConfig(StrictModel):
    """The local status endpoint: "127.0.0.1:PORT", "unix:/PATH", or "" for none."""

    listen: str = Field(default="127.0.0.1:8461",
                        pattern=r"^(|unix:/.+|(127\.0\.0\.1|localhost|\[::1\]):\d{1,5})$")
    max_reading_series: int = Field(default=5000, ge=0, le=1000000)   # /metrics: readings

    @field_validator("listen")
    @classmethod
    def _port(cls, value: str) -> str:
        port = value.rpartition(":")[2]
        if value and not value.startswith("unix:") and not 1 <= int(port) <= 65535:
            raise ValueError("expected a port from 1 to 65535")
        return value


class TemplatesConfig(StrictModel):
    dir: str = "/etc/monitord/templates"


@dataclass
class Config:
    agent: AgentConfig
    checks: list[CheckBase]
    files: list[Path]
    sources: dict[str, Path] = field(default_factory=dict)
    healer: HealerConfig = field(default_factory=HealerConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    heartbeat: HeartbeatConfig = field(default_factory=HeartbeatConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    templates: TemplatesConfig = field(default_factory=TemplatesConfig)
    status: StatusConfig = field(default_factory=StatusConfig)
    sites: Sites = field(default_factory=Sites)
    discovered: Expansion = field(default_factory=Expansion)

    @property
    def store_url(self) -> str:
        """The store the outbox delivers to; the embedded SQLite file unless configured."""
        return self.store.url or f"sqlite://{Path(self.agent.state_dir).resolve()}/incidents.db"

    @property
    def host(self) -> str:
        return self.agent.host or socket.gethostname()

    def check(self, name: str) -> CheckBase:
        for check in self.checks:
            if check.name == name:
                return check
        hint = suggest(name, [c.name for c in self.checks])
        raise ConfigError([f"no check named {found(name)}{hint}"])


SECTIONS: dict[str, type[StrictModel]] = {
    "store": StoreConfig,
    "outbox": OutboxConfig,
    "heartbeat": HeartbeatConfig,
    "policy": PolicyConfig,
    "templates": TemplatesConfig,
    "status": StatusConfig,
    "sites": Sites,
}
TOP_LEVEL = {"include", "agent", "defaults", "healer", "check", *SECTIONS}


@dataclass
class _Loader(Loader):
    """The agent's loader: its files, and the [[check]] tables found in them."""

    raw_checks: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)

    def take_checks(self, path: Path, data: dict[str, Any]) -> None:
        checks = data.get("check", [])
        if not isinstance(checks, list) or not all(isinstance(c, dict) for c in checks):
            self.fail(path, "check: expected [[check]] tables")
            return
        self.raw_checks.extend((path, c) for c in checks)


def load_config(path: str | Path, state_dir: str | None = None) -> Config:
    """Load and validate ``path`` and its includes; raise ConfigError listing every problem."""
    main = Path(path)
    loader = _Loader(main)
    data = loader.read(main)
    if data is None:
        raise ConfigError(loader.problems)
    check_keys(loader, main, data, TOP_LEVEL)
    agent = section(loader, main, data, "agent", AgentConfig) or AgentConfig()
    if state_dir is not None:
        agent = agent.model_copy(update={"state_dir": state_dir})
    healer = section(loader, main, data, "healer", HealerConfig) or HealerConfig()
    extra: dict[str, Any] = {name: section(loader, main, data, name, model) or model()
                             for name, model in SECTIONS.items()}
    valid_defaults = section(loader, main, data, "defaults", Defaults) is not None
    defaults = data.get("defaults", {}) if valid_defaults else {}
    loader.take_checks(main, data)
    for included in _includes(loader, main, data, agent):
        sub = loader.read(included)
        if sub is not None:
            _check_included(loader, included, sub)
            loader.take_checks(included, sub)
    checks, sources = _validate_checks(loader, defaults)
    discovered = _discovered(loader, main, extra["sites"], agent, healer, sources)
    checks += discovered.checks
    sources.update(dict.fromkeys((c.name for c in discovered.checks), main))
    _cross_check(loader, checks, sources)
    _check_ladders(loader, checks, sources, fix_dirs(healer.remediations_dir))
    if loader.problems:
        raise ConfigError(loader.problems)
    return Config(agent, checks, loader.files, sources, healer, **extra,
                  discovered=discovered)


def _discovered(loader: _Loader, main: Path, sites: Sites, agent: AgentConfig,
                healer: HealerConfig, sources: dict[str, Path]) -> Expansion:
    """The checks of the discovered sites (config errors if the site rules make bad
    checks, checked on a sample site: one error per mistake, not one per site)."""
    if not sites.enabled:
        return Expansion()
    if sites.server_check and sites.server_check not in sources:
        loader.fail(main, f"[sites] server_check: no check named {found(sites.server_check)}"
                    f"{suggest(sites.server_check, sorted(sources))}")
    trial = _Loader(main, raw_checks=[(main, raw) for raw in sample(sites)])
    checks, trial_sources = _validate_checks(trial, {})
    _cross_check(trial, checks, trial_sources)
    _check_ladders(trial, checks, trial_sources, fix_dirs(healer.remediations_dir))
    problems = {re.sub(r'^.*?: check "[^"]*": ', "", p) for p in trial.problems
                if "depends_on: no check named" not in p}
    for problem in sorted(problems):
        loader.fail(main, f"[sites] {problem}")
    if problems or loader.problems:
        return Expansion()
    return expand(sites, agent.state_dir, set(sources))


def packs_dir(agent: AgentConfig) -> Path:
    """Where ``pack:NAME`` includes are found: config, else the source tree, else /usr/share."""
    if agent.packs_dir:
        return Path(agent.packs_dir)
    return SOURCE_PACKS if SOURCE_PACKS.is_dir() else INSTALLED_PACKS


def _includes(loader: _Loader, main: Path, data: dict[str, Any], agent: AgentConfig) -> list[Path]:
    patterns = data.get("include", [])
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        loader.fail(main, f"include: expected a list of file globs, got {patterns!r}")
        return []
    paths: list[Path] = []
    for pattern in patterns:
        if pattern.startswith(PACK_PREFIX):
            paths.extend(_pack(loader, main, pattern[len(PACK_PREFIX) :], agent))
            continue
        full = main.parent / pattern
        if glob.has_magic(pattern):
            paths.extend(Path(p) for p in sorted(glob.glob(str(full))))
        elif full.exists() or full.is_symlink():   # a broken or looping link says why
            paths.append(full)
        else:
            loader.fail(main, f"include: {found(pattern)} does not exist")
    return paths


def _pack(loader: _Loader, main: Path, name: str, agent: AgentConfig) -> list[Path]:
    directory = packs_dir(agent)
    path = directory / f"{name}.toml"
    if path.is_file():
        return [path]
    known = sorted(p.stem for p in directory.glob("*.toml"))
    loader.fail(main, f"include: no stock pack {found(name)}{suggest(name, known)} "
                f"(stock packs: {', '.join(known) or 'none found'})")
    return []


def _check_included(loader: _Loader, path: Path, data: dict[str, Any]) -> None:
    for key in data:
        if key != "check":
            loader.fail(path, f"{key}: only [[check]] tables belong in an included file; "
                        "move it to the main config")


def _validate_checks(
    loader: _Loader, defaults: dict[str, Any]
) -> tuple[list[CheckBase], dict[str, Path]]:
    """Validate each [[check]] with its probe's model, the [defaults] table beneath it."""
    checks: list[CheckBase] = []
    sources: dict[str, Path] = {}
    for index, (path, raw) in enumerate(loader.raw_checks):
        label = _label(raw, index)
        kind = raw.get("probe")
        if not isinstance(kind, str) or kind not in REGISTRY:
            loader.fail(path, f"{label}: probe: {_probe_problem(kind)}")
            continue
        model = REGISTRY[kind].config
        merged = {**defaults, **raw}
        try:
            check = model.model_validate(merged)
        except ValidationError as e:
            for message in messages(e, model):
                loader.fail(path, f"{label}: {message}")
            continue
        if check.name in sources:
            first = show_path(sources[check.name])
            loader.fail(path, f"{label}: name: already used by another check in {first}")
            continue
        sources[check.name] = path
        checks.append(check)
    return checks, sources


def _cross_check(loader: _Loader, checks: list[CheckBase], sources: dict[str, Path]) -> None:
    names = {c.name for c in checks}
    for check in checks:
        where, label = sources[check.name], f'check "{check.name}"'
        if check.timeout > check.every:
            loader.fail(where, f"{label}: timeout: must not be longer than every "
                        f"({check.timeout:g}s > {check.every:g}s)")
        for parent in check.depends_on:
            if parent not in names:
                loader.fail(where, f"{label}: depends_on: no check named {found(parent)}"
                            f"{suggest(parent, sorted(names))}")
        for key in ("warn", "crit"):
            for metric in getattr(check, key):
                known = sorted(check.metric_names())
                if metric not in known:
                    loader.fail(where, f"{label}: {key}.{metric}: unknown metric for probe "
                                f"{found(check.probe)}{suggest(metric, known)}"
                                f" (known: {', '.join(known)})")
    cycles = find_cycles(checks)
    for cycle in cycles:
        shown = cycle if len(cycle) <= 12 else [*cycle[:10], "...", cycle[-1]]
        loader.fail(sources[cycle[0]], f'check "{cycle[0]}": depends_on: dependency cycle '
                    + " -> ".join(shown) + (f" ({len(cycle) - 1} checks)" if len(cycle) > 12
                                            else ""))
    if not cycles:
        for name, depth in too_deep(checks)[:1]:
            loader.fail(sources[name], f'check "{name}": depends_on: a chain of {depth} checks '
                        f"is too deep (at most {MAX_DEPTH})")


def _check_ladders(
    loader: _Loader, checks: list[CheckBase], sources: dict[str, Path], dirs: list[Path]
) -> None:
    """Every heal step names a fix that exists, or a start/stop command the check has."""
    known = available_fixes(dirs)
    for check in checks:
        where, label = sources[check.name], f'check "{check.name}"'
        for index, step in enumerate(check.heal):
            key = f"{label}: heal[{index}].run"
            if step.run in OWN_COMMANDS:
                missing = [c for c in _needs(step.run) if not getattr(check, c)]
                if missing:
                    loader.fail(where, f"{key}: {found(step.run)} needs the check's own "
                                f"{' and '.join(missing)} command")
            elif find_fix(step.run, dirs) is None:
                loader.fail(where, f"{key}: no fix named {found(step.run)}"
                            f"{suggest(step.run, known)} (fixes: {', '.join(known)})")


def _needs(command: str) -> tuple[str, ...]:
    return ("stop", "start") if command == "restart" else (command,)


def _label(raw: dict[str, Any], index: int) -> str:
    name = raw.get("name")
    return f'check "{name}"' if isinstance(name, str) and name else f"check #{index + 1}"


def _probe_problem(kind: object) -> str:
    known = sorted(REGISTRY)
    if kind is None:
        return f"required key is missing; one of {', '.join(known)}"
    if not isinstance(kind, str):
        return f"expected a probe name, got {kind!r}"
    return f"unknown probe {found(kind)}{suggest(kind, known)} (known: {', '.join(known)})"
