"""Whether a file monitord runs or renders as root could have been changed by someone else.

Fix scripts, Nagios plugins, a check's start and stop commands and the admin's templates
all pass the same rule before they are used (sudo and OpenSSH judge their files alike):

- the file, after following every symbolic link to its final target, is owned by root
  (or by the user monitord runs as) and writable by nobody else;
- so is every directory on its path, from ``/`` down, both on the path as written (where
  a link could be swapped) and on the path of the final target. A directory others may
  write to passes only when it is sticky (like /tmp): then nobody else can rename or
  replace the entries in it that belong to root.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TRUSTED_UIDS = frozenset({0, os.geteuid()})


def unsafe_reason(path: str | Path) -> str:
    """Why using ``path`` as root would be unsafe; "" when it is safe."""
    written = Path(path)
    try:
        final = Path(os.path.realpath(written, strict=True))
    except OSError as e:
        return f"cannot read {written}: {(e.strerror or str(e)).lower()}"
    for candidate in _unique([written.absolute(), final]):
        reason = _chain_reason(candidate)
        if reason:
            return reason
    return ""


def command_path(program: str) -> str | None:
    """Where ``program`` (argv[0]) is: as given when it has a slash, else found on the
    fixed PATH children run with."""
    if "/" in program:
        return program
    return shutil.which(program, path=SAFE_PATH)


def _unique(paths: list[Path]) -> list[Path]:
    return list(dict.fromkeys(paths))


def _chain_reason(path: Path) -> str:
    """The rule for one spelling of the path: each directory from / down, then the file.
    A symbolic link on the way is judged by its directory (who may replace it) and its
    target by the other spelling."""
    parts = path.parts
    for depth in range(1, len(parts) + 1):
        place = Path(*parts[:depth])
        try:
            info = place.lstat()
            if stat.S_ISLNK(info.st_mode):
                continue
        except OSError as e:
            return f"cannot read {place}: {(e.strerror or str(e)).lower()}"
        if info.st_uid not in TRUSTED_UIDS:
            return f"{place} is owned by uid {info.st_uid}, not root"
        sticky_dir = stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not sticky_dir:
            return f"{place} is writable by group or others"
    return ""
