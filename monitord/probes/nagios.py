"""Any Nagios-compatible plugin: its exit code is the status, its text the summary, and its
performance data the metrics.

The plugin judges, so its exit code becomes the fact ``plugin_status`` and the check's
expectations (one per non-OK status, each failing only for its own status) make the
evaluator return exactly that status, with the plugin's first line as the summary. The
check's own ``warn``/``crit`` still apply to the perfdata metrics, and the worst wins.

Output format and performance data follow the Nagios plugin development guidelines
(nagios-plugins.org/doc/guidelines.html, "Plugin Output" and "Performance data"):

    TEXT OUTPUT | PERFDATA
    LONG TEXT LINE 1
    LONG TEXT LINE 2 | PERFDATA LINE 2
    PERFDATA LINE 3

    'label'=value[UOM];[warn];[crit];[min];[max]

A metric is the label in snake_case plus its unit in base units: ``time=12ms`` becomes
``time_seconds = 0.012``, ``/=80%`` ``root_ratio = 0.8``, ``size=3KB`` ``size_bytes = 3072``
(KB, MB, GB and TB are powers of 1024, as the standard plugins mean them), a counter
``c`` gets ``_total``, and an unlisted unit is kept as a suffix (``fan=900rpm``:
``fan_rpm``). The plugin's own warn and crit ranges, in the same base units, are reported
as the facts ``<metric>_warn`` and ``<metric>_crit``; min and max are parsed, not reported.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, field_validator, model_validator

from monitord.commands import CommandResult, run_command
from monitord.durations import format_duration
from monitord.errors import ProbeError
from monitord.model import Observation, Status
from monitord.probes.base import CheckBase, Expectation, ProbeContext

# Perfdata metrics are named by the plugin; a check lists the ones its thresholds name in
# ``metrics`` (see Config), so no fixed metric is declared here.
METRICS: dict[str, str] = {}
MAX_OUTPUT_BYTES = 65536    # Nagios 4 keeps 64 KiB of a plugin's output too
MAX_SUMMARY_CHARS = 300
MAX_METRICS = 100
MAX_NAME_CHARS = 80
MAX_RANGE_CHARS = 40
# The plugin's time, plus the group kill's grace, must fit inside the runner's deadline so
# that a hung plugin is reported (and killed) here rather than cut off by the runner.
MAX_KILL_GRACE = 1.0
METRIC_NAME = r"^[a-z][a-z0-9_]*$"

STATUS_NAMES = {s.value: s.name for s in Status}


class Config(CheckBase):
    METRICS = METRICS
    probe: Literal["nagios"]
    command: list[str] = Field(min_length=1)
    metrics: list[str] = []     # perfdata metric names that warn/crit may use

    @field_validator("command")
    @classmethod
    def _absolute_plugin(cls, value: list[str]) -> list[str]:
        if not os.path.isabs(value[0]):
            raise ValueError('expected the plugin as an absolute path first, like '
                             '["/usr/lib/nagios/plugins/check_disk", "-w", "20%"]')
        return value

    def metric_names(self) -> set[str]:
        return set(self.metrics)

    @field_validator("metrics")
    @classmethod
    def _metric_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.match(METRIC_NAME, name):
                raise ValueError(f"expected snake_case metric names like \"time_seconds\", "
                                 f"got {name!r}")
        return value

    @model_validator(mode="after")
    def _thresholds_name_listed_metrics(self) -> Config:
        for key in ("warn", "crit"):
            for name in getattr(self, key):
                if name not in self.metrics:
                    raise ValueError(f"{key}.{name}: list it in metrics first (metrics = "
                                     f"{self.metrics!r}); perfdata metric names are the "
                                     "plugin's labels in snake_case plus a unit suffix")
        return self

    def expectations(self) -> list[Expectation]:
        """One per non-OK status, failing only when the plugin said that status."""
        everything = frozenset(STATUS_NAMES.values())
        return [Expectation("plugin_status", everything - {s.name},
                            f"plugin exited {s.value} ({s.name})", s)
                for s in (Status.WARNING, Status.CRITICAL, Status.UNKNOWN)]


async def probe(cfg: Config, ctx: ProbeContext) -> Observation:
    grace = min(MAX_KILL_GRACE, ctx.timeout - ctx.budget())
    budget = ctx.budget() - grace
    done = await run_command(cfg.command, timeout=budget, kill_grace=grace,
                             max_output=MAX_OUTPUT_BYTES)
    plugin = os.path.basename(cfg.command[0])
    status = _status(plugin, done, budget)
    output = parse_output(done.output)
    obs = Observation(output.text[:MAX_SUMMARY_CHARS] or f"{plugin} printed nothing")
    obs.add("plugin_status", status.name)
    _add_perfdata(obs, output.perfdata)
    return obs


def _status(plugin: str, done: CommandResult, budget: float) -> Status:
    """The plugin's status from its exit code; anything but 0-3 is UNKNOWN, as in Nagios."""
    if done.error:
        raise ProbeError(f"cannot run {plugin}: {done.error}", Status.UNKNOWN)
    if done.timed_out:
        # Nagios' own default for a plugin that times out (service_check_timeout_state=c).
        raise ProbeError(f"{plugin} timed out after {format_duration(budget)}; its process "
                         "group was killed")
    code = done.exit_code
    if code is not None and code < 0:
        raise ProbeError(f"{plugin} was killed by signal {-code}{_said(done)}", Status.UNKNOWN)
    if code not in STATUS_NAMES:
        raise ProbeError(f"{plugin} exited {code}, not a plugin status 0-3{_said(done)}",
                         Status.UNKNOWN)
    return Status(code)


