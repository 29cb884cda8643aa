"""A listing's next page is fetched on a thread while the caller works on the current one
(``JsonApi.pages``): within the paging rules, and never left running once the caller stops."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from support import TOY_FAST as FAST
from support import toy_api

from plugin_spec import BadData
from plugin_spec.http import HttpOptions, JsonApi
from plugin_spec.sandbox import Reply
from plugin_spec.sandbox.api import ApiSandbox, Request

KEY = "prefetch-key-0a1b2c3d"


class Toy(ApiSandbox):
    prefix = "/api"
    routes = [("GET", "/items", "items"), ("GET", "/far", "far")]

    def items(self, request: Request) -> Reply:
        rows = [{"id": str(i), "n": i} for i in range(7)]
        return self.page(request, rows, key=lambda r: (r["n"],), default_size=3)

    #: where ``/far`` links its next page, as a compromised or misconfigured API might
    far_next = "http://localhost:9/api/far?page=2"

    def far(self, request: Request) -> Reply:
        return Reply(200, {"results": [{"id": "0"}, {"id": "1"}], "next": self.far_next})


@pytest.fixture
def toy():
    with Toy(api_key=KEY) as server:
        yield server


def api(toy: Toy, options: HttpOptions = FAST) -> JsonApi:
    return toy_api(toy, KEY, options)


def prefetchers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("cartplugin-prefetch") and t.is_alive()]


def wait_for(condition: Callable[[], bool], seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_the_next_page_is_on_its_way_while_the_caller_works_and_closing_stops_its_thread(toy):
    with api(toy) as client:
        pages = client.pages("/items", {})
        assert [item["id"] for item in next(pages)] == ["0", "1", "2"]
        # the caller has not asked for page 2 yet, and it is being fetched already
        assert wait_for(lambda: len(toy.request_log()) == 2)
        assert prefetchers()
        pages.close()
        assert not prefetchers()
        assert len(toy.request_log()) == 2


def test_prefetch_keeps_every_page_in_order_and_can_be_turned_off(toy):
    with api(toy) as client:
        assert [item["id"] for page in client.pages("/items", {}) for item in page] == [str(i) for i in range(7)]
    assert len(toy.request_log()) == 3
    assert not prefetchers()
    toy.clear_request_log()
    with api(toy, dataclasses.replace(FAST, prefetch_pages=0)) as client:
        pages = client.pages("/items", {})
        next(pages)
        time.sleep(0.3)
        assert len(toy.request_log()) == 1 and not prefetchers()
        pages.close()


def test_a_next_link_to_another_origin_is_never_prefetched_and_its_page_still_reaches_the_caller(toy):
    with Toy(api_key=KEY) as other:
        toy.far_next = other.base_url.replace("127.0.0.1", "localhost") + "/items"
        with api(toy) as client:
            pages = client.pages("/far", {})
            assert [item["id"] for item in next(pages)] == ["0", "1"]  # the page arrives first
            time.sleep(0.3)  # time enough for a prefetch, were there one
            with pytest.raises(BadData, match="refusing to follow it"):
                next(pages)
        assert other.request_log() == []
    assert len(toy.request_log()) == 1 and not prefetchers()


def test_max_pages_is_not_exceeded_by_prefetching(toy):
    with api(toy, dataclasses.replace(FAST, max_pages=2)) as client:
        with pytest.raises(BadData, match="more than 2 pages"):
            list(client.pages("/items", {}))
    assert len(toy.request_log()) == 2


def test_a_page_refused_by_the_page_reader_comes_raw_and_the_others_as_read(toy):
    def read_page(raw: bytes) -> tuple[list[Any], Any]:
        import json

        body = json.loads(raw)
        if any(item["id"] == "4" for item in body["results"]):
            raise ValueError("one bad item")
        return [("read", item["id"]) for item in body["results"]], body["next"]

    def id_of(item: Any) -> Any:
        return item[1] if isinstance(item, tuple) else item["id"]

    with api(toy) as client:
        pages = list(client.pages("/items", {}, read_page=read_page, id_of=id_of))
    assert pages == [
        [("read", "0"), ("read", "1"), ("read", "2")],
        [{"id": "3", "n": 3}, {"id": "4", "n": 4}, {"id": "5", "n": 5}],
        [("read", "6")],
    ]


def test_an_interrupted_import_leaves_no_prefetch_thread_behind(run, company, db_target, sandbox):
    from backmarket_pro import plugin
    from host.channel import cursors, download, gate
    from host.records import companies
    from host.store import db as host_db

    small_pages = dataclasses.replace(plugin.client_options, page_size=2)
    original, plugin.client_options = plugin.client_options, small_pages
    try:
        db = host_db.connect(db_target)
        acme = companies.get_company(db, company)
        imported: list[int] = []
        with pytest.raises(gate.Interrupted) as stopped:
            # stopping once an order is in: a job stopping from the start sends no request at all
            download.download_orders(
                db, acme, since=cursors.recent_since(), progress=imported.append, stop=lambda: bool(imported)
            )
        # the exception (and with it the download's frame) is still held here, as a worker's
        # error handling may hold it: the thread must have ended all the same
        assert not prefetchers()
        assert "stopping" in str(stopped.value)
        assert db.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 1  # committed up to the stop
        db.close()
    finally:
        plugin.client_options = original


def test_a_page_reader_that_fails_unexpectedly_costs_only_speed(toy, caplog):
    def broken(raw: bytes) -> tuple[list[Any], Any]:
        raise TypeError("a bug in the reader")

    with api(toy) as client:
        ids = [item["id"] for page in client.pages("/items", {}, read_page=broken) for item in page]
    assert ids == [str(i) for i in range(7)]
    assert "the page reader failed (TypeError)" in caplog.text
