"""Client-side rate limiting per API key: a busy company stays under the channel's limit."""

from __future__ import annotations

import dataclasses
import threading
import time

from bmp_helpers import FAST

from backmarket_pro import plugin
from backmarket_pro.client import BackMarketProClient, ClientOptions
from plugin_spec.ratelimit import RateLimiter


def test_the_limiter_never_lets_more_than_limit_requests_into_a_window():
    limiter = RateLimiter(limit=5, window=0.5)
    stamps = []
    for _ in range(12):
        limiter.acquire()
        stamps.append(time.monotonic())
    for i in range(len(stamps) - 5):
        assert stamps[i + 5] - stamps[i] >= 0.5 - 1e-3  # any 6 requests span more than a window
    assert stamps[-1] - stamps[0] >= 1.0  # 12 requests at 5 per 0.5 s need at least two waits


def test_concurrent_clients_of_one_key_share_the_limit_and_get_no_429(sandbox, settings, monkeypatch):
    sandbox.set_faults(rate_limit=8, rate_window=1.0)
    # a margin under the channel's limit, as the default (180 of 200) keeps: the channel counts
    # arrivals, the client counts departures, and the two clocks are a few ms apart
    options = dataclasses.replace(FAST, rate_limit=7, rate_window=1.0, retries=0)
    monkeypatch.setattr(plugin, "client_options", options)
    errors = []

    def hammer() -> None:
        try:
            with BackMarketProClient.from_options(settings, options) as client:
                for _ in range(6):
                    client.seller_account()
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []  # with retries=0 a single 429 would have raised RateLimited
    statuses = [r["status"] for r in sandbox.request_log()]
    assert len(statuses) == 24 and 429 not in statuses
    assert time.monotonic() - started >= 3.0  # 24 requests at 7 per second


def test_without_the_client_limit_the_same_load_is_refused(sandbox, settings):
    sandbox.set_faults(rate_limit=8, rate_window=1.0)
    options = dataclasses.replace(FAST, rate_limit=1000, retries=0)
    with BackMarketProClient.from_options(settings, options) as client:
        refused = 0
        for _ in range(12):
            try:
                client.seller_account()
            except Exception:  # noqa: BLE001
                refused += 1
    assert refused >= 4 and 429 in [r["status"] for r in sandbox.request_log()]


def test_options_come_from_the_environment():
    options = ClientOptions.from_env(environ={"CARTPLUGIN_BMP_READ_TIMEOUT": "2.5", "CARTPLUGIN_BMP_RATE_LIMIT": "50"})
    assert options.read_timeout == 2.5 and options.rate_limit == 50 and options.page_size == ClientOptions.page_size
