"""Shared constants and helpers of the Back Market plugin tests (a unique module name on purpose:
``from conftest import ...`` would pick whichever conftest pytest imported last)."""

from __future__ import annotations

from backmarket.client import ClientOptions
from backmarket.sandbox import Sandbox
from plugin_spec.testing import KitChannel

#: easy to spot if it ever leaks into a message or a log record
TOKEN = "Ym0tdGVzdDpzM2NyM3QtVE9LRU4tNzc="

#: short timeouts, tiny backoff and small pages, so paging and retries show in milliseconds
FAST = ClientOptions(
    connect_timeout=0.5, read_timeout=1.0, retries=3, backoff_factor=0.01, backoff_jitter=0.01,
    backoff_max=0.05, retry_after_max=2, page_size=4,
)  # fmt: skip


#: the User-Agent parts every test company uses
COMPANY_NAME, CONTACT_EMAIL = "RefurbBoutique", "ops@refurb.example"


def settings_for(sandbox: Sandbox, token: str = TOKEN, **more):
    from backmarket.settings import BackMarketSettings

    return BackMarketSettings(api_url=sandbox.base_url, token=token, country_code="fr-fr",
                              company_name=COMPANY_NAME, contact_email=CONTACT_EMAIL, **more)  # fmt: skip


def listed(sandbox: Sandbox) -> list[dict]:
    """Orders the listing shows (never states 0 and 8), oldest modification first."""
    return [o for o in sandbox.orders() if o["state"] not in (0, 8)]


def to_ship(sandbox: Sandbox) -> list[dict]:
    """Orders still to accept or ship, oldest modification first."""
    return [o for o in listed(sandbox) if o["state"] in (1, 3)]


def unfulfilled(sandbox: Sandbox) -> list[dict]:
    """What a download of unfulfilled orders yields: to accept or ship, or with a cancelled or
    refunded line."""
    return [
        o for o in listed(sandbox) if o["state"] in (1, 3) or any(x["state"] in (4, 5, 6, 7) for x in o["orderlines"])
    ]


class SandboxChannel(KitChannel):
    """What the conformance kit asks the Back Market sandbox."""

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox

    def unfulfilled_order_ids(self) -> set[str]:
        return {str(o["order_id"]) for o in unfulfilled(self.sandbox)}

    def add_order(self) -> str:
        return self.sandbox.add_orders(1)[0]

    def recorded_tracking(self, order_id: str) -> list[str]:
        try:
            number = self.sandbox.order(order_id)["tracking_number"]
        except (KeyError, ValueError):
            return []
        return [number] if number else []

    def inject(self, fault: str) -> bool:
        always = 10**6
        switches = {"rate_limited": {"too_many_requests": always}, "server_error": {"fail_5xx": always},
                    "timeout": {"latency": 3.0}, "cut_off_body": {"cut_off_body": always}}  # fmt: skip
        self.sandbox.set_faults(**switches[fault])
        return True

    def clear_faults(self) -> None:
        self.sandbox.clear_faults()

    def lose_next_answer(self) -> bool:
        self.sandbox.set_faults(lose_answer=1)
        return True

    def cancel_line(self, order_id: str, line_id: str) -> bool:
        try:
            self.sandbox.cancel_line(order_id, line_id)
        except ValueError:  # shipped already
            return False
        return True
