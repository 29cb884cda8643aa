"""Row 7: an Amazon import under the Selling Partner API's usage plan for searchOrders.

searchOrders allows 0.0056 requests a second with a burst of 20: a seller whose burst is spent
(an earlier import, another tool) gets one page every 178.6 s. The sandbox enforces that plan
and the plugin's client paces itself by it, both sped up by the same factor (``amazon_rate_scale``) so
the row runs in seconds. The floor is the plan itself: with the bucket empty at the start, the
fewest pages any client needs (100 orders each) take at least one interval each. What the row
measures is what the host adds to the wait: its keyset paging (one page more), reading,
validating and storing 2,000 orders, the job, the cursor.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from .common import new_db_path, run_job

#: the row's target: at most 10 % over the usage plan's floor
AMAZON_TARGET = 1.1


def _company(db: Any, sandbox: Any) -> Any:
    from amazon_sp.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN
    from host.channel import settings_test
    from host.records import companies

    company = companies.add_company(db, "Amazon Bench")
    companies.update_website_settings(db, company, store_plugin="amazon_sp", allow_order_download=True)
    companies.update_cart_settings(db, company, {
        "region": "eu", "marketplace_ids": sandbox.marketplaces[0], "lwa_client_id": DEFAULT_CLIENT_ID,
        "lwa_client_secret": DEFAULT_CLIENT_SECRET, "refresh_token": DEFAULT_REFRESH_TOKEN,
        "api_url": sandbox.base_url, "commission_percent": "10",
    })  # fmt: skip
    result = settings_test.test_settings(db, company)
    if not result.ok:
        raise RuntimeError(f"Test Settings failed: {result.message}")
    return companies.get_company(db, company.id)


def amazon_import(cfg: Any, work: Path) -> Any:
    from amazon_sp import plugin
    from amazon_sp.client import PAGE_SIZE_MAX, USAGE_PLANS, AmazonClient, ClientOptions
    from amazon_sp.sandbox import Sandbox
    from host.records import companies
    from host.store import db as host_db
    from plugin_spec.credentials import MemoryCredentialStore

    from .rows import Row, _s, _samples

    plan = USAGE_PLANS["searchOrders"]
    scale = cfg.amazon_rate_scale
    interval = float(1 / (Decimal(str(plan.per_second)) * Decimal(str(scale))))
    saved = plugin.client_options
    plugin.client_options = dataclasses.replace(ClientOptions.from_env(), rate_time_scale=scale)
    measured: list[float] = []
    floors: list[float] = []
    pages: list[int] = []
    refused: list[int] = []
    try:
        for i in range(cfg.repeats):
            with Sandbox(orders=0, seed=11 + i) as sandbox:
                sandbox.add_past_orders(cfg.amazon_orders)
                sandbox.set_faults(rate_limits=True, rate_time_scale=scale)
                db = host_db.connect(new_db_path(work, f"amazon-{i}"))
                company = _company(db, sandbox)
                # the seller's burst is spent: the client and Amazon both count it
                settings = companies.cart_settings_model(db, company)
                with AmazonClient(settings, MemoryCredentialStore(), plugin.client_options) as client:
                    for _ in range(plan.burst - 1):  # Test Settings took one
                        client.probe(datetime.now(UTC))
                # the bucket is empty from here: no client reads N pages in less than N intervals
                started = time.perf_counter()
                sandbox.clear_request_log()
                status, summary = run_job(db, company.id, "import_orders")
                measured.append(time.perf_counter() - started)
                log = sandbox.request_log()
                searches = [r for r in log if r["path"].endswith("/orders") and r["method"] == "GET"]
                pages.append(sum(1 for r in searches if r["status"] == 200))
                refused.append(sum(1 for r in searches if r["status"] == 429))
                floors.append(math.ceil(cfg.amazon_orders / PAGE_SIZE_MAX) * interval)
                db.close()
                if status != "Completed" or summary.get("inserted") != cfg.amazon_orders:
                    raise RuntimeError(f"amazon import: {status} {summary}")
    finally:
        plugin.client_options = saved
    host, floor = statistics.median(measured), statistics.median(floors)
    ratio = host / floor if floor else None
    return Row(
        "amazon",
        f"Amazon import, searchOrders usage plan (0.0056/s, burst 20) sped up {scale:g}x, burst spent: "
        f"{cfg.amazon_orders:,} orders",
        _s(host),
        _s(floor),
        ratio,
        f"<= {AMAZON_TARGET}",
        ratio is not None and ratio <= AMAZON_TARGET,
        notes=[
            f"host samples {_samples(measured)} s, from the moment the bucket is empty; "
            f"{statistics.median(pages):.0f} searchOrders requests (keyset pages: each asks again from the last "
            f"order read, which comes back once more), 429 answers {sum(refused)}",
            f"floor = ceil({cfg.amazon_orders:,} / {PAGE_SIZE_MAX}) pages x {interval:.3f} s "
            f"(178.6 s / {scale:g}): the fewest requests any client needs, each waiting for its token",
        ],
        data={"host": measured, "floor": floors, "pages": pages, "refused": refused},
    )
