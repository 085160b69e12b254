"""PHP-FPM pools from their pool files (``[name]`` sections with ``listen`` and ``pm``).

The files are INI with PHP's own quirks (``;`` comments, ``$pool`` in values, values that
are not quoted), so they are read line by line rather than with configparser.
"""

from __future__ import annotations

import glob
import re

from monitord.discover.model import Pool

MAX_POOL_FILE_BYTES = 1 << 20
_SECTION = re.compile(r"^\[([^\]]+)\]\s*$")
_SETTING = re.compile(r"^([A-Za-z0-9_.\[\]]+)\s*=\s*(.*?)\s*$")


def pools(patterns: list[str]) -> list[Pool]:
    """The pools defined by the files matching ``patterns`` (globs), in file order."""
    found: list[Pool] = []
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    text = f.read(MAX_POOL_FILE_BYTES)
            except OSError:
                continue   # a pool file we cannot read is one we cannot watch
            found.extend(parse_pool_file(text, path))
    return found


def parse_pool_file(text: str, path: str) -> list[Pool]:
    sections: list[tuple[str, int, dict[str, str]]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(";", 1)[0].strip()
        section = _SECTION.match(line)
        if section:
            sections.append((section.group(1).strip(), number, {}))
            continue
        setting = _SETTING.match(line)
        if setting and sections:
            sections[-1][2][setting.group(1)] = setting.group(2).strip("\"'")
    return [_pool(name, line, values, path) for name, line, values in sections
            if name != "global" and "listen" in values]


def _pool(name: str, line: int, values: dict[str, str], path: str) -> Pool:
    return Pool(name, listen_address(values["listen"].replace("$pool", name)),
                values.get("pm", "dynamic") == "ondemand", f"{path}:{line}")


def listen_address(listen: str) -> str:
    """A pool's ``listen`` in the form nginx's ``fastcgi_pass`` names it: a socket as
    ``unix:PATH``, a bare port as ``127.0.0.1:PORT``."""
    if listen.startswith("/"):
        return f"unix:{listen}"
    if listen.isdigit():
        return f"127.0.0.1:{listen}"
    return listen
