"""Generated configs for the loader's fuzz tests: TOML documents built from the agent's
own vocabulary (so many of them get far into validation), with values meant to break
things: huge numbers, nan and inf, deep nesting, runaway regular expressions, durations
of a century, long dependency chains, wrong types, stray keys, and raw bytes that are
not UTF-8."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import strategies as st

KEYS = ["name", "probe", "every", "timeout", "retry_every", "fail_after", "recover_after",
        "priority", "warning_priority", "depends_on", "warn", "crit", "heal", "url",
        "host_header", "expect_status", "body_matches", "port", "pidfile", "process",
        "command", "flap_quiet", "heal_budget", "description", "oids", "expect"]
PROBES = ["load", "memory", "disk", "http", "tcp", "process", "nagios", "snmp", "dns", "nope"]
SECTIONS = ["agent", "defaults", "healer", "status", "heartbeat", "outbox", "store",
            "policy", "templates", "nonsense"]

durations = st.sampled_from(["1s", "500ms", "2h", "0s", "1 minute", "-5s", "9999999999d",
                             "1e309s", "", "inf"])
regexes = st.sampled_from(["a{99999999999}", "(a+)+$", "[", "a{2,1}", "(?P<x>", "ok",
                           "x" * 3000, "a{1001}"])
numbers = st.one_of(st.integers(min_value=-(10**400), max_value=10**400),
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([99999, 65536, 0, -1, 2**63, 10**19]))
texts = st.text(max_size=40)
leaves = st.one_of(texts, durations, regexes, numbers, st.booleans(),
                   st.sampled_from(PROBES), st.sampled_from(["P1", "P4", "", "p1"]))


def nested(depth: int) -> st.SearchStrategy[Any]:
    """A value nested ``depth`` tables and arrays deep."""
    value: st.SearchStrategy[Any] = leaves
    for _ in range(depth):
        value = st.one_of(st.lists(value, max_size=2),
                          st.dictionaries(st.sampled_from(KEYS), value, max_size=2))
    return value


values = st.one_of(leaves, st.lists(leaves, max_size=4),
                   st.dictionaries(st.sampled_from(["load1", "used_ratio", "x"]), numbers,
                                   max_size=2),
                   st.integers(min_value=0, max_value=25).flatmap(nested))
checks = st.dictionaries(st.sampled_from(KEYS), values, max_size=8).map(
    lambda check: {"name": "c", "probe": "load", **check})


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for section in draw(st.lists(st.sampled_from(SECTIONS), max_size=3, unique=True)):
        doc[section] = draw(st.dictionaries(st.sampled_from(
            ["every", "listen", "state_dir", "grace", "max_rows", "P1", "dir", "url", "x"]),
            values, max_size=3))
    found = draw(st.lists(checks, max_size=4))
    chain = draw(st.integers(min_value=0, max_value=60))
    found += [{"name": f"chain{i}", "probe": "load",
               "depends_on": [f"chain{i + 1}" if i + 1 < chain else "chain0"]}
              for i in range(chain)]
    if found:
        doc["check"] = found
    return doc


def to_toml(doc: dict[str, Any]) -> str:
    """``doc`` as TOML text: tables and arrays of tables at the top, inline below."""
    lines = []
    for key, value in doc.items():
        if key == "check" and isinstance(value, list):
            for check in value:
                lines.append("[[check]]")
                lines += [f"{_key(k)} = {_inline(v)}" for k, v in check.items()]
        elif isinstance(value, dict):
            lines.append(f"[{_key(key)}]")
            lines += [f"{_key(k)} = {_inline(v)}" for k, v in value.items()]
        else:
            lines.insert(0, f"{_key(key)} = {_inline(value)}")
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    return json.dumps(key)


def _inline(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") \
            if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return "{" + ", ".join(f"{_key(k)} = {_inline(v)}" for k, v in value.items()) + "}"


@st.composite
def config_bytes(draw: st.DrawFn, contained: bool = False) -> bytes:
    """A document's TOML, sometimes cut, spliced with bytes, or not text at all.

    ``contained``: a config a test daemon may really run, so it never binds a fixed port
    (``[status] listen = ""`` comes first; the daemon's ``--state-dir`` keeps its files in
    the test's directory)."""
    doc = draw(documents())
    if contained:
        doc = {"status": {"listen": ""}, **{k: v for k, v in doc.items() if k != "status"}}
    raw = to_toml(doc).encode()
    damage = draw(st.sampled_from(["none", "none", "cut", "bytes", "noise"]))
    if damage == "cut" and raw:
        raw = raw[: draw(st.integers(min_value=0, max_value=len(raw)))]
    elif damage == "bytes":
        at = draw(st.integers(min_value=0, max_value=len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    elif damage == "noise":
        raw = draw(st.binary(max_size=200))
    if contained and b"[status]" not in raw:    # what was cut or never there
        raw += b'\n[status]\nlisten = ""\n'
    return raw
