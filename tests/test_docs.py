"""The man pages and shell completions made by tools/gendocs.py: they render without a
warning, name every command and every documented config key, and complete."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {"monitord.toml.5": ROOT / "etc/monitord/monitord.toml",
           "monitord-central.toml.5": ROOT / "etc/monitord/central.toml"}
COMMANDS = ["run", "test", "check-config", "status", "packs", "maintenance", "central",
            "incidents", "add-agent", "add-operator", "add-scraper", "add-user", "migrate",
            "sla-report",
            "person", "contact", "schedule", "override", "remove-override", "policy", "oncall"]
KEY_LINE = re.compile(r"#?\s?([A-Za-z_][\w.-]*) = ")


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs")
    done = subprocess.run([sys.executable, str(ROOT / "tools/gendocs.py"), str(out)],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={"SOURCE_DATE_EPOCH": "1800000000", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize("page", ["monitord.8", *CONFIGS])
def test_man_page_renders_without_a_warning(docs: Path, page: str) -> None:
    if shutil.which("man") is None:
        unavailable("man is not installed (Debian package man-db)")
    done = subprocess.run(["man", "--warnings", "-l", str(docs / page)], capture_output=True,
                          text=True, timeout=60, check=False,
                          env={"LC_ALL": "C.UTF-8", "MANWIDTH": "80", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "2027-01-15" in done.stdout  # the date is SOURCE_DATE_EPOCH's: reproducible


def test_command_page_names_every_command_and_section(docs: Path) -> None:
    text = (docs / "monitord.8").read_text()
    assert text.startswith('.TH MONITORD "8"')
    for command in COMMANDS:
        escaped = command.replace("-", "\\-")
        assert f"\\fI\\,{escaped}\\/\\fR" in text, command
    for section in ("EXIT STATUS", "ENVIRONMENT", "FILES", "SEE ALSO"):
        assert f".SH {section}\n" in text
    assert "MONITORD_CONFIG" in text and "monitord.toml\\fR(5)" in text


@pytest.mark.parametrize("page", list(CONFIGS))
def test_config_page_has_every_key_with_its_default(docs: Path, page: str) -> None:
    text = (docs / page).read_text()
    example = False
    entries = 0
    for line in CONFIGS[page].read_text().splitlines():
        example = example or line.startswith("# Example")
        found = KEY_LINE.match(line)
        if found is None or example:
            continue
        key, value = found[1], line[found.end():].split("  #")[0].split(" # ")[0].strip()
        entry = f".TP\n\\fB{key}\\fR = {value}".replace("-", "\\-").replace("\\\\", "\\e")
        assert entry in text, line
        entries += 1
    assert text.count(".TP\n\\fB") == entries  # nothing read as a key that is not one
    for table in re.findall(r"^#? ?(\[\[?[\w.-]+\]\]?)", CONFIGS[page].read_text(), re.M):
        assert f".SS {table}\n" in text


def test_agent_config_page_keeps_headings_and_the_example(docs: Path) -> None:
    text = (docs / "monitord.toml.5").read_text()
    assert '.SS probe = \\(dqhttp\\(dq\n.PP\nmetrics response_seconds' in text
    assert ".EX\n[[check]]\nname = \"shop\"\n" in text


def _complete(docs: Path, words: list[str]) -> list[str]:
    script = (f'source {docs / "monitord.bash"}; COMP_WORDS=({" ".join(words)} ""); '
              f'COMP_CWORD={len(words)}; _shtab_monitord; printf "%s\\n" "${{COMPREPLY[@]}}"')
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=ROOT / "etc/monitord", check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_bash_completes_commands_choices_and_config_files(docs: Path) -> None:
    assert "check-config" in _complete(docs, ["monitord"])
    assert _complete(docs, ["monitord", "central"]) == [
        "add-agent", "add-operator", "add-scraper", "add-user", "migrate", "sla-report",
        "person", "contact", "schedule", "policy", "oncall"]
    assert _complete(docs, ["monitord", "run", "--log-format"]) == [
        "auto", "plain", "journal", "json"]
    assert "monitord.toml" in _complete(docs, ["monitord", "check-config", "-c"])


def test_zsh_completion_is_valid_zsh(docs: Path) -> None:
    zsh = shutil.which("zsh")
    if zsh is None:
        unavailable("zsh is not installed (Debian package zsh)")
    text = (docs / "_monitord").read_text()
    assert text.startswith("#compdef monitord")
    done = subprocess.run([zsh, "-n", str(docs / "_monitord")], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
