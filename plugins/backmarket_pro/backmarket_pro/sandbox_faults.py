"""Fault switches of the sandbox: what to break, how often (count, probability or always)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Trigger:
    """A fault that fires on the next ``count`` API requests, or with a probability each time."""

    count: int = 0
    probability: float = 0.0

    @classmethod
    def parse(cls, name: str, value: Any) -> Trigger:
        # int = next-N count, float = probability, True = every request, False/None/0 = off
        if value is None or value is False:
            return cls()
        if value is True:
            return cls(probability=1.0)
        if isinstance(value, int) and value >= 0:
            return cls(count=value)
        if isinstance(value, float) and 0.0 <= value <= 1.0:
            return cls(probability=value)
        raise ValueError(f"{name} must be a count (int >= 0), a probability (0.0-1.0) or a bool")

    def fire(self, rng: random.Random) -> bool:
        if self.count > 0:
            self.count -= 1
            return True
        return self.probability > 0.0 and rng.random() < self.probability

    def describe(self) -> int | float:
        return self.probability if self.probability else self.count


TRIGGERS = ("fail_5xx", "drop_connection", "slow", "malformed_body")


@dataclass
class Faults:
    """The current switches; ``Sandbox.set_faults`` documents each one."""

    latency: float = 0.0
    rate_limit: int | None = None
    rate_window: float = 10.0
    fail_status: int = 503
    slow_seconds: float = 3.0
    malformed_order: str | None = None
    #: scheme://host:port the listing's ``next`` link points to instead of the sandbox itself
    next_link_base: str | None = None
    triggers: dict[str, Trigger] = field(default_factory=lambda: {name: Trigger() for name in TRIGGERS})

    def describe(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "latency": self.latency,
            "rate_limit": self.rate_limit,
            "rate_window": self.rate_window,
            "fail_status": self.fail_status,
            "slow_seconds": self.slow_seconds,
            "malformed_order": self.malformed_order,
            "next_link_base": self.next_link_base,
        }
        data.update({name: trigger.describe() for name, trigger in self.triggers.items()})
        return data
