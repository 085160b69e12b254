"""One error hierarchy for monitord.

    MonitordError              anything monitord reports as a one-line message
    ├── ConfigError            a config file cannot be used; carries every problem found
    ├── SecretError            a password, token or key file cannot be read
    ├── CAFileError            a CA file for TLS verification cannot be loaded
    ├── ProbeError             a probe could not observe what it was asked to; carries the
    │                          status it implies (CRITICAL unless said otherwise)
    ├── Refused                a server refused a protocol command (its bounded reply)
    ├── Stuck                  a blocking call from an earlier run has not returned yet
    ├── StateError             a file or database monitord keeps cannot be read or written
    │   ├── OutboxError        ... the agent's outbox
    │   └── StoreError         ... the incident store (SQLite file or PostgreSQL)
    │       └── Taken          a unique value is taken already (a token someone else has)
    ├── IncidentError          an action a person asked of an incident cannot be done
    │   ├── NotFound           no incident with that id
    │   └── Conflict           not in its present state (acknowledging a resolved one)
    ├── DeliveryError          the store did not take a batch of events; try again later
    │   └── Rejected           the store refused it for good; retrying cannot help
    ├── SendError              a notification channel does not have a message (``retry``)
    ├── HttpError              an HTTP answer other than success, with its status
    │   ├── ApiError           ... of the JSON API: a code, a message, every problem
    │   └── ConsoleError       ... of the web console: the one line the page shows
    └── NotRunning             no daemon answers where a command expected one (exit 3)

Every message says which file, server or field, and what to change. The CLI prints
``str(error)`` and exits non-zero; it never shows a traceback for these.
"""

from __future__ import annotations

from typing import Any

from monitord.model import Status


class MonitordError(Exception):
    """Base of every error monitord reports to a person."""


class ConfigError(MonitordError):
    """A config could not be loaded; ``problems`` lists every message found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class SecretError(MonitordError):
    """A secret file could not be read (missing, unreadable, not text, empty)."""


class CAFileError(MonitordError):
    """A CA file could not be loaded; the message names it and says why."""


class ProbeError(MonitordError):
    """A probe failed to observe; the message says what a person can do about it."""

    def __init__(self, message: str, status: Status = Status.CRITICAL) -> None:
        self.status = status
        super().__init__(message)


class Refused(MonitordError):
    """A server answered a command with a refusal; the message is its (bounded) reply."""


class Stuck(MonitordError):
    """A blocking call for this key from an earlier run has not returned yet."""

    def __init__(self, key: str, since: float) -> None:
        self.key = key
        self.since = since
        super().__init__(key)


class StateError(MonitordError):
    """A file or database monitord keeps (state, outbox, store) could not be used."""


class OutboxError(StateError):
    """The agent's outbox could not be read or written."""


class StoreError(StateError):
    """The incident store could not be opened, read or written, or did not answer."""


class Taken(StoreError):
    """A statement met a unique value that is already taken (a token someone else has)."""


class IncidentError(MonitordError):
    """An action on an incident that cannot be done."""


class NotFound(IncidentError, LookupError):
    """No incident with that id."""


class Conflict(IncidentError, ValueError):
    """The incident cannot take that action now (e.g. acknowledging a resolved one)."""


class DeliveryError(MonitordError):
    """The store did not take the batch; try again later."""


class Rejected(DeliveryError):
    """The store refused an event for good (malformed); retrying cannot help."""


class SendError(MonitordError):
    """The channel does not have the message; ``retry`` says whether trying later can help."""

    def __init__(self, reason: str, retry: bool) -> None:
        self.reason = reason
        self.retry = retry
        super().__init__(reason)


class HttpError(MonitordError):
    """An HTTP answer other than success."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


class ApiError(HttpError):
    """An API answer other than success: rendered as ``{"error", "message", "problems"}``."""

    def __init__(self, status: int, code: str, message: str,
                 problems: list[str] | None = None) -> None:
        self.code = code
        self.problems = problems or []
        super().__init__(status, message)

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "problems": self.problems}


class ConsoleError(HttpError):
    """A console answer other than success, with the one line the page shows."""


class NotRunning(MonitordError):
    """Nothing answers on the daemon's status address: the command cannot tell (UNKNOWN)."""
