"""Shared constants and helpers of the Back Market Pro plugin tests (unique module name on purpose:
``from conftest import ...`` would pick whichever conftest pytest imported last)."""

from __future__ import annotations

from backmarket_pro.client import ClientOptions
from backmarket_pro.sandbox import Sandbox

#: a key that is easy to spot if it ever leaks into a message or a log record
SECRET_KEY = "s3cr3t-KEY-9f8e7d6c5b4a"

#: short timeouts and tiny backoff, so retry tests take milliseconds (Retry-After still counts)
FAST = ClientOptions(
    connect_timeout=0.5,
    read_timeout=0.6,
    retries=3,
    backoff_factor=0.01,
    backoff_jitter=0.01,
    backoff_max=0.05,
    retry_after_max=2,
    page_size=7,
)


def unfulfilled(sandbox: Sandbox, api_key: str | None = None) -> list[dict]:
    """What the channel still expects the seller to ship, in listing order."""
    return [o for o in sandbox.orders(api_key) if o["fulfillment_status"] in ("unfulfilled", "partial")]
