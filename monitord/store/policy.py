"""How the store judges time: each priority's response target, the reopen window, how
long a host may be silent before it is down, how long a flapping incident must be calm
before people hear of it again, and how long a planned stop may last. The agent's
embedded store and the central service both read it from a ``[policy]`` section
(``schema.PolicyConfig``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from monitord.model import DEFAULT_TARGETS, Priority
from monitord.schema import PolicyConfig


@dataclass(frozen=True)
class Policy:
    targets: dict[Priority, float] = field(default_factory=lambda: dict(DEFAULT_TARGETS))
    reopen_window: float = 3600.0
    missed_heartbeats: int = 3         # a host is down after this many intervals of silence
    min_silence: float = 180.0         # ... and never sooner than this
    flap_quiet: float = 300.0          # a flapping incident is steady after this long calm
    stop_limit: float = 3600.0         # a planned stop longer than this is "server down"

    @classmethod
    def from_config(cls, config: PolicyConfig) -> Policy:
        return cls(config.targets(), config.reopen_window, config.missed_heartbeats,
                   config.min_silence, config.flap_quiet, config.stop_limit)

    def target(self, priority: Priority | str) -> float:
        """Seconds within which an incident of ``priority`` must be answered."""
        try:    # Priority(...) only for a str: it costs a microsecond, on every problem
            return self.targets[priority if isinstance(priority, Priority) else Priority(priority)]
        except (KeyError, ValueError):
            raise ValueError(f"priority {priority} has no response target in the store's "
                             f"policy (it has {', '.join(sorted(self.targets))}); "
                             "add one to the store's config") from None
