"""Names from a web server's config are not ours: they are validated before they become
a Host header, a TLS server name or a check name, and skipped with a reason otherwise."""

from __future__ import annotations

import re
import zlib

# A host name as DNS has it: labels of letters, digits and hyphens (IDNs in their xn--
# form), at most 253 characters. Anything else (spaces, quotes, "$", "/") is refused.
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
HOST_NAME = re.compile(rf"^{_LABEL}(\.{_LABEL})*\.?$")
MAX_CHECK_NAME = 100          # the check model's bound on a name
CHECK_SUFFIX_ROOM = 10        # room for "-https", "-cert"


def why_not_watched(name: str) -> str:
    """Why ``name`` (as written in a server's config) cannot be watched; "" if it can."""
    if name in ("", '""'):
        return "no name (the catch-all of its address)"
    if name == "_":
        return "the catch-all name _"
    if name.startswith("~"):
        return "a regular expression name: no one name to ask for"
    if "*" in name:
        return "a wildcard name: no one name to ask for"
    if "$" in name:
        return "a name made of variables"
    if len(name) > 253 or not HOST_NAME.match(name.lower()):
        return "not a valid host name"
    return ""


def host_name(name: str) -> str:
    """``name`` as a Host header: lower case, without a final dot (nginx's
    ``.example.com`` stands for example.com and its subdomains: the bare name)."""
    return name.lower().removeprefix(".").removesuffix(".")


def check_base(name: str) -> str:
    """A check name for the site ``name``: the name itself, stable across runs; a long one
    is cut and keeps a hash of the whole, so two long names never meet."""
    room = MAX_CHECK_NAME - CHECK_SUFFIX_ROOM
    if len(name) <= room:
        return name
    digest = f"{zlib.crc32(name.encode()):08x}"
    return f"{name[: room - 9]}-{digest}"


def token(text: str) -> str:
    """``text`` (an upstream name, an address, a pool) made a valid part of a check name."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "x"
    return check_base(cleaned)
