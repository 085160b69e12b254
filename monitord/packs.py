"""``monitord packs``: the stock check packs, what each watches, and how to enable one."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from monitord.config import AgentConfig, load_config, packs_dir
from monitord.errors import ConfigError
from monitord.model import Priority


def describe_packs(config_path: str) -> str:
    directory = packs_dir(_agent(config_path))
    lines = [f"stock packs in {directory} (enable one with include = [\"pack:NAME\"]):"]
    for path in sorted(directory.glob("*.toml")):
        lines.append("")
        lines.extend(_describe(path))
    return "\n".join(lines)


def _agent(config_path: str) -> AgentConfig:
    try:
        return load_config(config_path).agent
    except ConfigError:
        return AgentConfig()  # the packs can still be listed from their default place


def _describe(path: Path) -> list[str]:
    text = path.read_text()
    head = f"{path.stem}: {_first_sentence(text).removeprefix('Stock pack: ')}"
    checks = tomllib.loads(text).get("check", [])
    rows = [f"  {c.get('name', '?'):<22} {c.get('priority', Priority.P3)}  "
            f"{c.get('description', '')}" for c in checks]
    return [head, *rows]


def _first_sentence(text: str) -> str:
    """The first sentence of the file's opening comment, however many lines it spans."""
    words: list[str] = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        words.extend(line.lstrip("#").split())
    intro = " ".join(words)
    end = re.search(r"[.!?](\s|$)", intro)
    return intro[: end.start() + 1] if end else intro
