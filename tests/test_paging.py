"""The pagers of ``plugin_spec.paging`` on a real ApiSandbox over HTTP: each reads a quiet set
exactly once; with orders changed during the download, plain offsets (and tokens that are
offsets in disguise) lose one, keyset paging loses none; expired tokens, loops and
``max_pages`` stop a listing with a clear error."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from plugin_spec import BadData, CartSettings, ChannelOrder, OrderLine, TransientError, hookimpl
from plugin_spec.http import ApiProfile, HttpOptions, JsonApi, Rejected
from plugin_spec.paging import Keyset, NextLink, Offset, Pager, PageToken
from plugin_spec.sandbox import Reply
from plugin_spec.sandbox.api import ApiSandbox, Request
from plugin_spec.testing import ConformanceSuite, Harness, KitChannel

KEY = "paging-key-0a1b2c3d"
FAST = HttpOptions(connect_timeout=0.5, read_timeout=0.5, deadline=1.5, retries=0)
PROFILE = ApiProfile(name="Shop", check_url="Check the URL.", key_name="API key", auth_hint="Check the key.",
                     error_detail=lambda body: body.get("error", {}).get("message", ""),
                     error_code=lambda body: body.get("error", {}).get("code"))  # fmt: skip
START = datetime(2026, 3, 1, tzinfo=UTC)
SIZE = 5
#: the orders ask for 5 a page; the keyset next links of the sandbox take the size from the same parameter
PARAMS = {"limit": str(SIZE)}


def stamp(n: int, tick: timedelta = timedelta(seconds=1)) -> str:
    return (START + n * tick).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def key(order: dict[str, Any]) -> tuple[str, str]:
    return order["updated_at"], order["id"]


class Shop(ApiSandbox):
    """Orders ``o00``... sorted by (updated_at, id), filtered by ``updated_since`` (inclusive),
    served as keyset next links, offsets or page tokens."""

    prefix = "/api"
    routes = [("GET", "/keyset", "keyset"), ("GET", "/offset", "offset"), ("GET", "/token", "token"),
              ("GET", "/same-token", "same_token"), ("GET", "/nested", "nested"), ("GET", "/odd", "odd")]  # fmt: skip

    #: what ``/odd`` serves as it is, by offset and ``updated_since``: a page the test shapes
    odd_orders: list[dict[str, Any]] = []

    def __init__(self, stamps: list[int], tick: timedelta = timedelta(seconds=1)):
        super().__init__(api_key=KEY)
        self.tick = tick
        self.orders = {f"o{i:02d}": {"id": f"o{i:02d}", "updated_at": stamp(n, tick)} for i, n in enumerate(stamps)}
        self.clock = max(stamps)

    def bump(self, item: dict[str, Any]) -> None:
        with self._lock:
            self.clock += 1
            item["updated_at"] = stamp(self.clock, self.tick)

    def listed(self, request: Request) -> list[dict[str, Any]]:
        since = request.query.get("updated_since", "")
        return [order for order in self.orders.values() if order["updated_at"] >= since]

    def keyset(self, request: Request) -> Reply:
        return self.page(request, self.listed(request), key=key, size_param="limit", default_size=SIZE)

    def offset(self, request: Request) -> Reply:
        return self.page(request, self.listed(request), key=key, size_param="limit", style="offset")

    def token(self, request: Request) -> Reply:
        return self.page(request, self.listed(request), key=key, size_param="limit", style="token")

    def nested(self, request: Request) -> Reply:
        reply = self.keyset(request)
        return Reply(200, {"data": {"orders": reply.body["results"]}, "links": {"next": reply.body["next"]}})

    def odd(self, request: Request) -> Reply:
        since = request.query.get("updated_since", "")
        rows = [o for o in self.odd_orders if "updated_at" not in o or o["updated_at"] >= since]
        offset, limit = int(request.query["offset"]), int(request.query["limit"])
        return Reply(200, {"total": len(rows), "results": rows[offset : offset + limit]})

    def same_token(self, request: Request) -> Reply:
        served = len(self.request_log())
        return Reply(200, {"results": [{"id": f"n{served}"}], "pagination": {"nextToken": "always-the-same"}})


#: every order at its own stamp
DISTINCT = list(range(40))
#: o00-o14 share one stamp, three pages long; the rest each have their own
SHARED = [0] * 15 + list(range(1, 26))

TOKEN = PageToken("pagination.nextToken", "nextToken", expired_codes=frozenset({"expired_token"}))
PAGERS: dict[str, tuple[str, Pager]] = {
    "next link": ("/keyset", NextLink()),
    "offset": ("/offset", Offset(page_size=SIZE, total_field="total")),
    "page token": ("/token", TOKEN),
    "keyset over offset": (
        "/offset",
        Keyset(Offset(page_size=SIZE, total_field="total"), key=key, filter_param="updated_since"),
    ),  # fmt: skip
    "keyset over page tokens": ("/token", Keyset(TOKEN, key=key, filter_param="updated_since")),
}
SAFE = ["next link", "keyset over offset", "keyset over page tokens"]


def client(shop: Shop, options: HttpOptions = FAST) -> JsonApi:
    return JsonApi(shop.base_url, PROFILE, options, headers={"x-api-key": KEY}, limit_key=KEY)


def download(shop: Shop, name: str, options: HttpOptions = FAST) -> list[tuple[str, str]]:
    """Every (id, updated_at) the pager yields, in order."""
    path, pager = PAGERS[name]
    with client(shop, options) as api:
        return [(order["id"], order["updated_at"]) for page in api.pages(path, PARAMS, pager=pager) for order in page]


@pytest.mark.parametrize("stamps", [DISTINCT, SHARED], ids=["distinct stamps", "one stamp over three pages"])
@pytest.mark.parametrize("name", list(PAGERS))
def test_every_pager_reads_every_order_of_a_quiet_set_exactly_once_in_order(name, stamps):
    with Shop(stamps) as shop:
        read = download(shop, name)
    assert sorted(i for i, _ in read) == sorted(shop.orders)
    assert len(read) == len(shop.orders)
    assert [s for _, s in read] == sorted(s for _, s in read)


def test_plain_offsets_lose_an_order_that_shifts_into_pages_already_read():
    with Shop(DISTINCT) as shop:
        shop.set_faults(touch_during_download=2)
        read = download(shop, "offset")
    # o00 (read) and o10 (not yet) moved to the end after page 2; o11 slid into offset 9, read already
    assert shop.touched == ["o00", "o10"]
    assert set(shop.orders) - {i for i, _ in read} == {"o11"}


def test_page_tokens_that_are_offsets_in_disguise_lose_an_order_too():
    with Shop(DISTINCT) as shop:
        shop.set_faults(touch_during_download=2)
        read = download(shop, "page token")
    assert set(shop.orders) - {i for i, _ in read} == {"o11"}


@pytest.mark.parametrize("name", SAFE)
def test_keyset_paging_loses_no_order_changed_during_the_download_and_reads_its_new_stamp(name):
    with Shop(DISTINCT) as shop:
        shop.set_faults(touch_during_download=2)
        read = download(shop, name)
    assert len(shop.touched) == 2
    assert {i for i, _ in read} == set(shop.orders)
    for touched in shop.touched:
        assert (touched, shop.orders[touched]["updated_at"]) in read
    assert [s for _, s in read] == sorted(s for _, s in read)  # still ascending: the host's cursor relies on it


def test_keyset_with_a_filter_coarser_than_the_stamps_loses_nothing_and_asks_again_only_when_it_moves():
    # 40 orders a millisecond apart, all in one second; the filter takes whole seconds
    pager = Keyset(Offset(page_size=SIZE), key=key, filter_param="updated_since", format_stamp=lambda s: s[:19])
    options = dataclasses.replace(FAST, max_pages=50)
    with Shop(DISTINCT, tick=timedelta(milliseconds=1)) as shop, client(shop, options) as api:
        shop.set_faults(touch_during_download=3)
        read = [(o["id"], o["updated_at"]) for page in api.pages("/offset", PARAMS, pager=pager) for o in page]
        assert {i for i, _ in read} == set(shop.orders)
        assert len(read) == len(shop.orders) + 1  # the order changed after it was read comes again
        for touched in shop.touched:
            assert (touched, shop.orders[touched]["updated_at"]) in read
        # one query for the one second, read once with offsets overlapping by one (and once
        # more from its start after the change)
        assert len(shop.request_log()) <= 2 * len(shop.orders) // (SIZE - 1)


def test_keyset_over_offsets_reads_a_shared_stamp_again_when_orders_read_within_it_change():
    path, pager = PAGERS["keyset over offset"]
    with Shop(SHARED) as shop, client(shop) as api:
        pages = api.pages(path, PARAMS, pager=pager)
        read = [o["id"] for o in next(pages)] + [o["id"] for o in next(pages)]
        assert read == [f"o{i:02d}" for i in range(9)]
        # two orders read at the shared stamp change: the unread ones shift back two places,
        # one more than the next offset overlaps
        shop.bump(shop.orders["o00"])
        shop.bump(shop.orders["o01"])
        read += [o["id"] for page in pages for o in page]
    assert set(read) == set(shop.orders)
    assert read.count("o00") == read.count("o01") == 2  # and once more with their new stamps
    assert len(read) == len(shop.orders) + 2


def test_an_expired_page_token_is_a_transient_error_whether_the_channel_or_the_pager_notices():
    with Shop(DISTINCT) as shop, client(shop) as api:
        shop.set_faults(token_ttl=0.1)
        pages = api.pages("/token", PARAMS, pager=TOKEN)
        next(pages)
        time.sleep(0.2)
        with pytest.raises(TransientError, match="page token expired"):
            next(pages)
        assert shop.request_log()[-1]["status"] == 400
        shop.clear_request_log()
        pages = api.pages("/token", PARAMS, pager=dataclasses.replace(TOKEN, expires_after=0.1))
        next(pages)
        time.sleep(0.2)
        with pytest.raises(TransientError, match="page token expired"):
            next(pages)
        assert len(shop.request_log()) == 1  # the stale token was not sent


def test_keyset_over_page_tokens_starts_again_at_its_last_stamp_when_a_token_expires():
    path, pager = PAGERS["keyset over page tokens"]
    with Shop(SHARED) as shop, client(shop) as api:
        shop.set_faults(token_ttl=0.1)
        read = []
        for page in api.pages(path, PARAMS, pager=pager):
            read += [o["id"] for o in page]
            time.sleep(0.15)  # the caller's work on a page outlasts the token
        assert sorted(read) == sorted(shop.orders)
        assert any(entry["status"] == 400 for entry in shop.request_log())


def test_keyset_over_page_tokens_gives_up_when_tokens_expire_before_any_progress():
    path, pager = PAGERS["keyset over page tokens"]
    with Shop(SHARED) as shop, client(shop, dataclasses.replace(FAST, max_pages=20)) as api:
        shop.set_faults(token_ttl=0.001, latency=0.01)  # every token is older than that when it comes back
        pages = api.pages(path, PARAMS, pager=pager)
        assert len(next(pages)) == SIZE
        with pytest.raises(TransientError, match="page token expired"):
            next(pages)


@pytest.mark.parametrize("name", ["offset", "page token", "keyset over offset"])
def test_paging_that_makes_no_progress_stops_with_bad_data(name):
    with Shop(SHARED) as shop:
        shop.set_faults(next_loop=True)  # offsets ignored; fresh tokens to the same orders
        with pytest.raises(BadData, match="no new orders"):
            download(shop, name)
        assert len(shop.request_log()) <= 4


def test_a_page_token_sent_back_twice_stops_after_its_page():
    with Shop(DISTINCT) as shop, client(shop) as api:
        pages = api.pages("/same-token", {}, pager=TOKEN)
        assert [o["id"] for o in next(pages)] == ["n0"]
        assert [o["id"] for o in next(pages)] == ["n1"]
        with pytest.raises(BadData, match="same page token twice"):
            next(pages)
        assert len(shop.request_log()) == 2


@pytest.mark.parametrize("name", list(PAGERS))
def test_every_pager_stops_at_max_pages(name):
    with Shop(DISTINCT) as shop:
        with pytest.raises(BadData, match="more than 3 pages"):
            download(shop, name, dataclasses.replace(FAST, max_pages=3))
        assert len(shop.request_log()) == 3


def test_a_page_token_goes_back_with_the_first_requests_parameters_or_alone():
    params = {**PARAMS, "updated_since": stamp(10)}
    with Shop(DISTINCT) as shop, client(shop) as api:
        assert len([o for page in api.pages("/token", params, pager=TOKEN) for o in page]) == 30
        assert {tuple(sorted(entry["query"])) for entry in shop.request_log()} == {("limit", "updated_since")}
        shop.clear_request_log()
        alone = dataclasses.replace(TOKEN, keep_params=False)
        with pytest.raises(Rejected, match="send it with the first request's other parameters"):
            [o for page in api.pages("/token", params, pager=alone) for o in page]
        assert [entry["query"] for entry in shop.request_log()][1] == {}  # the token itself is not logged


def test_a_page_reader_is_for_next_links_only():
    with Shop(DISTINCT) as shop, client(shop) as api:
        with pytest.raises(TypeError, match="NextLink paging only"):
            api.pages("/offset", PARAMS, pager=Offset(), read_page=lambda raw: ([], None))
        assert [len(page) for page in api.pages("/keyset", PARAMS, pager=NextLink("next"))] == [SIZE] * 8


def test_keyset_yields_an_order_without_a_readable_stamp_once_and_pages_on_by_the_others():
    pager = Keyset(Offset(page_size=2, total_field="total"), key=key, filter_param="updated_since")
    with Shop(DISTINCT) as shop, client(shop, dataclasses.replace(FAST, max_pages=20)) as api:
        shop.odd_orders = [{"id": "a", "updated_at": stamp(1)}, {"id": "no-stamp"}, {"id": "b", "updated_at": stamp(2)},
                           {"id": "c", "updated_at": stamp(3)}, {"id": "d", "updated_at": stamp(4)}]  # fmt: skip
        assert [o["id"] for page in api.pages("/odd", {}, pager=pager) for o in page] == [
            "a",
            "no-stamp",
            "b",
            "c",
            "d",
        ]


def test_keyset_refuses_a_page_not_sorted_by_stamp():
    pager = Keyset(Offset(page_size=2, total_field="total"), key=key, filter_param="updated_since")
    with Shop(DISTINCT) as shop, client(shop) as api:
        shop.odd_orders = [{"id": "a", "updated_at": stamp(2)}, {"id": "b", "updated_at": stamp(1)}]
        with pytest.raises(BadData, match="not sorted by modification time"):
            list(api.pages("/odd", {}, pager=pager))


def test_next_links_and_results_may_sit_deeper_in_the_body():
    with Shop(DISTINCT) as shop, client(shop) as api:
        pages = api.pages("/nested", PARAMS, results="data.orders", pager=NextLink("links.next"))
        assert [o["id"] for page in pages for o in page] == sorted(shop.orders)


def test_touching_during_a_download_needs_a_sandbox_that_can_change_its_orders():
    class Fixed(ApiSandbox):
        pass

    with pytest.raises(ValueError, match="can change its orders"):
        Fixed().set_faults(touch_during_download=1)


class ShopSettings(CartSettings):
    api_url: str


class ShopPlugin:
    """A channel plugin whose download pages ``/offset`` with ``pager``: just enough for the kit's check."""

    def __init__(self, pager: Pager):
        self.pager = pager

    @hookimpl
    def cartplugin_download_orders(self, settings: ShopSettings, since: Any, unfulfilled_only: bool) -> Any:
        api = JsonApi(settings.api_url, PROFILE, FAST, headers={"x-api-key": KEY}, limit_key=KEY)
        with api:
            for page in api.pages("/offset", PARAMS, pager=self.pager):
                for raw in page:
                    stamped = datetime.fromisoformat(raw["updated_at"])
                    line = OrderLine(source_line_id=f"{raw['id']}-1", sku="SKU-1", title="Phone", quantity=1,
                                     unit_price="10.00")  # fmt: skip
                    yield ChannelOrder(source_order_id=raw["id"], created_at=stamped, updated_at=stamped,
                                       currency="EUR", subtotal="10.00", tax_total="0.00", grand_total="10.00",
                                       lines=[line])  # fmt: skip


