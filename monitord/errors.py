"""One error hierarchy for monitord.

    MonitordError                 anything monitord reports as a one-line message
    ├── ConfigError               a config file cannot be used; carries every problem found
    ├── ProbeError                a probe could not observe what it was asked to; carries
    │                             the status it implies (CRITICAL unless said otherwise)
    ├── StateError                the state file cannot be read or written
    └── NotRunning                no daemon answers where a command expected one (exit 3)

The CLI prints ``str(error)`` and exits non-zero; it never shows a traceback for these.
"""

from __future__ import annotations

from monitord.model import Status


class MonitordError(Exception):
    """Base of every error monitord reports to a person."""


class ConfigError(MonitordError):
    """A config could not be loaded; ``problems`` lists every message found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class ProbeError(MonitordError):
    """A probe failed to observe; the message says what a person can do about it."""

    def __init__(self, message: str, status: Status = Status.CRITICAL) -> None:
        self.status = status
        super().__init__(message)


class StateError(MonitordError):
    """The check-state file could not be used."""


class NotRunning(MonitordError):
    """Nothing answers on the daemon's status address: the command cannot tell (UNKNOWN)."""
