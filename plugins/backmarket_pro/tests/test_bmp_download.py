"""Order download against a live sandbox: paging, since, keyset safety, bad orders, isolation."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

import pytest
from bmp_helpers import SECRET_KEY, unfulfilled

from backmarket_pro import plugin
from backmarket_pro.sandbox import Sandbox
from backmarket_pro.settings import BackMarketProSettings
from plugin_spec import AuthError, BadData, BadOrder, ChannelError, ChannelOrder, TransientError


def download(settings: BackMarketProSettings, since: datetime | None = None, unfulfilled_only: bool = True) -> list:
    return list(plugin.cartplugin_download_orders(settings=settings, since=since, unfulfilled_only=unfulfilled_only))


def listing_pages(sandbox: Sandbox) -> list[dict]:
    return [e for e in sandbox.request_log() if e["path"].endswith("/2024-03/orders")]


def test_yields_exactly_the_unfulfilled_orders_page_by_page(sandbox: Sandbox, settings: BackMarketProSettings) -> None:
    expected = unfulfilled(sandbox)
    orders = download(settings)
    assert all(isinstance(o, ChannelOrder) for o in orders)
    assert [o.source_order_id for o in orders] == [o["id"] for o in expected]
    pages = listing_pages(sandbox)
    page_size = plugin.client_options.page_size
    assert len(pages) == -(-len(expected) // page_size) > 2  # several pages, none wasted
    assert [o.updated_at for o in orders] == sorted(o.updated_at for o in orders)
    assert "cursor" not in pages[0]["query"] and all("cursor" in p["query"] for p in pages[1:])


def test_orders_keep_channel_amounts_and_statuses(sandbox: Sandbox, settings: BackMarketProSettings) -> None:
    by_id = {o["id"]: o for o in sandbox.orders()}
    orders = download(settings, unfulfilled_only=False)
    assert len(orders) == len(by_id)
    unpaid = [o for o in orders if by_id[o.source_order_id]["financial_status"] == "pending"]
    assert unpaid, "the sandbox generates unpaid orders"
    for order in orders:
        raw = by_id[order.source_order_id]
        assert order.payment_status == "Fully Charged"
        assert order.tax_total == Decimal(raw["total_tax"])
        assert order.grand_total == Decimal(raw["total_price"])
        assert order.channel_cancelled == raw["cancelled"]
        assert [(line.sku, line.quantity, line.unit_price, line.tax) for line in order.lines] == [
            (line["sku"], line["quantity"], Decimal(line["price"]), Decimal(line["tax"])) for line in raw["line_items"]
        ]
        assert raw["payment_method"] not in order.model_dump_json()


def test_since_is_inclusive(sandbox: Sandbox, settings: BackMarketProSettings) -> None:
    expected = unfulfilled(sandbox)
    pivot = expected[len(expected) // 2]
    since = datetime.fromisoformat(pivot["updated_at"])
    orders = download(settings, since=since)
    assert {o.source_order_id for o in orders} == {o["id"] for o in expected if o["updated_at"] >= pivot["updated_at"]}
    assert pivot["id"] in {o.source_order_id for o in orders}
    assert all(o.updated_at >= since for o in orders)


def test_order_changed_or_added_while_paging_is_not_skipped(sandbox: Sandbox, settings: BackMarketProSettings) -> None:
    stream = plugin.cartplugin_download_orders(settings=settings, since=None, unfulfilled_only=True)
    first_page = [next(stream) for _ in range(plugin.client_options.page_size)]
    # an order already delivered changes (moves to the end of the sort) and new orders arrive:
    # with offset paging every order behind it would shift and one would never be delivered
    changed = next(o for o in first_page if not o.channel_cancelled)
    sandbox.cancel_order(changed.source_order_id)
    added = sandbox.add_orders(2)
    rest = list(stream)
    seen = [o.source_order_id for o in first_page + rest]
    assert {o["id"] for o in unfulfilled(sandbox)} <= set(seen)
    assert set(added) <= set(seen)
    again = [o for o in rest if o.source_order_id == changed.source_order_id]
    assert len(again) == 1 and again[0].channel_cancelled


def test_malformed_order_does_not_stop_the_others(sandbox: Sandbox, settings: BackMarketProSettings) -> None:
    spoiled = sandbox.set_faults(malformed_order=True)["malformed_order"]
    orders = download(settings)
    bad = [o for o in orders if isinstance(o, BadOrder)]
    assert len(bad) == 1
    assert bad[0].source_order_id == spoiled and bad[0].updated_at is not None
    assert "total_price" in bad[0].message
    assert {o.source_order_id for o in orders} == {o["id"] for o in unfulfilled(sandbox)}


def test_accounts_are_isolated(sandbox: Sandbox) -> None:
    sandbox.add_account("other-key-000000002", name="Nordic Refurb AB", orders=12, seed=9)
    other = BackMarketProSettings(website_url=sandbox.base_url, x_api_key="other-key-000000002")
    orders = download(other, unfulfilled_only=False)
    assert [o.source_order_id for o in orders] == [o["id"] for o in sandbox.orders("other-key-000000002")]
    assert not {o.source_order_id for o in orders} & {o["id"] for o in sandbox.orders()}


def test_listing_errors_raise_channel_errors(sandbox: Sandbox, settings: BackMarketProSettings) -> None:
    wrong = BackMarketProSettings(website_url=sandbox.base_url, x_api_key="wrong-key-0000000")
    with pytest.raises(AuthError) as auth:
        download(wrong)
    assert "wrong-key-0000000" not in str(auth.value)
    sandbox.set_faults(fail_5xx=True)
    with pytest.raises(TransientError):
        download(settings)
    sandbox.clear_faults()
    sandbox.set_faults(malformed_body=1)
    with pytest.raises(BadData):
        download(settings)


def test_faults_mid_download_are_retried(sandbox: Sandbox, settings: BackMarketProSettings) -> None:
    expected = [o["id"] for o in unfulfilled(sandbox)]
    sandbox.set_faults(fail_5xx=0.3, drop_connection=1)
    assert [o.source_order_id for o in download(settings)] == expected
    assert {e["fault"] for e in sandbox.request_log()} >= {"drop_connection"}


def test_key_is_never_logged(
    sandbox: Sandbox, settings: BackMarketProSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox.set_faults(fail_5xx=2, drop_connection=1)
    download(settings)
    assert caplog.records, "debug logging was on"
    for record in caplog.records:
        assert SECRET_KEY not in record.getMessage()
    for entry in sandbox.request_log():
        assert SECRET_KEY not in repr(entry)


class _Recorder:
    """A second server on 127.0.0.1 that records whatever bytes reach it and answers nothing."""

    def __init__(self) -> None:
        import socketserver
        import threading

        received: list[bytes] = []

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.settimeout(1.0)
                try:
                    received.append(self.request.recv(65536))
                except OSError:
                    received.append(b"(connection without data)")

        self.received = received
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Recorder:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("elsewhere", ["another host", "another port", "another scheme"])
def test_an_order_page_whose_next_link_points_elsewhere_is_refused_and_the_key_is_not_sent_there(
    sandbox: Sandbox, settings: BackMarketProSettings, elsewhere: str
) -> None:
    with _Recorder() as other:
        sandbox_port = sandbox.base_url.split(":")[2].split("/")[0]
        sandbox.set_faults(next_link_base={
            "another host": f"http://localhost:{other.port}",
            "another port": f"http://127.0.0.1:{other.port}",
            "another scheme": f"https://127.0.0.1:{sandbox_port}",
        }[elsewhere])  # fmt: skip
        with pytest.raises(ChannelError) as refused:
            download(settings)
        assert not any(SECRET_KEY.encode() in data for data in other.received), "the key was sent elsewhere"
        assert other.received == []  # not even a connection
        assert isinstance(refused.value, BadData) and "refusing to follow it" in str(refused.value)
    assert len(listing_pages(sandbox)) == 1  # only the first page was asked for
    assert all(entry["key_ok"] for entry in sandbox.request_log())
