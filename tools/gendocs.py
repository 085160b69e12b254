"""Write monitord's man pages and shell completions into a directory.

    python tools/gendocs.py OUTDIR

- monitord.8: from the command's own argparse parser (argparse-manpage), with the
  sections argparse knows nothing of in tools/monitord.8.include.
- monitord.toml.5 and monitord-central.toml.5: from the example configs in etc/monitord/,
  which document every option, commented out with its default (a test keeps them so).
- monitord.bash and _monitord: bash and zsh completion, from the same parser (shtab).

Run by `make docs` and by the Debian package's build, with a Python that imports
monitord, argparse_manpage and shtab. Dates come from SOURCE_DATE_EPOCH when it is set,
so a package build is reproducible.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import shtab
from argparse_manpage.manpage import Manpage

from monitord import __version__
from monitord.cli import _parser

ROOT = Path(__file__).resolve().parent.parent
INCLUDE = ROOT / "tools" / "monitord.8.include"
# Options whose values are paths: completed as such by the shells.
FILE_OPTIONS = {"--config", "--token-file"}
DIRECTORY_OPTIONS = {"--state-dir"}


@dataclass
class ConfigPage:
    """What a config file's man page says besides the file's own comments."""

    source: Path
    name: str
    summary: str
    installed: str
    files: list[tuple[str, str]]
    see_also: str


PAGES = [
    ConfigPage(
        ROOT / "etc/monitord/monitord.toml", "monitord.toml",
        "configuration of the monitord agent", "/etc/monitord/monitord.toml",
        [("/etc/monitord/checks.d/*.toml", "more checks, included by the stock file"),
         ("/usr/share/monitord/checks/", "the stock packs, included as pack:NAME"),
         ("/etc/monitord/remediations.d/", "your fixes, found before the stock ones"),
         ("/usr/share/monitord/remediations/", "the stock fixes"),
         ("/var/lib/monitord/", "the agent's state, outbox and embedded incident store")],
        "monitord(8), monitord-central.toml(5)"),
    ConfigPage(
        ROOT / "etc/monitord/central.toml", "monitord-central.toml",
        "configuration of the monitord central incident service",
        "/etc/monitord/central.toml",
        [("/var/lib/monitord-central/", "the service's SQLite store, by default")],
        "monitord(8), monitord.toml(5)"),
]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tools/gendocs.py OUTDIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    (out / "monitord.8").write_text(command_page())
    for page in PAGES:
        (out / f"{page.name}.5").write_text(config_page(page))
    parser = completable_parser()
    (out / "monitord.bash").write_text(shtab.complete(parser, shell="bash"))
    (out / "_monitord").write_text(shtab.complete(parser, shell="zsh"))
    return 0


def command_page() -> str:
    page = Manpage(_parser())
    page.description = "monitoring and self-healing daemon for web-hosting servers"
    page.section = 8
    page.manual = "System Manager's Manual"
    page.source = f"monitord {__version__}"
    page.date = _date()
    page.parse_include(str(INCLUDE))
    return str(page)


def completable_parser() -> argparse.ArgumentParser:
    """The command's parser, its path options marked for file or directory completion."""
    parser = _parser()
    for action in _actions(parser):
        if FILE_OPTIONS.intersection(action.option_strings):
            action.complete = shtab.FILE  # type: ignore[attr-defined]
        elif DIRECTORY_OPTIONS.intersection(action.option_strings):
            action.complete = shtab.DIRECTORY  # type: ignore[attr-defined]
    return parser


