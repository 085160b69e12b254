"""The queue's filters, kept in the URL: host, check, priority, state, text, and the page.

``/console/?host=web1&priority=P1&priority=P2&state=open&check=shop&text=502&page=2``:
the queue's GET form writes them, so a filtered queue can be bookmarked, shared, reloaded
and paged through (the pagination links carry them). An empty field means "any" (the form
sends every field, filled or not); a value that cannot be one is refused with one line
naming the field, and a parameter the queue does not know is refused with the nearest
known one suggested (a typo must not quietly show the whole queue).

The store filters on host, priority and state (its ``incidents`` read); the check and the
text are matched here, over what it read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from multidict import MultiMapping
from yarl import URL

from monitord.events import is_name
from monitord.model import Priority
from monitord.schema import suggest
from monitord.store.protocol import Incident, IncidentStatus

QUEUE = "/console/"
STATES: tuple[IncidentStatus, ...] = ("open", "acknowledged")  # what the queue holds
PRIORITY_NAMES = tuple(p.value for p in Priority)
MAX_TEXT_CHARS = 200
MAX_PAGE = 100_000
FILTERS = ("host", "check", "priority", "state", "text", "page")
# Not filters but how the page is shown: selecting rows, and what was just done.
VIEW = ("select", "done", "count", "skipped")
SINGLE = ("host", "check", "text", "page", "select", "done", "count", "skipped")
DONE = ("acknowledged", "resolved")            # what a form may say it did


@dataclass(frozen=True)
class QueueFilter:
    host: str | None = None
    check: str | None = None
    priorities: tuple[Priority, ...] = ()      # () is every priority
    states: tuple[IncidentStatus, ...] = ()    # () is open and acknowledged
    text: str = ""
    page: int = 1

    @property
    def active(self) -> bool:
        """Whether anything is filtered out (the page number aside)."""
        return bool(self.host or self.check or self.priorities or self.states or self.text)

    def statuses(self) -> tuple[IncidentStatus, ...]:
        return self.states or STATES

    def shown_priorities(self) -> tuple[Priority, ...]:
        return self.priorities or tuple(Priority)

    def matches(self, incident: Incident) -> bool:
        """The check and text filters (the store applied the others)."""
        if self.check is not None and incident.check != self.check:
            return False
        if not self.text:
            return True
        needle = self.text.casefold()
        return any(needle in field.casefold() for field in (
            incident.key, incident.title, incident.summary))

    def query(self, page: int = 1) -> list[tuple[str, str]]:
        """The filters as query parameters, only those set, in the form's order."""
        pairs = [("host", self.host or ""), ("check", self.check or "")]
        pairs += [("priority", p.value) for p in self.priorities]
        pairs += [("state", s) for s in self.states]
        pairs += [("text", self.text), ("page", str(page) if page > 1 else "")]
        return [(name, value) for name, value in pairs if value]

    def url(self, page: int = 1, **view: str) -> str:
        """The queue with these filters on ``page``, and any view parameters."""
        return str(URL(QUEUE).with_query([*self.query(page), *view.items()]))


class FilterError(ValueError):
    """What is wrong with a queue's query string, in one line (all of it at once)."""


def parse_filter(query: MultiMapping[str]) -> QueueFilter:
    """The filters a query string asks for; raises FilterError naming every bad value."""
    problems: list[str] = []
    for name in dict.fromkeys(query):
        if name not in FILTERS and name not in VIEW:
            problems.append(f'unknown filter "{name[:40]}"{suggest(name, list(FILTERS))}')
        elif name in SINGLE and len(query.getall(name)) > 1:
            problems.append(f"{name}: given more than once")
    host = _name(query, "host", "a host name like web1", problems)
    check = _name(query, "check", "a check name like web", problems)
    priorities = _choices(query, "priority", PRIORITY_NAMES, problems)
    states = _choices(query, "state", STATES, problems)
    text = _text(query, problems)
    page = _page(query, problems)
    if problems:
        raise FilterError("; ".join(problems) + ".")
    return QueueFilter(host, check, tuple(Priority(p) for p in priorities),
                       tuple(s for s in STATES if s in states), text, page)


def echo(query: Mapping[str, str], names: Iterable[str] = ("host", "check", "text")
         ) -> dict[str, str]:
    """What was typed into the form's text fields, to show again beside the error."""
    return {name: str(query.get(name, ""))[:MAX_TEXT_CHARS] for name in names}


def _name(query: MultiMapping[str], field: str, expected: str,
          problems: list[str]) -> str | None:
    value = query.get(field, "").strip()
    if not value:
        return None
    if not is_name(value):
        problems.append(f"{field}: expected {expected}, got {_shown(value)}")
        return None
    return value


def _choices(query: MultiMapping[str], field: str, known: Sequence[str],
             problems: list[str]) -> list[str]:
    chosen = []
    for value in query.getall(field, []):
        if value in known:
            chosen.append(value)
        elif value:
            problems.append(f"{field}: expected {_either(known)}, got {_shown(value)}")
    return chosen


def _text(query: MultiMapping[str], problems: list[str]) -> str:
    value = query.get("text", "").strip()
    if len(value) > MAX_TEXT_CHARS:
        problems.append(f"text: at most {MAX_TEXT_CHARS} characters, got {len(value)}")
        return ""
    if not value.isprintable():
        problems.append("text: expected printable characters")
        return ""
    return value


def _page(query: MultiMapping[str], problems: list[str]) -> int:
    value = query.get("page", "").strip()
    if not value:
        return 1
    if (not (value.isascii() and value.isdigit()) or len(value) > len(str(MAX_PAGE))
            or not 1 <= int(value) <= MAX_PAGE):
        problems.append(f"page: expected a page number from 1, got {_shown(value)}")
        return 1
    return int(value)


def _either(known: Sequence[str]) -> str:
    return ", ".join(known[:-1]) + f" or {known[-1]}"


def _shown(value: str) -> str:
    """A bad value, quoted and cut short; the page escapes it."""
    return repr(value[:40] + ("..." if len(value) > 40 else ""))


# --- what was just done, said once after the redirect ------------------------------------

def done_url(back: str, done: str, count: int, skipped: int = 0) -> str:
    """``back`` (a console page) telling what a form just did: "Resolved 3 incidents."."""
    view = {"done": done, "count": str(count)} | ({"skipped": str(skipped)} if skipped else {})
    return str(URL(back).update_query(view))


def done_text(query: Mapping[str, str]) -> str:
    """The line ``done_url`` asks for; "" for anything else (it is only a message)."""
    done, count, skipped = (query.get(name, "") for name in ("done", "count", "skipped"))
    if done not in DONE or not _small(count) or not _small(skipped or "0"):
        return ""
    n, left = int(count), int(skipped or "0")
    text = f"{done.capitalize()} {n} incident{'' if n == 1 else 's'}."
    if left:
        text += (f" {left} could not be {done}: already resolved, or gone.")
    return text



def _small(value: str) -> bool:
    return value.isascii() and value.isdigit() and len(value) <= 6