class ShopChannel(KitChannel):
    def __init__(self, shop: Shop):
        self.shop = shop

    def unfulfilled_order_ids(self) -> set[str]:
        return set(self.shop.orders)

    def add_order(self) -> str:
        raise NotImplementedError

    def recorded_tracking(self, order_id: str) -> list[str]:
        return []

    def change_orders_during_download(self) -> bool:
        self.shop.set_faults(touch_during_download=1)
        return True


def kit_check(shop: Shop, name: str) -> None:
    """The kit's changed-orders check on a plugin paging ``/offset`` as ``PAGERS[name]``."""
    check = ConformanceSuite().test_download_loses_no_order_changed_while_it_runs
    check(Harness(ShopPlugin(PAGERS[name][1])), ShopSettings(api_url=shop.base_url), ShopChannel(shop))


def test_the_kit_fails_a_download_by_plain_offsets_that_loses_an_order_changed_while_it_runs():
    with Shop(DISTINCT) as shop:
        with pytest.raises(pytest.fail.Exception, match=r"it missed 1, e\.g\. \['o06'\](.|\n)*never by plain offsets"):
            kit_check(shop, "offset")
        assert shop.touched == ["o00", "o05"]  # after the first page: o06 slid into offset 4


def test_the_kit_passes_a_keyset_download_while_orders_change():
    with Shop(DISTINCT) as shop:
        kit_check(shop, "keyset over offset")
        assert shop.touched == ["o00", "o05"]
