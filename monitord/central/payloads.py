"""What the central API reads and writes besides events: action bodies in; incidents, hosts
and errors out, each in one stable JSON shape (described in openapi.json).

Validation problems name the field by its location in the request, the way config errors
do: ``events[3].priority: expected "P1", "P2" or "P3", got "P9"``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, Field, ValidationError, field_validator

from monitord.errors import ApiError
from monitord.events import Name, WireModel, visible
from monitord.schema import expected_text, model_at, suggest
from monitord.store.protocol import HostInfo, Incident, TimelineEntry

Json = dict[str, Any]
M = TypeVar("M", bound=BaseModel)
Note = Annotated[str, Field(max_length=2000), AfterValidator(visible)]
MAX_DEPTH = 32                 # arrays and objects within each other; an event needs 4
MAX_NUMBER_CHARS = 40          # digits (and sign, point, exponent) of one JSON number
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


class _Action(WireModel):
    """``who`` defaults to the token's owner when it is left out; ``null`` is no name."""

    who: Name | None = None

    @field_validator("who", mode="before")
    @classmethod
    def _named(cls, who: object) -> object:
        if who is None:
            raise ValueError("expected a name, or no who at all")
        return who


class ActionBody(_Action):
    """The body of ``acknowledge`` and ``resolve``."""

    note: Note = ""


class CommentBody(_Action):
    text: Annotated[str, Field(min_length=1, max_length=20000), AfterValidator(visible)]


def invalid(problems: list[str]) -> ApiError:
    """A 400 whose message is the first problems, each one also listed on its own."""
    shown = "; ".join(problems[:3])
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return ApiError(400, "invalid", shown + more, problems)


class _Refused(ValueError):
    """A number the parser will not make (the message says why)."""


def parse_json(body: bytes) -> object:
    """The JSON document in ``body``; ApiError 400 saying where it is broken, or that it
    nests deeper than MAX_DEPTH (measured before parsing, which recurses) or holds a
    number longer than MAX_NUMBER_CHARS or too big for a float (refused as it is parsed)."""
    depth = nesting(body)
    if depth > MAX_DEPTH:
        raise invalid([f"body: expected arrays and objects nested at most {MAX_DEPTH} deep, "
                       f"got {depth} or more"])
    try:
        return json.loads(body, parse_constant=_no_constant, parse_int=_int,
                          parse_float=_float)
    except UnicodeDecodeError:
        raise invalid(["body: expected JSON in UTF-8"]) from None
    except _Refused as e:
        raise invalid([f"body: {e}"]) from None
    except ValueError as e:
        raise invalid([f"body: not valid JSON: {e}"]) from None


def nesting(body: bytes) -> int:
    """How deep the arrays and objects of a JSON text go (strings skipped), counted up to
    the first level past MAX_DEPTH."""
    depth = deepest = 0
    for bracket in _BRACKET.finditer(_STRING.sub(b"", body)):
        depth += 1 if bracket[0] in b"[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > MAX_DEPTH:
                break
    return deepest


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number JSON allows")


def _int(digits: str) -> int:
    if len(digits) > MAX_NUMBER_CHARS:
        raise _Refused(f"expected numbers of at most {MAX_NUMBER_CHARS} characters, got one "
                       f"of {len(digits)}")
    return int(digits)


def _float(digits: str) -> float:
    number = float(digits) if len(digits) <= MAX_NUMBER_CHARS else math.inf
    if not math.isfinite(number):
        raise _Refused(f"expected numbers of at most {MAX_NUMBER_CHARS} characters that "
                       f"fit a 64-bit float, got {digits[:MAX_NUMBER_CHARS]}"
                       f"{'...' if len(digits) > MAX_NUMBER_CHARS else ''}")
    return number


