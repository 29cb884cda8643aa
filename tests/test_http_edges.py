"""Edges of the toolkit's HTTP client (plugin_spec/http.py) that the channels here never show:
relative and repeated next links, pages read without prefetch, an error body's request id in
either spelling, and options from the environment. A real sandbox on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import itertools
import time

import pytest
from support import TOY_FAST as FAST
from support import toy_api

from plugin_spec import BadData, TransientError
from plugin_spec.errors import RateLimited
from plugin_spec.http import HttpOptions, JsonApi, Rejected
from plugin_spec.sandbox import Reply
from plugin_spec.sandbox.api import ApiSandbox, Request

KEY = "edges-key-0a1b2c3d"


class Toy(ApiSandbox):
    prefix = "/api"
    routes = [
        ("GET", "/relative", "relative"),
        ("GET", "/again", "again"),
        ("GET", "/items", "items"),
        ("GET", "/refused", "refused"),
        ("GET", "/busy", "busy"),
        ("POST", "/busy", "busy"),
        ("GET", "/html", "html"),
        ("GET", "/shape", "shape"),
        ("GET", "/slow", "slow"),
        ("GET", "/limited", "limited"),
        ("GET", "/exact", "exact"),
        ("GET", "/cut", "cut"),
    ]

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.counter = itertools.count()
        self.accepts: list[str | None] = []

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
        shape = request.query.get("shape")
        body = ["not", "an", "object"] if shape == "list" else {} if shape == "bare" else {"request_id": "req-42"}
        return Reply(422, body)

    def busy(self, request: Request) -> Reply:
        self.accepts.append(request.headers.get("Accept"))
        return Reply(503, {"request_id": "req-busy"})

    def html(self, request: Request) -> Reply:
        status = int(request.query.get("status", "200"))
        return Reply(
            status, raw=b"<html><body>Welcome</body></html>", headers={"Content-Type": "text/html; charset=utf-8"}
        )

    def shape(self, request: Request) -> Reply:
        if request.query.get("page") == "2":
            return Reply(200, {"results": {"not": "a list"}, "next": None})
        return Reply(200, {"results": [{"id": "1"}], "next": self.base_url + "/shape?page=2"})

    def limited(self, request: Request) -> Reply:
        return Reply(429, {"request_id": "req-429"}, headers={"Retry-After": "7"})

    #: a JSON answer of exactly this many bytes
    EXACT = b'{"results": [], "next": null, "pad": "' + b"x" * 62 + b'"}'

    def exact(self, request: Request) -> Reply:
        return Reply(200, raw=self.EXACT)

    def cut(self, request: Request) -> Reply:
        # announces more than it sends, then closes: a connection dropped mid-answer
        return Reply(200, chunks=iter([b'{"results": [{"id": "1"}, ']), length=4000)

    def slow(self, request: Request) -> Reply:
        time.sleep(1.5)
        return Reply(200, {"results": [], "next": None})


@pytest.fixture
def toy():
    with Toy(api_key=KEY) as server:
        yield server


def api(toy: Toy, options: HttpOptions = FAST) -> JsonApi:
    return toy_api(toy, KEY, options)


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


def test_a_busy_channel_is_asked_again_for_a_get_but_a_post_is_sent_once_unless_the_plugin_allows(toy):
    retrying = dataclasses.replace(FAST, retries=2, backoff_factor=0, backoff_jitter=0)
    with api(toy, retrying) as client:
        with pytest.raises(TransientError, match=r"\(request id req-busy\)"):
            client.request("GET", "/busy")
        assert len(toy.request_log()) == 3
        toy.clear_request_log()
        with pytest.raises(TransientError):
            client.request("POST", "/busy", json={"tracking": "1Z999AA10123456784"})
        assert len(toy.request_log()) == 1  # a POST may have been recorded: never sent twice by default
    toy.clear_request_log()
    with toy_api(toy, KEY, retrying, retry_post=True) as client:
        with pytest.raises(TransientError):
            client.request("POST", "/busy", json={"tracking": "1Z999AA10123456784"})
    assert len(toy.request_log()) == 3
    assert set(toy.accepts) == {"application/json"}


def test_a_proxy_named_in_the_environment_is_not_used(toy, monkeypatch):
    # the session would hand the key to whatever proxy the environment names
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    with api(toy) as client:
        assert [row["id"] for page in client.pages("/items", {}) for row in page] == [str(i) for i in range(7)]


def test_a_web_page_instead_of_the_api_is_named_for_what_it_is(toy):
    with api(toy) as client:
        with pytest.raises(BadData) as page:
            client.request("GET", "/html")
        with pytest.raises(BadData) as missing:
            client.request("GET", "/html", params={"status": "404"})
    assert str(page.value) == (
        f"{toy.base_url} answered /api/html with HTTP 200 but not with JSON (text/html): "
        "this does not look like the Toy API. Check the URL."
    )
    assert str(missing.value) == f"{toy.base_url} has no Toy API at /api/html (HTTP 404, not JSON). Check the URL."


def test_a_refusal_without_details_ends_with_the_status(toy):
    with api(toy) as client, pytest.raises(Rejected) as refused:
        client.request("GET", "/refused", params={"shape": "bare"})
    assert str(refused.value) == "Toy rejected /api/refused (HTTP 422)."


def test_a_page_of_the_wrong_shape_is_named_with_what_was_expected(toy):
    with api(toy) as client, pytest.raises(BadData) as wrong:
        for _ in client.pages("/shape", {}, what="a list of orders"):
            pass
    assert str(wrong.value) == "Toy answered with JSON that is not a list of orders (got dict); check the URL."


def test_an_answer_slower_than_the_read_timeout_is_given_up(toy):
    slow = dataclasses.replace(FAST, read_timeout=0.3, deadline=5)
    started = time.monotonic()
    with api(toy, slow) as client, pytest.raises(TransientError, match="0.3 s"):
        client.request("GET", "/slow")
    assert time.monotonic() - started < 1.2


def test_a_channel_that_keeps_answering_429_is_named_with_its_request_id_and_the_wait_it_asks(toy):
    with api(toy) as client, pytest.raises(RateLimited) as limited:
        client.request("GET", "/limited")
    assert str(limited.value) == (
        "Toy kept answering 429 Too Many Requests to /api/limited after 0 retries (request id req-429). "
        "Wait 7 s before trying again."
    )


def test_an_answer_of_exactly_the_largest_size_is_read_and_one_byte_more_is_not(toy):
    size = len(Toy.EXACT)
    with api(toy, dataclasses.replace(FAST, max_body=size)) as client:
        assert client.request("GET", "/exact")["pad"] == "x" * 62
    with api(toy, dataclasses.replace(FAST, max_body=size - 1)) as client, pytest.raises(BadData, match="more than"):
        client.request("GET", "/exact")


def test_an_answer_cut_off_mid_way_says_so(toy):
    with api(toy) as client, pytest.raises(TransientError) as cut:
        client.request("GET", "/cut")
    assert str(cut.value) == (
        "Toy answered /api/cut with HTTP 200 but the answer was cut off or unreadable (ProtocolError); try again later."
    )
