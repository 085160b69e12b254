"""nginx's effective configuration from ``nginx -T``: its files, lexed, with every
``include`` resolved into one tree.

``nginx -T`` tests the config as nginx would load it and then prints each file it read,
each after a line ``# configuration file PATH:``. Lexing follows nginx's own rules
(src/core/ngx_conf_file.c): words separated by blanks, ``;`` ends a directive, ``{`` and
``}`` open and close a block, ``#`` starts a comment at the start of a word, quotes group
and backslashes escape, ``${var}`` keeps its braces.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field

FILE_MARK = re.compile(r"^# configuration file (.+):$", re.MULTILINE)
# Blanks and comments, then one token: a double- or single-quoted string, a brace or
# semicolon, or a word (a "#" inside a word is part of it, as in nginx).
_TOKEN = re.compile(r"""\s*(?:\#[^\n]*(?=\n|\Z)\s*)*(?:"((?:[^"\\]+|\\.)*)"|'((?:[^'\\]+|\\.)*)'"""
                    r"""|([{};])|((?!\#)(?:[^\s;{}"'\\$]+|\$\{[^}]*\}|\$|\\.)+))""", re.DOTALL)
_REST = re.compile(r"\s*(?:#[^\n]*\s*)*")
MAX_INCLUDE_DEPTH = 32


class NginxConfigError(ValueError):
    """The dump cannot be read as an nginx config; the message says where."""


@dataclass(slots=True)
class Directive:
    name: str
    args: list[str]
    path: str
    offset: int                          # where it starts in its file
    block: list[Directive] | None = None

    def find(self, name: str) -> list[Directive]:
        return [d for d in self.block or [] if d.name == name]

    def first(self, name: str) -> Directive | None:
        return next((d for d in self.block or [] if d.name == name), None)


@dataclass
class Dump:
    """The files of ``nginx -T``, by path, in the order nginx printed them."""

    files: dict[str, str] = field(default_factory=dict)

    @property
    def main(self) -> str:
        return next(iter(self.files), "")


def split_dump(text: str) -> Dump:
    """The files in ``nginx -T``'s output (the test's own lines before them are dropped)."""
    marks = list(FILE_MARK.finditer(text))
    dump = Dump()
    for mark, after in zip(marks, [*marks[1:], None], strict=False):
        end = after.start() if after is not None else len(text)
        dump.files.setdefault(mark.group(1), text[mark.end() + 1 : end])
    return dump


def parse_file(text: str, path: str) -> list[Directive]:
    """The directives of one file (includes not yet resolved). One pass of one regular
    expression: this runs over every file of a server with thousands of sites."""
    stack: list[list[Directive]] = [[]]
    words: list[str] = []
    start = pos = 0
    for match in _TOKEN.finditer(text):
        if match.start() != pos:
            break
        pos = match.end()
        index = match.lastindex
        if index != 3:
            if not words:
                start = match.start(index or 0)
            value = match.group(index or 0)
            words.append(_unescape(value) if index != 4 else value)
            continue
        token = match.group(3)
        if token == "}":
            if words or len(stack) == 1:
                raise NginxConfigError(f"{path}:{line_at(text, pos)}: unexpected }}")
            stack.pop()
            continue
        if not words:
            raise NginxConfigError(f"{path}:{line_at(text, pos)}: unexpected {token}")
        directive = Directive(words[0], words[1:], path, start)
        stack[-1].append(directive)
        words = []
        if token == "{":
            directive.block = []
            stack.append(directive.block)
    if _REST.fullmatch(text, pos) is None:
        raise NginxConfigError(f"{path}:{line_at(text, pos)}: cannot read "
                               f"{text[pos:pos + 20]!r}")
    if words or len(stack) != 1:
        raise NginxConfigError(f"{path}: unexpected end of file")
    return stack[0]


def line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m[1], m[1]), text)


def resolve(dump: Dump) -> list[Directive]:
    """The main file's directives with every include replaced by the files it names
    (matched against the files nginx read, relative to the main file's directory)."""
    parsed = {path: parse_file(text, path) for path, text in dump.files.items()}
    return _Resolver(parsed, os.path.dirname(dump.main)).file(dump.main, 0)


@dataclass
class _Resolver:
    parsed: dict[str, list[Directive]]
    base: str
    done: dict[str, list[Directive]] = field(default_factory=dict)

    def file(self, path: str, depth: int) -> list[Directive]:
        """A file's directives, expanded once however often it is included."""
        if path not in self.done:
            self.done[path] = self.expand(self.parsed.get(path, []), depth)
        return self.done[path]

    def expand(self, directives: list[Directive], depth: int) -> list[Directive]:
        if depth > MAX_INCLUDE_DEPTH:
            raise NginxConfigError(f"includes nested deeper than {MAX_INCLUDE_DEPTH}")
        out: list[Directive] = []
        for directive in directives:
            if directive.name == "include" and directive.args and directive.block is None:
                for path in _included(directive.args[0], self.parsed, self.base):
                    out.extend(self.file(path, depth + 1))
                continue
            if directive.block is not None:
                directive.block = self.expand(directive.block, depth)
            out.append(directive)
        return out


def _included(pattern: str, parsed: dict[str, list[Directive]], base: str) -> list[str]:
    full = pattern if os.path.isabs(pattern) else os.path.join(base, pattern)
    if not any(c in full for c in "*?["):
        return [full] if full in parsed else []
    # nginx sorts a glob's matches (ngx_conf_include with glob(3)); "*" stays in its
    # directory.
    return sorted(p for p in parsed
                  if fnmatch.fnmatchcase(p, full) and p.count("/") == full.count("/"))
