"""The shared vocabulary of configs and wire models: strict models, durations, paths,
thresholds, secret files, the [policy] section, and the wording of config errors.

The agent's config, the central service's config, the probes' check models and the
central API all speak it, so an error reads the same wherever it is found:
``FILE: check "web": timeout: expected a duration like "500ms", "30s", "5m" or "2h",
got "5 sec"``. ``Loader`` reads TOML files and collects every problem before any is
reported and ``section`` validates one table of a file against its model: both are in
``monitord.loader``.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import typing
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
)

from monitord.durations import parse_duration
from monitord.errors import SecretError
from monitord.logs import register_secret
from monitord.model import DEFAULT_TARGETS, Priority
from monitord.ranges import Range, parse_range

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
MAX_SECRET_BYTES = 4096    # a password or key file is one short line, never a dump
MAX_DURATION = 366 * 86400.0     # a year: longer durations are typos (or infinity)
MAX_REPEAT = 1000                # {n} in a regular expression: larger ones run away
MAX_PATTERN_CHARS = 2000


# --- field types --------------------------------------------------------------------------

def _duration_or_zero(value: object) -> float:
    if not isinstance(value, str):
        raise ValueError('expected a duration like "500ms", "30s", "5m" or "2h"')
    seconds = parse_duration(value)
    if seconds > MAX_DURATION:
        raise ValueError("expected a duration of at most a year")
    return seconds


def _duration(value: object) -> float:
    seconds = _duration_or_zero(value)
    if seconds <= 0:
        raise ValueError("expected a duration above zero")
    return seconds


_REPEAT = re.compile(r"\{(\d+)(?:,(\d*))?\}")


def _regex(value: object) -> re.Pattern[str]:
    if not isinstance(value, str):
        raise ValueError("expected a regular expression as a string")
    if len(value) > MAX_PATTERN_CHARS:
        raise ValueError(f"expected a regular expression of at most {MAX_PATTERN_CHARS} "
                         "characters")
    counts = [int(n) for match in _REPEAT.finditer(value) for n in match.groups() if n]
    if counts and max(counts) > MAX_REPEAT:
        raise ValueError(f"a repetition of {max(counts)} runs away; expected at most "
                         f"{MAX_REPEAT}")
    try:
        return re.compile(value)
    except (re.error, OverflowError, RecursionError) as e:
        raise ValueError(f"not a valid regular expression ({e})") from None


def _absolute_path(value: str) -> str:
    if value and not os.path.isabs(value):
        raise ValueError('expected an absolute path like "/etc/monitord/secret"')
    return value


def _priority(value: object) -> Priority:
    if isinstance(value, str) and value in Priority.__members__:
        return Priority[value]
    raise ValueError('expected "P1", "P2" or "P3"')


def _optional_priority(value: object) -> Priority | None:
    if value == "":
        return None
    if isinstance(value, str) and value in Priority.__members__:
        return Priority[value]
    raise ValueError('expected "P1", "P2", "P3" or "" (none)')


Duration = Annotated[float, PlainValidator(_duration)]
DurationOrZero = Annotated[float, PlainValidator(_duration_or_zero)]
AbsolutePath = Annotated[str, AfterValidator(_absolute_path)]  # or "" for unset
Threshold = Annotated[Range, PlainValidator(parse_range)]
Regex = Annotated[re.Pattern[str], PlainValidator(_regex)]
PriorityField = Annotated[Priority, PlainValidator(_priority)]
OptionalPriority = Annotated[Priority | None, PlainValidator(_optional_priority)]  # "" = none


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def ca_file_needs_verify(ca_file: str, verify_tls: bool) -> None:
    """A CA file only serves to verify: asking for both off and a CA is a mistake."""
    if ca_file and not verify_tls:
        raise ValueError("ca_file: needs verify_tls = true (it is only used to verify)")


def read_secret_file(path: str, key: str = "password_file", *, required: bool = False) -> str:
    """The first line of a password, token or key file, registered so that no log line
    shows it. Read on every use, so a changed file needs no reload. SecretError names
    ``key`` and the file; ``required`` refuses an empty one."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_SECRET_BYTES + 1)
    except OSError as e:
        raise SecretError(f"cannot read {key} {path}: {e.strerror or e}") from None
    return secret_line(raw, path, key, required=required)