def _actions(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _actions(sub)


def _date() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = dt.datetime.fromtimestamp(int(epoch), dt.UTC) if epoch else dt.datetime.now(dt.UTC)
    return when.strftime("%Y-%m-%d")


# --- config pages ----------------------------------------------------------------------
# The example configs follow a few conventions, read here line by line:
#   # text                       prose: a section's introduction, or a key's (above it)
#   [table] / # [table]          a table, set or commented out
#   key = value                  a key that is set (described by the prose above it)
#   # key = value   # text       a key with its default, and what it does
#   #               # text       more of the text above
#   #     text                   more of a heading's text, or an example under a key
#   # --- heading: text          a heading, such as a probe's own keys
#   # Example: ...               a commented example, shown as is up to a blank line

# A key's own text follows its value after a "#" with a space before and after it.
OPTION = re.compile(r"#\s?(?P<key>[A-Za-z_][\w.-]*) = (?P<value>.*?)(?:\s+#\s(?P<text>.*))?")
ACTIVE = re.compile(r"(?P<key>[A-Za-z_][\w.-]*) = (?P<value>.*?)(?:\s+#\s(?P<text>.*))?")
TABLE = re.compile(r"#?\s?(?P<table>\[\[?[\w.-]+\]\]?)(?:\s+#.*)?")
MORE_TEXT = re.compile(r"#\s{2,}#\s?(?P<text>.*)")
INDENTED = re.compile(r"#\s{3,}(?P<text>\S.*)")
HEADING = re.compile(r"#\s?--- (?P<heading>.*?)\s*-*")
RULE = re.compile(r"#\s?-{3,}")


@dataclass
class _Writer:
    """Turns commented config lines into man(7) lines; prose waits for what it introduces."""

    lines: list[str] = field(default_factory=list)
    paragraphs: list[list[str]] = field(default_factory=lambda: [[]])
    after: str = ""  # what the last line was: "option", "listing", "heading" or ""
    example: bool = False

    def take(self, line: str) -> None:
        if self.example:
            self.lines.append(_escape(line.removeprefix("#").removeprefix(" ")) or "\\&")
            return
        for handler in (self._table, self._heading, self._option, self._more, self._prose):
            if handler(line):
                return

    def end_block(self) -> None:
        if self.example:
            self.lines += [".EE", ".RE"]
            self.example = False
        self._flush()
        self.after = ""

    def _flush(self) -> None:
        for paragraph in self.paragraphs:
            if paragraph:
                self.lines += [".PP", _prose(" ".join(paragraph))]
        self.paragraphs = [[]]

    def _prose_text(self) -> str:
        text = " ".join(" ".join(p) for p in self.paragraphs if p)
        self.paragraphs = [[]]
        return text

    def _table(self, line: str) -> bool:
        found = TABLE.fullmatch(line)
        if not found:
            return False
        self.lines.append(".SS " + _macro_argument(found["table"]))
        self._flush()  # the prose above a table introduces it
        self.after = ""
        return True

    def _heading(self, line: str) -> bool:
        if RULE.fullmatch(line):
            self._flush()
            return True
        found = HEADING.fullmatch(line)
        if not found:
            return False
        self._flush()
        heading, _, text = found["heading"].partition(": ")
        self.lines.append(".SS " + _macro_argument(heading))
        self.paragraphs = [[text] if text else []]
        self.after = "heading"
        return True

    def _option(self, line: str) -> bool:
        found = ACTIVE.fullmatch(line) or OPTION.fullmatch(line)
        if not found:
            return False
        if line[0] != "#":  # a key that is set: the prose above says what it is
            text = self._prose_text()
        else:
            self._flush()
            text = found["text"] or ""
        self.lines += [".TP", f"\\fB{_escape(found['key'])}\\fR = {_escape(found['value'])}"]
        if text:
            self.lines.append(_prose(text))
        self.after = "option"
        return True

    def _more(self, line: str) -> bool:
        found = MORE_TEXT.fullmatch(line) or INDENTED.fullmatch(line)
        if not found or not self.after:
            return False
        text = found["text"]
        if self.after == "heading":
            self.paragraphs[-1].append(text.strip())
        elif text.startswith(" ") or found.re is INDENTED or self.after == "listing":
            # A list or an example under a key: each on its own line, as in the file.
            self.lines += [".br", _prose(text.strip())]
            self.after = "listing"
        else:
            self.lines.append(_prose(text))
        return True

    def _prose(self, line: str) -> bool:
        text = line.removeprefix("#").strip()
        self.after = "heading" if self.after == "heading" else ""
        if not text:
            self.paragraphs.append([])
        elif text.startswith("Example"):
            self._flush()
            self.lines += [".PP", _prose(text), ".RS 4", ".EX"]
            self.example = True
        else:
            self.paragraphs[-1].append(text)
        return True


def config_page(page: ConfigPage) -> str:
    header, body = _split_header(page.source.read_text().splitlines())
    title = _escape(page.name.upper())
    lines = [f'.TH {title} 5 "{_date()}" "monitord {__version__}" "File Formats Manual"',
             ".SH NAME", f"{_escape(page.name)} \\- {_escape(page.summary)}",
             ".SH SYNOPSIS", _escape(page.installed), ".SH DESCRIPTION"]
    intro = _Writer()
    for line in header:
        intro.take(line)
    intro.end_block()
    lines += [*intro.lines, ".SH SETTINGS"]
    writer = _Writer()
    for line in body:
        if line.strip():
            writer.take(line.rstrip())
        else:
            writer.end_block()
    writer.end_block()
    lines += [*writer.lines, ".SH FILES"]
    for path, what in page.files:
        lines += [".TP", f"\\fI{_escape(path)}\\fR", _escape(what)]
    lines += [".SH SEE ALSO", _escape(page.see_also)]
    return "\n".join(lines) + "\n"


def _split_header(lines: list[str]) -> tuple[list[str], list[str]]:
    """The file's opening comment (up to its first blank line), and the rest."""
    end = lines.index("") if "" in lines else len(lines)
    return lines[:end], lines[end:]


def _escape(text: str) -> str:
    """Text as roff shows it: backslashes and minus signs kept, no line read as a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text[:1] in (".", "'") else text


def _prose(text: str) -> str:
    """Escaped text with `commands` in bold, as the README shows them in code."""
    return re.sub(r"`([^`]+)`", r"\\fB\1\\fR", _escape(text))


def _macro_argument(text: str) -> str:
    """Escaped text as one argument of a macro such as .SS (quotes would split it)."""
    return _escape(text).replace('"', "\\(dq")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