def validate(model: type[M], data: object, context: dict[str, Any] | None = None) -> M:
    """``data`` as ``model``; ApiError 400 listing every problem with its location.
    ``context`` reaches the model's validators (``now``: the store's clock, for times)."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as e:
        raise invalid(problems(e, model)) from None


# --- problems ---------------------------------------------------------------------------

_PATTERNS = {
    r"^[0-9a-f]{32}$": "expected 32 lowercase hexadecimal digits",
    r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$":
        'expected letters, digits, ".", "_", ":" or "-", starting with a letter or digit',
}

_EXPECTED = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "string_type": "a string", "list_type": "a list",
    "dict_type": "an object", "model_type": "an object", "model_attributes_type": "an object",
    "datetime_type": 'a timestamp like "2026-11-25T17:00:00Z"',
    "datetime_parsing": 'a timestamp like "2026-11-25T17:00:00Z"',
    "datetime_from_date_parsing": 'a timestamp like "2026-11-25T17:00:00Z"',
}

_FIELD_FIRST = re.compile(r"^([A-Za-z_]\w*): ")


def problems(error: ValidationError, model: type[BaseModel]) -> list[str]:
    return [_problem(item, model) for item in error.errors(include_url=False)]


def _problem(item: Any, model: type[BaseModel]) -> str:
    loc: tuple[int | str, ...] = item["loc"]
    key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    kind, found, context = item["type"], item.get("input"), item.get("ctx") or {}
    if kind == "extra_forbidden":
        known = sorted(model_at(model, loc[:-1]).model_fields)
        return f"{key}: unknown field{suggest(str(loc[-1]), known)}"
    if kind == "missing":
        return f"{key}: required field is missing"
    if kind == "value_error" and isinstance(found, dict):
        # A whole-object check (events.py says "field: why"): point at the field.
        text = item["msg"].removeprefix("Value error, ")
        match = _FIELD_FIRST.match(text)
        if match and key:
            return f"{key}.{text}"
        return f"{key}: {text}" if key else text
    text, got = _expectation(kind, item["msg"], context, found)
    return f"{key}: {text}, got {got}" if key else f"{text}, got {got}"


def _expectation(kind: str, msg: str, context: dict[str, Any], found: object
                 ) -> tuple[str, str]:
    if kind in ("too_long", "too_short", "string_too_long", "string_too_short"):
        unit = "characters" if isinstance(found, str) else "items"
        size = len(found) if isinstance(found, str | list | dict) else "?"
        bound = "at most" if kind.endswith("long") else "at least"
        limit = context.get("max_length" if kind.endswith("long") else "min_length")
        return f"expected {bound} {limit} {unit}", f"{size}"
    if kind == "string_pattern_mismatch":
        pattern = str(context.get("pattern", ""))
        return _PATTERNS.get(pattern, f"expected text matching {pattern}"), _found(found)
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}", _found(found)
    return expected_text(kind, msg, context), _found(found)


def _found(value: object) -> str:
    """``value`` as JSON would spell it, shortened."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- out --------------------------------------------------------------------------------

def timestamp(at: dt.datetime | None) -> str | None:
    """RFC 3339 in UTC with a "Z"; a naive time from a backend is taken as UTC."""
    if at is None:
        return None
    utc = at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)
    return utc.isoformat().replace("+00:00", "Z")


def incident_json(incident: Incident, timeline: bool = False) -> Json:
    out: Json = {
        "id": incident.id, "key": incident.key, "host": incident.host,
        "check": incident.check, "priority": incident.priority, "status": incident.status,
        "title": incident.title, "summary": incident.summary,
        "opened_at": timestamp(incident.opened_at), "due_at": timestamp(incident.due_at),
        "last_seen_at": timestamp(incident.last_seen_at), "count": incident.count,
        "acknowledged_at": timestamp(incident.acknowledged_at),
        "acknowledged_by": incident.acknowledged_by,
        "resolved_at": timestamp(incident.resolved_at), "resolved_by": incident.resolved_by,
        "reopened": incident.reopened, "attached": list(incident.attached),
        "flapping": incident.flapping,
    }
    if timeline:
        out["timeline"] = [entry_json(e) for e in incident.timeline]
    return out


def entry_json(entry: TimelineEntry) -> Json:
    return {"at": timestamp(entry.at), "kind": entry.kind, "who": entry.who,
            "text": entry.text, "event_id": entry.event_id,
            "steps": [dict(step) for step in entry.steps]}


def host_json(info: HostInfo) -> Json:
    return {"host": info.host, "last_heartbeat": timestamp(info.last_heartbeat),
            "interval_seconds": info.interval_seconds,
            "open_incidents": info.open_incidents, "down": info.down,
            "stopped_at": timestamp(info.stopped_at)}
