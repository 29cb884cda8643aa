"""Rules of the channel toolkit and the host that nothing else fails on when they break (issue 27).

Each test goes through the real parts (sandboxes on 127.0.0.1, the real CLI on a SQLite file)
and was seen to fail with its rule broken by hand; the break is named in each test's docstring.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from support import API_KEY, db_digest

from backmarket_pro import plugin as bmp_plugin
from backmarket_pro.client import TRACKING_ALREADY_RECORDED, BackMarketProClient, ClientOptions, Rejected
from backmarket_pro.sandbox import Sandbox as BmpSandbox
from backmarket_pro.sandbox import _error
from backmarket_pro.settings import BackMarketProSettings
from host.store.db import connect
from plugin_spec import BadData, Shipment, stopping
from plugin_spec.errors import RateLimitWait
from plugin_spec.http import ApiProfile, HttpOptions, JsonApi
from plugin_spec.ratelimit import ENV_VAR, Window
from plugin_spec.sandbox import Reply
from plugin_spec.sandbox.api import ApiSandbox, Request
from plugin_spec.sandbox.auth import SandboxAuth

PROFILE = ApiProfile(name="Toy", check_url="Check the URL.", key_name="API key", auth_hint="Check the key.")
FAST = HttpOptions(connect_timeout=1, read_timeout=2, deadline=5, retries=0)


class Toy(ApiSandbox):
    """One listing and one item, for any key it is told to accept."""

    prefix = "/api"
    routes = [("GET", "/items", "items"), ("GET", "/ping", "ping")]

    def __init__(self, keys: tuple[str, ...]):
        self.keys = keys
        super().__init__(api_key=keys[0])

    def make_auth(self) -> SandboxAuth:
        return AnyKeyOf(self)

    def items(self, request: Request) -> Reply:
        rows = [{"id": str(i)} for i in range(7)]
        return self.page(request, rows, key=lambda r: (r["id"],), default_size=3)

    def ping(self, request: Request) -> Reply:
        return Reply(200, {"ok": True})


class AnyKeyOf(SandboxAuth):
    """Several accounts on one API: any key of the sandbox's ``keys`` is accepted."""

    def __init__(self, sandbox: Toy):
        self.sandbox = sandbox

    def check(self, headers: Any, error: Any) -> Reply | None:
        if headers.get("x-api-key") in self.sandbox.keys:
            return None
        return error(401, "unauthorized", "The x-api-key header is not valid.")


def fresh_key(name: str) -> str:
    """A key no other test used: limiters live as long as the process, and a port may come back."""
    return f"{name}-{uuid.uuid4().hex[:12]}"


# -- rule 4: the rate limiter counts per (API, key) -------------------------------------------------

LIMIT = 2


@pytest.fixture(params=["in-process", "sqlite-file"])
def limiter_backend(request, tmp_path, monkeypatch):
    """The limiter kept in this process, and the one shared through the host's SQLite file."""
    if request.param == "sqlite-file":
        monkeypatch.setenv(ENV_VAR, str(tmp_path / "limits.db"))
    else:
        monkeypatch.delenv(ENV_VAR, raising=False)
    return request.param


def api_for(base_url: str, key: str, operation: str | None) -> JsonApi:
    # the key's window and an operation group's window are both LIMIT requests a minute
    options = dataclasses.replace(FAST, rate_limit=LIMIT, rate_window=60.0)
    limits = {"orders": Window(LIMIT, 60.0)} if operation else None
    return JsonApi(base_url, PROFILE, options, headers={"x-api-key": key}, limit_key=key, rate_limits=limits)


def sends(api: JsonApi, operation: str | None) -> bool:
    """True when the request went now, False when the limiter held it back (nothing sent).

    The scope's wait budget ends now, so a request over the limit raises RateLimitWait at once
    instead of waiting a minute for the window to move on.
    """
    with stopping.stop_when(None, wait_until=datetime.now(UTC)):
        try:
            api.request("GET", "/ping", operation=operation)
        except RateLimitWait:
            return False
    return True


