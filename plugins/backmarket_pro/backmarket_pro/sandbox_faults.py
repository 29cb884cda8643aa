"""Fault switches of the sandbox: what to break, how often (count, probability or always)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from plugin_spec.sandbox.faults import TRIGGERS, Trigger

__all__ = ["TRIGGERS", "Faults", "Trigger"]


@dataclass
class Faults:
    """The current switches; ``Sandbox.set_faults`` documents each one."""

    latency: float = 0.0
    rate_limit: int | None = None
    rate_window: float = 10.0
    fail_status: int = 503
    slow_seconds: float = 3.0
    trickle_seconds: float = 10.0
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
            "trickle_seconds": self.trickle_seconds,
            "malformed_order": self.malformed_order,
            "next_link_base": self.next_link_base,
        }
        data.update({name: trigger.describe() for name, trigger in self.triggers.items()})
        return data
