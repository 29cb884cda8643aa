"""Edges of the toolkit's HTTP client (plugin_spec/http.py) that the channels here never show:
relative and repeated next links, pages read without prefetch, an error body's request id in
either spelling, and options from the environment. A real sandbox on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from plugin_spec import BadData
from plugin_spec.http import ApiProfile, HttpOptions, JsonApi, Rejected
from plugin_spec.sandbox import Reply
from plugin_spec.sandbox.api import ApiSandbox, Request

KEY = "edges-key-0a1b2c3d"
FAST = HttpOptions(connect_timeout=0.5, read_timeout=0.5, deadline=1.5, retries=0)
PROFILE = ApiProfile(name="Toy", check_url="Check the URL.", key_name="API key", auth_hint="Check the key.")


class Toy(ApiSandbox):
    prefix = "/api"
    routes = [
        ("GET", "/relative", "relative"),
        ("GET", "/again", "again"),
        ("GET", "/items", "items"),
        ("GET", "/refused", "refused"),
    ]

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.counter = itertools.count()

    def relative(self, request: Request) -> Reply:
        # a next link relative to the page that carries it, as RFC 3986 allows
        page = int(request.query.get("page", "1"))
        rows = [{"id": f"{page}-{n}"} for n in range(2)]
        return Reply(200, {"results": rows, "next": f"relative?page={page + 1}" if page < 3 else None})

    def again(self, request: Request) -> Reply:
        # fresh ids on every call, and always the same next link: only the link gives the loop away
        return Reply(200, {"results": [{"id": str(next(self.counter))}], "next": self.base_url + "/again?page=2"})

    def items(self, request: Request) -> Reply:
        rows = [{"id": str(i), "n": i} for i in range(7)]
        return self.page(request, rows, key=lambda r: (r["n"],), default_size=3)

    def refused(self, request: Request) -> Reply:
        body = ["not", "an", "object"] if request.query.get("shape") == "list" else {"request_id": "req-42"}
        return Reply(422, body)


@pytest.fixture
def toy():
    with Toy(api_key=KEY) as server:
        yield server


def api(toy: Toy, options: HttpOptions = FAST) -> JsonApi:
    return JsonApi(toy.base_url, PROFILE, options, headers={"x-api-key": KEY}, limit_key=KEY)


@pytest.mark.parametrize("prefetch", [0, 1])
def test_a_relative_next_link_is_read_from_the_page_that_carries_it(toy, prefetch):
    with api(toy, dataclasses.replace(FAST, prefetch_pages=prefetch)) as client:
        ids = [row["id"] for page in client.pages("/relative", {}) for row in page]
    assert ids == ["1-0", "1-1", "2-0", "2-1", "3-0", "3-1"]
    assert [r["query"].get("page") for r in toy.request_log()] == [None, "2", "3"]


def test_without_prefetch_every_page_is_read_in_turn_from_its_next_link(toy):
    with api(toy, dataclasses.replace(FAST, prefetch_pages=0)) as client:
        assert [row["id"] for page in client.pages("/items", {}) for row in page] == [str(i) for i in range(7)]
    assert len(toy.request_log()) == 3


def test_the_same_next_link_twice_stops_the_listing_even_with_new_orders_on_each_page(toy):
    with api(toy, dataclasses.replace(FAST, max_pages=5)) as client:
        with pytest.raises(BadData, match="sent the same next link twice"):
            for _ in client.pages("/again", {}):
                pass
    assert len(toy.request_log()) <= 3


def test_a_refusal_names_the_request_id_the_channel_gave_in_either_spelling(toy):
    with api(toy) as client:
        with pytest.raises(Rejected, match=r"\(request id req-42\)\.$"):
            client.request("GET", "/refused")
        with pytest.raises(Rejected) as refused:  # an error body that is not an object: no id, no crash
            client.request("GET", "/refused", params={"shape": "list"})
    assert "request id" not in str(refused.value) and "HTTP 422" in str(refused.value)


def test_options_come_from_the_environment_with_their_own_types(monkeypatch):
    monkeypatch.setenv("CARTPLUGIN_TOY_RETRIES", "3")
    monkeypatch.setenv("CARTPLUGIN_TOY_READ_TIMEOUT", "2.5")
    options = HttpOptions.from_env("CARTPLUGIN_TOY_")
    assert options.retries == 3 and type(options.retries) is int
    assert options.read_timeout == 2.5
    monkeypatch.setenv("CARTPLUGIN_TOY_RETRIES", "three")
    with pytest.raises(ValueError, match="^CARTPLUGIN_TOY_RETRIES must be a number$"):
        HttpOptions.from_env("CARTPLUGIN_TOY_")
