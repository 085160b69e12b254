"""``monitord packs``: the stock check packs, what each watches, and how to enable one."""

from __future__ import annotations

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
    intro = next((line.lstrip("# ").strip() for line in text.splitlines()
                  if line.startswith("#")), "")
    head = f"{path.stem}: {intro.removeprefix('Stock pack: ')}"
    checks = tomllib.loads(text).get("check", [])
    rows = [f"  {c.get('name', '?'):<22} {c.get('priority', Priority.P3)}  "
            f"{c.get('description', '')}" for c in checks]
    return [head, *rows]
