"""What tells that a web server's sites may have changed, cheaply enough to ask every few
seconds: the times and sizes of its config files and of their directories (a new file in
sites-enabled changes its directory), and its master's workers (a reload replaces them).
"""

from __future__ import annotations

import hashlib
import os

MAX_FILES = 20000


def fingerprint(files: list[str], pid_files: list[str], extra_globs: list[str]) -> str:
    """A digest of everything whose change calls for a new discovery. Blocking: run it
    off the event loop."""
    import glob

    digest = hashlib.sha256()
    paths = sorted({*files[:MAX_FILES], *(os.path.dirname(f) for f in files[:MAX_FILES])})
    for pattern in extra_globs:
        paths += sorted(glob.glob(pattern))[:MAX_FILES]
        paths.append(os.path.dirname(pattern))
    for path in paths:
        digest.update(_stat(path).encode())
    for pid_file in pid_files:
        digest.update(_workers(pid_file).encode())
    return digest.hexdigest()


def _stat(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return f"{path}:-\n"
    return f"{path}:{st.st_mtime_ns}:{st.st_size}:{st.st_ino}\n"


def _workers(pid_file: str) -> str:
    """The master's pid and its children's: a reload (HUP) starts new workers."""
    import psutil

    try:
        with open(pid_file) as f:
            master = psutil.Process(int(f.read(32).strip()))
        children = sorted(c.pid for c in master.children())
    except (OSError, ValueError, psutil.Error):
        return f"{pid_file}:-\n"
    return f"{pid_file}:{master.pid}:{children}\n"