def secret_line(raw: bytes, path: str, key: str, *, required: bool = False) -> str:
    """The first line of ``raw`` (at most MAX_SECRET_BYTES + 1 bytes read from ``path``),
    registered as a secret; SecretError naming ``key`` and the file if it is no such line."""
    try:
        secret = raw.decode("utf-8").split("\n", 1)[0].removesuffix("\r")
    except UnicodeDecodeError:
        raise SecretError(f"cannot read {key} {path}: not UTF-8 text") from None
    if len(raw) > MAX_SECRET_BYTES or any(c in secret for c in "\r\0"):
        raise SecretError(f"{key} {path}: expected one line of at most {MAX_SECRET_BYTES} "
                          "bytes")
    if required and not secret.strip():
        raise SecretError(f"{key}: {path} is empty")
    register_secret(secret)
    return secret


class PolicyConfig(StrictModel):
    """``[policy]``: response targets and timing rules of the incident store (the agent's
    embedded store and the central service read the same keys)."""

    P1: Duration = DEFAULT_TARGETS[Priority.P1]
    P2: Duration = DEFAULT_TARGETS[Priority.P2]
    P3: Duration = DEFAULT_TARGETS[Priority.P3]
    reopen_window: DurationOrZero = 3600.0
    missed_heartbeats: int = Field(default=3, ge=1, le=100)
    min_silence: Duration = 180.0
    flap_quiet: Duration = 300.0     # a flapping incident's notices wait for this much calm
    stop_limit: Duration = 3600.0    # a planned stop longer than this pages "server down"

    def targets(self) -> dict[Priority, float]:
        return {p: float(getattr(self, p.value)) for p in Priority}


# --- the wording of config errors -----------------------------------------------------------

_BOUNDS = {
    "less_than_equal": "a number up to {le}",
    "less_than": "a number below {lt}",
    "greater_than_equal": "a number of at least {ge}",
    "greater_than": "a number above {gt}",
    "too_long": "at most {max_length} characters",
}

EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
}


def messages(error: ValidationError, model: type[BaseModel]) -> list[str]:
    """Each of ``error``'s problems as ``KEY: expected ..., got ...``."""
    found_messages = []
    for item in error.errors(include_url=False):
        loc = item["loc"]
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        kind = item["type"]
        if kind == "extra_forbidden":
            fields = model_at(model, loc[:-1]).model_fields
            known = sorted(info.alias or name for name, info in fields.items())
            found_messages.append(f"{key}: unknown key{suggest(str(loc[-1]), known)}")
            continue
        if kind == "missing":
            found_messages.append(f"{key}: required key is missing")
            continue
        text = expected_text(kind, item["msg"], item.get("ctx") or {})
        if key:
            found_messages.append(f"{key}: {text}, got {found(item.get('input'))}")
        else:
            found_messages.append(text)
    return found_messages


def model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel]:
    """The model that holds the key at ``loc`` (``("heal", 0)`` -> HealStep)."""
    for part in loc:
        if isinstance(part, int):
            continue
        field_info = model.model_fields.get(part)
        inner = _model_in(field_info.annotation) if field_info is not None else None
        if inner is None:
            return model
        model = inner
    return model


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        inner = _model_in(arg)
        if inner is not None:
            return inner
    return None


def expected_text(kind: str, msg: str, context: dict[str, Any]) -> str:
    """What a pydantic error of type ``kind`` expected, in our words."""
    if kind in _BOUNDS:
        return "expected " + _BOUNDS[kind].format(**context)
    if kind in EXPECTED:
        return f"expected {EXPECTED[kind]}"
    if msg.startswith("Value error, "):
        return msg[len("Value error, ") :]
    if msg.startswith("Input should be "):
        return "expected " + msg[len("Input should be ") :].replace("'", '"')
    if msg.startswith("String should match pattern"):
        return 'expected letters, digits, ".", "_" or "-", starting with a letter or digit'
    return msg[0].lower() + msg[1:]


def found(value: object) -> str:
    """``value`` as it was written, shortened: what a message says it "got"."""
    if isinstance(value, dict):
        return "a table"
    text = json.dumps(value) if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def suggest(word: str, known: list[str]) -> str:
    """'; did you mean "X"?' for the nearest of ``known``, or ""."""
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


def show_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except (ValueError, OSError, RuntimeError):   # not below it; a loop of links
        return str(path)