@pytest.mark.parametrize("operation", [None, "orders"], ids=["key window", "operation group"])
def test_the_rate_limit_counts_each_api_and_each_key_apart_and_one_pair_together(limiter_backend, operation):
    """Break: key the limiter by the key alone, i.e. in plugin_spec/ratelimit.py ``limiter_for``
    hash ``limit_key`` instead of ``f"{api}\\0{limit_key}"`` (for the operation group, the same in
    ``group_limiter``): the second API then finds the key's window full and this test fails.
    Keyed by the API alone (``hashlib.sha256(api.encode())``), it fails at the second key."""
    one, two = fresh_key("one"), fresh_key("two")
    with Toy((one, two)) as first, Toy((one,)) as second:
        # two APIs, one key: each API has its own window
        with api_for(first.base_url, one, operation) as a, api_for(second.base_url, one, operation) as b:
            assert [sends(a, operation) for _ in range(LIMIT)] == [True] * LIMIT
            assert [sends(b, operation) for _ in range(LIMIT)] == [True] * LIMIT, "the other API's count was shared"
            assert not sends(a, operation)  # the limit does hold: the first API's window is full
        # one API, two keys: the second key (a second account) has its own window
        with api_for(first.base_url, two, operation) as c:
            assert [sends(c, operation) for _ in range(LIMIT)] == [True] * LIMIT, "the other key's count was shared"
            assert not sends(c, operation)
        # one (API, key) in two JsonApi instances (two jobs of one company): one window between them
        three = fresh_key("three")
        first.keys = (*first.keys, three)
        with api_for(first.base_url, three, operation) as d, api_for(first.base_url, three, operation) as e:
            assert sends(d, operation) and sends(e, operation)
            assert not sends(d, operation) and not sends(e, operation), "two instances of one pair counted apart"
    assert len(first.request_log()) == 2 * LIMIT + 2 and len(second.request_log()) == LIMIT


# -- rule 11: a key never follows a redirect --------------------------------------------------------


class Elsewhere(ApiSandbox):
    """Another origin on 127.0.0.1 that records every request it receives, headers included."""

    prefix = "/api"
    routes = [("GET", "/items", "items"), ("POST", "/items", "items")]

    def __init__(self) -> None:
        super().__init__(api_key=API_KEY)  # it would even accept the key it was sent
        self.received: list[dict[str, str]] = []

    def handle(self, method: str, target: str, headers: Any, body: bytes, host: str) -> Reply:
        self.received.append({"method": method, "target": target, **{k.lower(): v for k, v in headers.items()}})
        return super().handle(method, target, headers, body, host)

    def items(self, request: Request) -> Reply:
        return Reply(200, {"results": [{"id": "stolen"}], "next": None})


class Redirecting(ApiSandbox):
    """An API that answers every call with a redirect to ``target`` (its ``status``)."""

    prefix = "/api"
    routes = [("GET", "/items", "moved"), ("POST", "/items", "moved")]

    def __init__(self, target: str, status: int):
        super().__init__(api_key=API_KEY)
        self.target, self.status = target, status

    def moved(self, request: Request) -> Reply:
        return Reply(self.status, headers={"Location": self.target + "/api/items"})


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_redirect_to_another_origin_is_never_followed_and_staff_are_told_the_url_is_wrong(status, method):
    """Break: ``allow_redirects=True`` in ``JsonApi._exchange`` (plugin_spec/http.py, the
    ``self.session.request(...)`` call): requests follows the redirect and sends the x-api-key
    header along to the other origin, which answers 200, and this test fails."""
    with Elsewhere() as elsewhere, Redirecting(elsewhere.root_url, status) as api_site:
        api = JsonApi(api_site.base_url, PROFILE, FAST, headers={"x-api-key": API_KEY}, limit_key=fresh_key("r"))
        with api, pytest.raises(BadData) as info:
            api.request(method, "/items", **({"json": {"tracking": "1Z"}} if method == "POST" else {}))
        assert elsewhere.received == []  # not the key, not even the request
        assert [entry["status"] for entry in api_site.request_log()] == [status]
    message = str(info.value)
    assert f"redirected /api/items (HTTP {status})" in message and "the URL is probably wrong" in message
    assert "Check the URL." in message and API_KEY not in message


# -- the next-link follower compares normalised origins ---------------------------------------------


class Linking(ApiSandbox):
    """Two pages; the first page's next link is written as ``next_base`` (scheme, host, port) says."""

    prefix = "/api"
    routes = [("GET", "/items", "items")]

    def __init__(self) -> None:
        super().__init__(api_key=API_KEY)
        self.next_base = ""

    def items(self, request: Request) -> Reply:
        if request.query.get("page") == "2":
            return Reply(200, {"results": [{"id": "b"}], "next": None})
        return Reply(200, {"results": [{"id": "a"}], "next": f"{self.next_base}/api/items?page=2"})


