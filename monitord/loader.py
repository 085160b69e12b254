"""Reading TOML config files: ``Loader`` reads them and collects every problem before any
is reported; ``section`` validates one table of a file against its model, ``check_keys``
its top-level keys. Problems are worded as ``monitord.schema`` words them.
"""

from __future__ import annotations

import errno
import math
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from monitord.schema import StrictModel, messages, show_path, suggest

MAX_CONFIG_BYTES = 4 * 2**20     # a config file larger than this is a mistake, not a config
MAX_NESTING = 16                 # tables and arrays within each other in a config
MAX_INTEGER = 2**63 - 1          # TOML's own bound; beyond it a number is a typo


# --- reading files ----------------------------------------------------------------------

@dataclass
class Loader:
    """Reads TOML files and collects every problem found in them, in order."""

    main: Path
    problems: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def fail(self, where: Path, message: str) -> None:
        self.problems.append(f"{show_path(where)}: {message}")

    def read(self, path: Path) -> dict[str, Any] | None:
        """The TOML document in ``path``; None after recording why it cannot be used."""
        try:
            text = read_config_file(path)
            data = tomllib.loads(text)
        except ConfigFileError as e:
            self.problems.append(f"{show_path(path)}: {e}")
            return None
        except tomllib.TOMLDecodeError as e:
            self.problems.append(f"{show_path(path)}: {toml_problem(e)}")
            return None
        except RecursionError:
            self.problems.append(f"{show_path(path)}: tables and arrays are nested too deeply "
                                 f"(at most {MAX_NESTING} levels)")
            return None
        problem = _unusable(data)
        if problem:
            self.problems.append(f"{show_path(path)}: {problem}")
            return None
        self.files.append(path)
        return data


class ConfigFileError(Exception):
    """A config file that cannot be read as text; the message says why."""


def read_config_file(path: Path) -> str:
    """The text of ``path``: a regular file (following symlinks), UTF-8, and not huge.

    Opened without blocking, so a FIFO or a device named by mistake (or by an include's
    glob) is refused at once instead of hanging the reload that reads it.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigFileError("no such file") from None
    except OSError as e:
        raise ConfigFileError(f"cannot read: {_os_reason(e)}") from None
    with os.fdopen(fd, "rb") as f:
        kind = _file_kind(os.fstat(fd).st_mode)
        if kind:
            raise ConfigFileError(f"not a regular file ({kind}); expected a TOML file")
        raw = f.read(MAX_CONFIG_BYTES + 1)
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigFileError(f"larger than {MAX_CONFIG_BYTES // 2**20} MiB; expected a "
                              "config file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ConfigFileError(f"line {line}: not UTF-8 text (byte 0x{raw[e.start]:02x})") \
            from None


def _os_reason(error: OSError) -> str:
    if error.errno == errno.ELOOP:
        return "a loop of symbolic links"
    return (error.strerror or str(error)).lower()


def _file_kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return ""
    kinds = {stat.S_ISFIFO: "a FIFO", stat.S_ISCHR: "a character device",
             stat.S_ISBLK: "a block device", stat.S_ISSOCK: "a socket",
             stat.S_ISDIR: "a directory"}
    return next((name for test, name in kinds.items() if test(mode)), "not a file")


def _unusable(data: object, depth: int = 0) -> str:
    """What makes parsed TOML unusable as a config: nesting too deep, a number too large."""
    if depth > MAX_NESTING:
        return f"tables and arrays are nested too deeply (at most {MAX_NESTING} levels)"
    if isinstance(data, dict):
        return next(filter(None, (_unusable(v, depth + 1) for v in data.values())), "")
    if isinstance(data, list):
        return next(filter(None, (_unusable(v, depth + 1) for v in data)), "")
    if isinstance(data, int) and not isinstance(data, bool) and abs(data) > MAX_INTEGER:
        return f"a number of {len(str(abs(data)))} digits is too large"
    if isinstance(data, float) and (math.isnan(data) or math.isinf(data)):
        return "nan and inf are not numbers a config can use"
    return ""


def toml_problem(error: tomllib.TOMLDecodeError) -> str:
    text = str(error)
    match = re.fullmatch(r"(.*) \(at line (\d+), column (\d+)\)", text)
    if match is None:
        return f"not valid TOML: {text}"
    what, line, column = match.groups()
    return f"line {line}, column {column}: not valid TOML: {what[0].lower()}{what[1:]}"


def check_keys(loader: Loader, path: Path, data: dict[str, Any], allowed: set[str]) -> None:
    """Every top-level key of ``data`` is one of ``allowed``."""
    for key in data:
        if key not in allowed:
            loader.fail(path, f"{key}: unknown top-level key{suggest(key, sorted(allowed))}")


def section(loader: Loader, path: Path, data: dict[str, Any], key: str,
            model: type[StrictModel]) -> Any:
    """``data[key]`` validated as ``model`` (an empty table if absent); None after
    recording its problems."""
    raw = data.get(key, {})
    if not isinstance(raw, dict):
        loader.fail(path, f"[{key}]: expected a table, got {raw!r}")
        return None
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        for message in messages(e, model):
            loader.fail(path, f"[{key}] {message}")
        return None
