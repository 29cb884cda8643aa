"""What the channel operations (host/channel/download.py, upload.py, settings_test.py) tell staff at
the edges of a download or a Test Settings: a plugin that answers nothing, a download stopped, out
of time or held by the rate limit, an order stamped in the future, and secrets that contain each
other. A real SQLite file and a plugin in memory."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from spy_plugin import SpyChannel
from support import registered

from host import clock
from host.channel import cursors, download, gate, settings_test, upload
from host.records import companies, orders
from host.store.db import connect
from plugin_spec import BadOrder, ChannelInfo, UploadResult, hookimpl, stopping
from plugin_spec.errors import RateLimitWait
from plugin_spec.ratelimit import wall_time
from plugin_spec.wire import mask

TOKEN = "spy-token-5678"


class EdgeChannel(SpyChannel):
    """A spy whose answers a test sets: ``test_answer``, and ``after`` raised after the orders."""

    def __init__(self) -> None:
        super().__init__(name="edge_channel", orders=3)
        self.test_answer: object = None
        self.after: Exception | None = None
        self.future = False
        self.cancelled: set[str] = set()
        self.bad_without_date = False
        self.lag = 120  # seconds the listing may show an order late (as Amazon's)

    @hookimpl
    def cartplugin_channel_info(self) -> ChannelInfo:
        info = SpyChannel.cartplugin_channel_info(self)
        return info.model_copy(update={"cursor_lag_seconds": self.lag})

    @hookimpl
    def cartplugin_upload_tracking(self, settings, shipments):
        # a channel that echoes the key in its refusal, once as sent and once in other letter case
        message = f"key {TOKEN} may not post (as {TOKEN.swapcase()})"
        return [UploadResult(shipment_id=s.shipment_id, ok=False, message=message) for s in shipments]

    @hookimpl
    def cartplugin_test_settings(self, settings):
        if isinstance(self.test_answer, Exception):
            raise self.test_answer
        return self.test_answer

    @hookimpl
    def cartplugin_download_orders(self, settings, since, unfulfilled_only):
        if self.bad_without_date:
            yield BadOrder(source_order_id="SPY-X", message="no date could be read")
        for order in SpyChannel.cartplugin_download_orders(self, settings, since, unfulfilled_only):
            if self.future:
                order = order.model_copy(update={"updated_at": datetime(2099, 1, 2, 3, 4, 5, tzinfo=UTC)})
            if order.source_order_id in self.cancelled:
                order = order.model_copy(
                    update={"channel_cancelled": True, "updated_at": order.updated_at + timedelta(1)}
                )
            yield order
        if self.after is not None:
            raise self.after


@pytest.fixture
def edge(db_target) -> Iterator[tuple[EdgeChannel, object, companies.Company]]:
    channel = EdgeChannel()
    with registered(channel, "edge"):
        db = connect(db_target)
        company = companies.add_company(db, "Edge Co")
        companies.update_website_settings(db, company, store_plugin="edge_channel", allow_order_download=True)
        companies.update_cart_settings(db, company, {"token": TOKEN})
        try:
            yield channel, db, company
        finally:
            db.close()


def _download(db, company, **kwargs) -> tuple[dict, list[tuple[str, str]]]:
    lines: list[tuple[str, str]] = []
    summary = download.download_orders(
        db, company, since=cursors.recent_since(), log=lambda level, text: lines.append((level, text)), **kwargs
    )
    return summary, lines


def test_a_plugin_that_answers_test_settings_with_nothing_fails_the_test_by_name(edge):
    channel, db, company = edge
    result = settings_test.test_settings(db, company)
    assert not result.ok and result.message == "plugin 'edge_channel' returned no TestResult"
    assert companies.website_settings(db, company)["connection_status"] != "established"


def test_a_download_out_of_time_says_the_next_run_goes_on(edge):
    _, db, company = edge
    summary, lines = _download(db, company, budget_seconds=0)
    assert summary["more"] is True and "waiting_until" not in summary
    assert lines[-1][0] == "warning" and "next" in lines[-1][1]


def test_a_download_held_by_the_rate_limit_says_until_when(edge):
    channel, db, company = edge
    until = datetime.now(UTC) + timedelta(minutes=5)
    channel.after = RateLimitWait("the next listing request may go at 14:05", until)
    summary, lines = _download(db, company)
    assert summary["more"] is True and summary["waiting_until"] == clock.iso(until)
    assert summary["inserted"] == 3  # what came before the wait is kept
    assert (
        "warning",
        f"waiting for the channel's rate limit until {wall_time(until)}; the next download continues from here",
    ) in lines


def test_a_download_stopped_by_the_worker_says_where_it_goes_on(edge):
    _, db, company = edge
    with pytest.raises(gate.Interrupted, match="^the worker is stopping; the job continues from its cursor$"):
        _download(db, company, stop=lambda: True)


def test_an_order_stamped_in_the_future_is_named_with_its_date(edge):
    channel, db, company = edge
    channel.future = True
    summary, lines = _download(db, company)
    assert summary["bad_orders"] == 3 and summary["inserted"] == 0
    assert ("warning", "order SPY-0 not imported: its updated_at 2099-01-02T03:04:05.000000Z is in the future") in lines


def test_a_secret_that_contains_another_is_masked_whole():
    # the long one sorts first by length, last by its letters: only length order masks it whole
    short, long = "zz-secret-1234", "aa-zz-secret-1234-refresh"
    text = f"the channel refused {long} and {short}"
    assert gate.redact(text, None, tokens=[short, long]) == f"the channel refused {mask(long)} and {mask(short)}"


def test_a_download_the_plugin_stops_for_the_worker_keeps_what_came_and_says_where_it_goes_on(edge):
    # the toolkit raises Stopped inside the plugin (a rate-limit wait or a page, once the worker stops)
    channel, db, company = edge
    channel.after = stopping.Stopped("the job is stopping; not sent")
    with pytest.raises(gate.Interrupted, match="^the worker is stopping; the job continues from its cursor$"):
        _download(db, company)
    assert db.execute("SELECT COUNT(*) FROM orders").fetchone() == (3,)


def test_an_order_the_channel_cancels_later_is_flagged_for_staff_with_a_warning(edge):
    channel, db, company = edge
    _download(db, company)
    channel.cancelled = {"SPY-1", "SPY-2"}
    summary, lines = _download(db, company)
    assert summary["flagged_cancelled"] == 2
    assert (
        "warning",
        "2 order(s) cancelled on the channel, flagged for staff with their status unchanged (see Attention): "
        "SPY-1, SPY-2",
    ) in lines


def test_a_plugin_that_crashes_in_test_settings_fails_the_test_with_the_error_named(edge):
    channel, db, company = edge
    channel.test_answer = RuntimeError(f"boom with {TOKEN}")
    result = settings_test.test_settings(db, company)
    assert not result.ok and result.message == f"the plugin failed: RuntimeError: boom with {mask(TOKEN)}"


def test_a_bad_order_without_a_date_keeps_the_cursor_where_it_was(edge):
    # nothing says where that order sits in the listing: the next run must read it all again
    channel, db, company = edge
    channel.bad_without_date = True
    summary, _ = _download(db, company)
    assert summary["bad_orders"] == 1 and summary["inserted"] == 3
    assert cursors.get_cursor(db, company.id, "edge_channel") is None


def test_a_channel_whose_listing_lags_is_read_again_from_a_little_before_the_cursor(edge):
    channel, db, company = edge
    _download(db, company)
    cursor = cursors.get_cursor(db, company.id, "edge_channel")
    assert cursors.behind_the_cursor(db, company, "edge_channel", cursor, "the saved cursor") == (
        cursor - timedelta(seconds=120),
        "the saved cursor, less the 120 s the channel's listing may lag",
    )
    earlier = cursor - timedelta(hours=1)
    assert cursors.behind_the_cursor(db, company, "edge_channel", earlier, "asked") == (earlier, "asked")


def test_a_refusal_that_echoes_the_key_is_stored_with_the_key_masked(edge):
    _, db, company = edge
    companies.update_website_settings(db, company, allow_tracking_upload=True)
    _download(db, company)
    order_id = db.execute("SELECT id FROM orders WHERE source_order_id = 'SPY-0'").fetchone()[0]
    orders.ship_order(db, order_id, carrier="UPS", tracking_number="1Z999AA10123456784")
    lines: list[tuple[str, str]] = []
    upload.upload_tracking(db, company, log=lambda level, text: lines.append((level, text)))
    stored = db.execute("SELECT upload_message FROM shipments").fetchall()
    assert stored == [(f"key {mask(TOKEN)} may not post (as {mask(TOKEN)})",)]
    assert TOKEN.casefold() not in repr(lines).casefold()