def test_a_next_link_to_the_same_origin_with_an_upper_case_scheme_is_followed():
    """Break: check the link as written against the API's URL in ``JsonApi._follow``
    (plugin_spec/http.py, before ``url = urljoin(current, raw)``: ``if "://" in raw and not
    raw.startswith(self.base_url): raise BadData(...)``): ``HTTP://`` then looks foreign and this
    test fails. (``urljoin`` and ``urlsplit`` lower-case the scheme themselves, so a check made
    after them cannot get this wrong.)"""
    with Linking() as site:
        site.next_base = "HTTP://" + site.root_url.removeprefix("http://")  # HTTP://127.0.0.1:PORT
        api = JsonApi(site.base_url, PROFILE, FAST, headers={"x-api-key": API_KEY}, limit_key=fresh_key("n"))
        with api:
            assert [item["id"] for page in api.pages("/items", {}) for item in page] == ["a", "b"]
        assert [entry["query"] for entry in site.request_log()] == [{}, {"page": "2"}]


def on_port_80() -> Linking:
    """A Linking site on port 80 of a loopback address of its own (127.0.0.N: other tests and
    agents on this machine keep 127.0.0.1); skipped where port 80 cannot be bound (not root)."""
    for _ in range(20):
        site = Linking()
        site.host, site.port = f"127.0.{random.randint(1, 254)}.{random.randint(2, 254)}", 80
        try:
            return site.start()
        except PermissionError:
            pytest.skip("port 80 needs root here")
        except OSError:  # that address is taken: another one
            continue
    pytest.skip("no free loopback address with port 80")


def test_a_next_link_with_the_default_port_spelled_out_is_followed():
    """``HTTP://host:80`` is ``http://host``. Break: compare scheme and netloc as written in
    ``JsonApi._follow`` (plugin_spec/http.py: ``if urlsplit(url)[:2] != urlsplit(self.base_url)[:2]``
    instead of ``if origin(url) != origin(self.base_url)``): ``:80`` then looks like another
    port and this test fails."""
    with on_port_80() as site:
        host = site.host
        site.next_base = f"HTTP://{host}:80"
        api = JsonApi(f"http://{host}/api", PROFILE, FAST, headers={"x-api-key": API_KEY}, limit_key=fresh_key("p"))
        with api:
            assert [item["id"] for page in api.pages("/items", {}) for item in page] == ["a", "b"]
        assert [entry["query"] for entry in site.request_log()] == [{}, {"page": "2"}]


def test_a_next_link_to_another_port_is_refused_before_anything_is_sent_there():
    """Break: drop the origin check in ``JsonApi._follow`` (plugin_spec/http.py, the ``if
    origin(url) != origin(self.base_url)`` block): the other port then receives the key and
    this test fails."""
    with Elsewhere() as elsewhere, Linking() as site:
        site.next_base = elsewhere.root_url  # the same host, another port
        api = JsonApi(site.base_url, PROFILE, FAST, headers={"x-api-key": API_KEY}, limit_key=fresh_key("o"))
        seen: list[str] = []
        with api, pytest.raises(BadData, match="next link to another host"):
            for page in api.pages("/items", {}):
                seen += [item["id"] for item in page]
        assert seen == ["a"]  # the caller has the page it was given
        assert elsewhere.received == []  # prefetching included: nothing went to the other port


# -- rule 10: only the channel's own code means "already recorded" -----------------------------------