def _said(done: CommandResult) -> str:
    first = done.output.strip().splitlines()[0][:MAX_SUMMARY_CHARS] if done.output.strip() else ""
    return f": {first}" if first else ""


def _add_perfdata(obs: Observation, perfdata: list[PerfDatum]) -> None:
    seen: set[str] = set()
    for datum in perfdata[:MAX_METRICS]:
        if datum.value is None:  # "U": the plugin could not determine the value
            continue
        name, factor = metric_name(datum.label, datum.uom)
        unique, n = name, 1
        while unique in seen:
            n += 1
            unique = f"{name}_{n}"
        seen.add(unique)
        obs.add(unique, _round(datum.value * factor))
        for bound, text in (("warn", datum.warn), ("crit", datum.crit)):
            if text:
                obs.add(f"{unique}_{bound}", scale_range(text, factor)[:MAX_RANGE_CHARS])


# --- plugin output and performance data ------------------------------------------------


@dataclass(frozen=True, slots=True)
class PerfDatum:
    label: str
    value: float | None          # None for "U" (undetermined)
    uom: str
    warn: str = ""
    crit: str = ""
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True, slots=True)
class PluginOutput:
    text: str                    # the first line's text
    long_text: list[str]
    perfdata: list[PerfDatum]


# A label is quoted (two quotes for one inside) or a run without blanks, "=" or quotes.
_ITEM = re.compile(r"\s*('((?:[^']|'')+)'|[^\s'=]+)=(\S*)")
_VALUE = re.compile(r"^([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(\D*)$")


def parse_output(output: str) -> PluginOutput:
    """Text, long text and every performance datum of a plugin's output."""
    lines = output.splitlines() or [""]
    text, _, perf = lines[0].partition("|")
    perf_texts, long_text = [perf], []
    in_perfdata = False
    for line in lines[1:]:
        if in_perfdata:
            perf_texts.append(line)
            continue
        before, bar, after = line.partition("|")
        long_text.append(before.rstrip())
        if bar:
            in_perfdata = True
            perf_texts.append(after)
    data = [d for chunk in perf_texts for d in parse_perfdata(chunk)]
    return PluginOutput(text.strip(), [t for t in long_text if t], data)


def parse_perfdata(text: str) -> list[PerfDatum]:
    """Every ``label=value[UOM];warn;crit;min;max`` in ``text``; malformed items skipped."""
    found: list[PerfDatum] = []
    pos = 0
    while pos < len(text) and len(found) < MAX_METRICS:
        match = _ITEM.match(text, pos)
        if match is None:
            blank = re.compile(r"\s").search(text, pos + 1)
            pos = blank.end() if blank else len(text)
            continue
        pos = match.end()
        label = match.group(2).replace("''", "'") if match.group(2) else match.group(1)
        datum = _datum(label, match.group(3))
        if datum is not None:
            found.append(datum)
    return found


def _datum(label: str, spec: str) -> PerfDatum | None:
    fields = (spec.split(";") + [""] * 4)[:5]
    if fields[0] == "U":
        return PerfDatum(label, None, "", fields[1], fields[2])
    value = _VALUE.match(fields[0])
    if value is None:
        return None
    return PerfDatum(label, float(value.group(1)), value.group(2), fields[1], fields[2],
                     _number(fields[3]), _number(fields[4]))


def _number(text: str) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


# unit -> (metric name suffix, factor to base units)
UNITS: dict[str, tuple[str, float]] = {
    "s": ("_seconds", 1.0), "ms": ("_seconds", 1e-3), "us": ("_seconds", 1e-6),
    "%": ("_ratio", 0.01), "c": ("_total", 1.0), "": ("", 1.0),
    "B": ("_bytes", 1.0), "KB": ("_bytes", 1024.0), "MB": ("_bytes", 1024.0**2),
    "GB": ("_bytes", 1024.0**3), "TB": ("_bytes", 1024.0**4),
    "KiB": ("_bytes", 1024.0), "MiB": ("_bytes", 1024.0**2),
    "GiB": ("_bytes", 1024.0**3), "TiB": ("_bytes", 1024.0**4),
}


def metric_name(label: str, uom: str) -> tuple[str, float]:
    """The snake_case metric name for a perfdata label and unit, and the unit's factor."""
    base = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")
    if not base:
        base = "root" if label.strip() == "/" else "value"
    if base[0].isdigit():
        base = f"m_{base}"
    suffix, factor = UNITS.get(uom, (None, 1.0))
    if suffix is None:
        suffix = "_" + (re.sub(r"[^a-z0-9]+", "_", uom.lower()).strip("_") or "unit")
    return (base[: MAX_NAME_CHARS - len(suffix)] + suffix), factor


_RANGE_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def scale_range(text: str, factor: float) -> str:
    """A Nagios range with its numbers in base units: "10:200" in ms is "0.01:0.2"."""
    if factor == 1.0:
        return text
    return _RANGE_NUMBER.sub(lambda m: f"{float(m.group()) * factor:.12g}", text)


def _round(value: float) -> float | int:
    """12 significant digits (no 0.30000000000000004 from unit factors); whole numbers as
    ints, so a count stays a count."""
    rounded = float(f"{value:.12g}")
    return int(rounded) if rounded.is_integer() and abs(rounded) < 2**53 else rounded