class LockedOrders(BmpSandbox):
    """The Back Market Pro sandbox, but a shipment of ``locked`` orders is answered 409 with
    another code than ``tracking_already_recorded`` (an order being edited in the portal)."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.locked: set[str] = set()

    def _api_reply(self, method, path, query, headers, body, host, entry, fail):
        order_id = path.rstrip("/").split("/")[-2] if path.rstrip("/").endswith("/shipments") else None
        if method == "POST" and order_id in self.locked and self._accounts.get(headers.get("x-api-key") or ""):
            entry["key_ok"] = True
            return _error(409, "order_locked", f"Order {order_id} is being edited; try again once it is saved.")
        return super()._api_reply(method, path, query, headers, body, host, entry, fail)


def shipment_of(order: dict[str, Any], shipment_id: int, tracking: str) -> Shipment:
    # no lines: the whole order ships in this package
    return Shipment(shipment_id=shipment_id, source_order_id=order["id"], carrier="UPS", tracking_number=tracking,
                    shipped_at=datetime.now(UTC) - timedelta(hours=1), lines=[])  # fmt: skip


def test_a_409_with_another_code_than_tracking_already_recorded_is_a_failure_not_already_recorded(monkeypatch):
    """Break: accept any 409 in ``BackMarketProClient.post_shipment``
    (plugins/backmarket_pro/backmarket_pro/client.py: ``if exc.status == 409:`` instead of
    ``if exc.status == 409 and exc.code == TRACKING_ALREADY_RECORDED:``): the locked order's
    tracking is then reported already recorded, and this test fails."""
    monkeypatch.setattr(bmp_plugin, "client_options", ClientOptions(retries=0, read_timeout=5, rate_limit=1000))
    key = fresh_key("bmp")
    with LockedOrders(api_key=key, orders=6, seed=5) as channel:
        unshipped = [o for o in channel.orders(key) if o["fulfillment_status"] == "unfulfilled" and not o["cancelled"]]
        recorded, locked = unshipped[:2]
        channel.locked.add(locked["id"])
        settings = BackMarketProSettings(website_url=channel.base_url, x_api_key=key)
        first = bmp_plugin.cartplugin_upload_tracking(settings=settings, shipments=[shipment_of(recorded, 1, "1ZA")])
        assert first[0].ok and not first[0].already_recorded
        again = [shipment_of(recorded, 2, "1ZA"), shipment_of(locked, 3, "1ZB")]
        results = bmp_plugin.cartplugin_upload_tracking(settings=settings, shipments=again)
        # the channel's own code: the repeat is success, already recorded
        assert (results[0].ok, results[0].already_recorded) == (True, True)
        # another 409: a failure staff can read, never "already recorded"
        assert (results[1].ok, results[1].already_recorded) == (False, False)
        assert "HTTP 409" in results[1].message and "being edited" in results[1].message
        # the client says the same to any caller
        with BackMarketProClient(settings, retries=0) as client, pytest.raises(Rejected) as info:
            client.post_shipment(locked["id"], {"carrier": "UPS", "tracking_number": "1ZC"})
        assert (info.value.status, info.value.code) == (409, "order_locked") != (409, TRACKING_ALREADY_RECORDED)
        assert next(o for o in channel.orders(key) if o["id"] == locked["id"])["shipments"] == []


# -- rule 7: a lost key file is an error, never a new key -------------------------------------------


def test_a_missing_key_file_refuses_a_second_companys_first_secret_and_loses_nothing(
    run, bmp, sandbox, db_target, tmp_path
):
    """Break: make ``_fernet(create=True)`` create a key whenever the file is missing
    (host/records/secrets.py: ``if not create:`` instead of ``if not create or _sealed_rows_exist(db):``):
    company B's secret is then sealed with a new key file, and this test fails."""

    def connect_company(name: str) -> None:
        run("companies", "add", name)
        run("website-settings", name, "--store-plugin", "backmarket_pro", "--allow-order-download")

    connect_company("Alpha")
    run("cart-settings", "Alpha", "--set", f"website_url={sandbox.base_url}", "--set", f"x_api_key={API_KEY}")
    connect_company("Beta")
    key_file = tmp_path / "cart.key"  # next to a SQLite file; named by CARTPLUGIN_SECRET_KEY_FILE for PostgreSQL
    saved = key_file.read_bytes()
    key_file.unlink()
    before = db_digest(db_target)

    result = run("cart-settings", "Beta", "--set", f"website_url={sandbox.base_url}", "--set",
                 "x_api_key=beta-key-0000-1111", ok=False)  # fmt: skip
    assert not key_file.exists()  # no new key: Alpha's secret would never open again
    assert db_digest(db_target) == before  # nothing written
    assert result.exit_code == 1, result.output
    assert "cart.key" in result.output and "missing" in result.output and "restore it" in result.output
    assert "beta-key" not in result.output
    db = connect(db_target)
    try:
        assert db.execute(
            "SELECT COUNT(*) FROM cart_settings s JOIN companies c ON c.id = s.company_id WHERE c.name = 'Beta'"
        ).fetchone() == (0,)
    finally:
        db.close()

    key_file.write_bytes(saved)
    key_file.chmod(0o600)
    assert "Connection established" in run("test-settings", "Alpha").output  # Alpha's key still opens
    # and Beta's secret can be set now that the key is back
    run("cart-settings", "Beta", "--set", f"website_url={sandbox.base_url}", "--set", f"x_api_key={API_KEY}")
    assert "Connection established" in run("test-settings", "Beta").output
