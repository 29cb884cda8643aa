"""``cartplugin new-plugin NAME``: write a ready-to-install channel plugin package.

The package is a working plugin built on the channel toolkit (``plugin_spec.http``,
``plugin_spec.wire``, ``plugin_spec.sandbox``): a settings model, a client that holds only
paths and parameters, a mapping, thin hooks, a sandbox on ``ApiSandbox`` and a tests file that
runs the conformance kit against it (and passes). The author changes paths and mapping to the
channel's; docs/writing-a-plugin.md continues from there.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

from .errors import HostError

_NAME = re.compile(r"^[a-z][a-z0-9_]{1,40}$")

TEMPLATES: dict[str, str] = {
    "pyproject.toml": """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "$title channel for cartplugin"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["cartplugin", "requests>=2.31", "pydantic>=2.6"]

[project.optional-dependencies]
test = ["pytest>=8"]

[project.entry-points.cartplugin]
$channel = "$package.plugin"

[tool.setuptools]
packages = ["$package"]
""",
    "README.md": """\
# $dist

The **$title** sales channel for [cartplugin](https://github.com/): download orders, upload tracking.

```sh
pip install -e '.[test]'        # into the same environment as cartplugin
cartplugin plugins              # lists "$channel"
python -m pytest                # the conformance kit (plugin_spec.testing) plus your own tests
```

Where things go (docs/writing-a-plugin.md of cartplugin walks through each):

| file | what |
|---|---|
| `$package/settings.py` | the Cart General fields staff fill in; credentials typed `SecretStr` |
| `$package/plugin.py` | the hooks; each stub says what it must do |
| `tests/test_${channel}_conformance.py` | the kit: fill in the sandbox fixtures, then make it pass |
""",
    "$package/__init__.py": '''\
"""$title channel plugin for cartplugin."""

__version__ = "0.1.0"
''',
    "$package/settings.py": """\
\"\"\"Cart General settings of a $title company: each field is one setting staff fill in.\"\"\"

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from plugin_spec import CartSettings, validators

DEFAULT_API_URL = "https://api.example.com"


class ${model}(CartSettings):
    api_url: str = Field(default=DEFAULT_API_URL, title="API URL", max_length=2000)
    api_key: SecretStr = Field(title="API key", min_length=8, max_length=512)

    @field_validator("api_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return validators.api_url(value, DEFAULT_API_URL)  # https, except for a local sandbox

    @field_validator("api_key")
    @classmethod
    def _check_key(cls, value: SecretStr) -> SecretStr:
        validators.header_safe_secret(value.get_secret_value())
        return value
""",
    "$package/client.py": """\
\"\"\"The $title API: its paths, query parameters and headers. YOUR PART: change them to the
channel's. Timeouts, retries, the rate limit, size cap, error mapping and paging are
``plugin_spec.http`` (docs/channel-toolkit.md of cartplugin).\"\"\"

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from plugin_spec.http import ApiProfile, HttpOptions, JsonApi, Rejected
from plugin_spec.wire import safe_segment

from . import __version__
from .settings import DEFAULT_API_URL, ${model}

ACCOUNT_PATH = "/v1/account"
ORDERS_PATH = "/v1/orders"
ALREADY_RECORDED = "already_recorded"

PROFILE = ApiProfile(
    name="$title",
    check_url=f"Check the API URL (normally {DEFAULT_API_URL}).",
    key_name="API key",
    auth_hint="Check the API key in Cart General.",
    error_detail=lambda body: str(body.get("error", {}).get("message", ""))[:300] if isinstance(body, dict) else "",
    error_code=lambda body: body.get("error", {}).get("code") if isinstance(body, dict) else None,
)


@dataclass(frozen=True)
class ClientOptions(HttpOptions):
    page_size: int = 50


class Client(JsonApi):
    def __init__(self, settings: ${model}, options: ClientOptions = ClientOptions()):
        key = settings.api_key.get_secret_value()
        headers = {"x-api-key": key, "User-Agent": f"$dist/{__version__}"}
        super().__init__(settings.api_url, PROFILE, options, headers=headers, limit_key=key, retry_post=True)
        self.page_size = options.page_size

    def account(self) -> Any:
        return self.request("GET", ACCOUNT_PATH)

    def iter_orders(self, since: datetime | None, unfulfilled_only: bool) -> Iterator[Any]:
        params = {"page-size": str(self.page_size), "status": "unfulfilled" if unfulfilled_only else "any"}
        if since is not None:
            params["updated_since"] = since.astimezone(UTC).isoformat()
        for page in self.pages(ORDERS_PATH, params):
            yield from page

    def post_shipment(self, order_id: str, body: dict[str, Any]) -> bool:
        \"\"\"True when recorded now, False when the channel already had it.\"\"\"
        try:
            path = f"{ORDERS_PATH}/{safe_segment(order_id, 'order id')}/shipments"
            self.request("POST", path, json=body, body_needed=False)
        except Rejected as exc:
            if exc.status == 409 and exc.code == ALREADY_RECORDED:
                return False
            raise
        return True
""",
    "$package/mapping.py": """\
\"\"\"The $title JSON <-> plugin_spec models, pure functions. YOUR PART: change the field names
to the channel's. The readers of ``plugin_spec.wire`` refuse floats as money, implausible
dates and ids that cannot be a URL path segment, naming the field.\"\"\"

from __future__ import annotations

from typing import Any

from plugin_spec import BadOrder, ChannelOrder, OrderLine, Shipment, wire
from plugin_spec.wire import money, plain_id, text, timestamp


def channel_order(raw: dict[str, Any]) -> ChannelOrder:
    lines = raw.get("lines")
    if not isinstance(lines, list) or not lines:
        raise wire.MappingError("lines must be a non-empty list")
    return ChannelOrder(
        source_order_id=plain_id(raw.get("id"), "id"),
        created_at=timestamp(raw.get("created_at"), "created_at"),
        updated_at=timestamp(raw.get("updated_at"), "updated_at"),
        currency=text(raw.get("currency"), "currency", required=True),
        subtotal=money(raw.get("subtotal"), "subtotal"),
        shipping_total=money(raw.get("shipping"), "shipping"),
        tax_total=money(raw.get("tax"), "tax"),
        grand_total=money(raw.get("total"), "total"),
        channel_fulfillment_status=text(raw.get("status"), "status"),
        lines=[order_line(line, i) for i, line in enumerate(lines)],
    )


def order_line(raw: Any, index: int) -> OrderLine:
    where = f"lines[{index}]"
    if not isinstance(raw, dict):
        raise wire.MappingError(f"{where} must be an object")
    return OrderLine(
        source_line_id=plain_id(raw.get("id"), f"{where}.id"),
        sku=text(raw.get("sku"), f"{where}.sku", required=True),
        title=text(raw.get("title"), f"{where}.title") or "",
        quantity=raw.get("quantity"),
        unit_price=money(raw.get("price"), f"{where}.price"),
    )


def order_or_bad(raw: Any) -> ChannelOrder | BadOrder:
    return wire.order_or_bad(raw, channel_order, id_field="id", updated_field="updated_at", channel="$title")


def shipment_body(shipment: Shipment) -> dict[str, Any]:
    return {
        "tracking_number": shipment.tracking_number,
        "carrier": shipment.carrier,
        "tracking_url": shipment.tracking_url,
        "lines": [{"id": line.source_line_id, "quantity": line.quantity} for line in shipment.lines],
    }


def account_name(body: Any) -> str:
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name:
        raise wire.MappingError("the account has no name")
    return name
""",
    "$package/plugin.py": """\
\"\"\"The hooks of the $title channel: wiring only (client.py talks, mapping.py translates).\"\"\"

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from plugin_spec import ChannelError, ChannelInfo, TestResult, hookimpl
from plugin_spec.http import Rejected
from plugin_spec.models import BadOrder, ChannelOrder, Shipment, UploadResult
from plugin_spec.wire import MappingError, settings_as, upload_each

from . import __version__, mapping
from .client import Client, ClientOptions
from .settings import ${model}

if TYPE_CHECKING:
    import click

NAME = "$channel"
#: timeouts, retries and page size; tests replace this attribute to go faster
client_options = ClientOptions.from_env("CARTPLUGIN_${upper}_")


def make_client(settings: Any) -> Client:
    return Client(settings_as(${model}, settings), client_options)


@hookimpl
def cartplugin_channel_info() -> ChannelInfo:
    return ChannelInfo(name=NAME, display_name="$title WebsiteCartPlugin", version=__version__, settings_model=${model})


@hookimpl
def cartplugin_test_settings(settings: ${model}) -> TestResult:
    try:
        with make_client(settings) as client:
            name = mapping.account_name(client.account())
    except (ChannelError, MappingError) as exc:
        return TestResult(ok=False, message=str(exc))
    return TestResult(ok=True, account_name=name, message=f"Connected to $title as {name}")


@hookimpl
def cartplugin_download_orders(
    settings: ${model}, since: datetime | None, unfulfilled_only: bool
) -> Iterator[ChannelOrder | BadOrder]:
    settings = settings_as(${model}, settings)  # fails now, not at the first next()
    return _download(settings, since, unfulfilled_only)


def _download(settings: ${model}, since: datetime | None, unfulfilled_only: bool) -> Iterator[ChannelOrder | BadOrder]:
    with make_client(settings) as client:
        for raw in client.iter_orders(since, unfulfilled_only):
            yield mapping.order_or_bad(raw)


@hookimpl
def cartplugin_upload_tracking(settings: ${model}, shipments: list[Shipment]) -> list[UploadResult]:
    with make_client(settings) as client:
        # up to client_options.concurrency shipments in flight; the rate limiter paces each request
        return upload_each(shipments, lambda shipment: _upload_one(client, shipment), label="$title",
                           concurrency=client.options.concurrency)


def _upload_one(client: Client, shipment: Shipment) -> UploadResult:
    sid, number = shipment.shipment_id, shipment.tracking_number
    try:
        created = client.post_shipment(shipment.source_order_id, mapping.shipment_body(shipment))
    except Rejected as exc:
        message = f"$title refused tracking {number} for order {shipment.source_order_id}: {exc.detail or exc.status}"
        return UploadResult(shipment_id=sid, ok=False, message=message)
    if created:
        return UploadResult(shipment_id=sid, ok=True, message=f"Tracking {number} recorded")
    message = f"Tracking {number} was already recorded"
    return UploadResult(shipment_id=sid, ok=True, already_recorded=True, message=message)


@hookimpl
def cartplugin_register_commands(cli: click.Group) -> None:
    \"\"\"`cartplugin $command sandbox`: the local fake of the $title API, to try the plugin on.\"\"\"
    import click  # the host's CLI brings it; imported here so the hooks load without it

    @cli.group("$command")
    def group() -> None:
        \"\"\"$title channel tools.\"\"\"

    @group.command("sandbox")
    @click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
    @click.option("--port", default=8770, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
    @click.option("--api-key", default="sandbox-key-0001", show_default=True, help="The sandbox account's key.")
    @click.option("--orders", default=12, show_default=True, type=click.IntRange(0, 100_000), help="Orders to make.")
    def sandbox(host: str, port: int, api_key: str, orders: int) -> None:
        \"\"\"Serve the $title sandbox until Ctrl-C; put its API URL and key into Cart General.\"\"\"
        from plugin_spec.sandbox import run_in_foreground

        from .sandbox import Sandbox

        server = Sandbox(host=host, port=port, api_key=api_key, orders=orders).start()
        # a sandbox key opens nothing but this local fake, so it is shown whole, to be pasted
        lines = ["$title sandbox running", f"API URL: {server.base_url}", f"API key: {api_key}",
                 f"Inspect: {server.control_url}/"]  # fmt: skip
        run_in_foreground(server, lines, click.echo)
""",
    "$package/sandbox.py": """\
\"\"\"A local fake of the $title API for tests and demos, on ``plugin_spec.sandbox.api``
(key check, request log, keyset paging, fault switches and ``GET /_sandbox/`` come from the
base). YOUR PART: make its routes and orders look like the channel's.\"\"\"

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from plugin_spec.sandbox import Reply
from plugin_spec.sandbox.api import ApiSandbox, Request, error


class Sandbox(ApiSandbox):
    prefix = "/api"
    routes = [
        ("GET", "/v1/account", "account"),
        ("GET", "/v1/orders", "list_orders"),
        ("POST", "/v1/orders/{id}/shipments", "post_shipment"),
    ]

    def __init__(self, host: str = "127.0.0.1", port: int = 0, api_key: str = "sandbox-key-0001", orders: int = 12):
        super().__init__(host, port, api_key)
        self.orders: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1001)
        self._clock = datetime.now(UTC) - timedelta(days=1)
        for _ in range(orders):
            self.add_order()

    def add_order(self) -> str:
        with self._lock:
            order_id, stamp = str(next(self._ids)), self._tick()
            self.orders[order_id] = {
                "id": order_id, "created_at": stamp, "updated_at": stamp, "currency": "EUR", "status": "unfulfilled",
                "subtotal": "20.00", "shipping": "4.90", "tax": "4.80", "total": "29.70", "tracking": [],
                "lines": [{"id": f"{order_id}-1", "sku": "SKU-1", "title": "A thing", "quantity": 2, "price": "10.00"}],
            }
            return order_id

    def _tick(self) -> str:
        self._clock = max(datetime.now(UTC), self._clock + timedelta(microseconds=1))
        return self._clock.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def account(self, request: Request) -> Reply:
        return Reply(200, {"name": "Sandbox Seller"})

    def list_orders(self, request: Request) -> Reply:
        since = request.query.get("updated_since")
        floor = datetime.fromisoformat(since).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if since else ""
        wanted = request.query.get("status", "any")
        items = [o for o in self.orders.values() if o["updated_at"] >= floor and wanted in ("any", o["status"])]
        return self.page(request, items, key=lambda o: (o["updated_at"], o["id"]))

    def post_shipment(self, request: Request) -> Reply:
        order, body = self.orders.get(request.params["id"]), request.json()
        if order is None:
            return error(404, "not_found", f"No order {request.params['id']}.")
        if not isinstance(body, dict) or not isinstance(body.get("tracking_number"), str):
            return error(422, "validation_error", "tracking_number is required.")
        if body["tracking_number"] in order["tracking"]:
            return error(409, ALREADY_RECORDED, "This tracking number is already recorded.")
        order["tracking"].append(body["tracking_number"])
        order.update(status="fulfilled", updated_at=self._tick())
        return Reply(201, {"order_id": order["id"], "tracking_number": body["tracking_number"]})


ALREADY_RECORDED = "already_recorded"
""",
    "tests/test_${channel}_conformance.py": """\
\"\"\"The cartplugin conformance kit on this plugin and its sandbox.\"\"\"

from __future__ import annotations

import pytest

from $package import plugin
from $package.client import ClientOptions
from $package.sandbox import Sandbox
from $package.settings import ${model}
from plugin_spec.testing import ConformanceSuite, KitChannel

FAST = ClientOptions(connect_timeout=0.5, read_timeout=0.6, deadline=5, retries=2, backoff_factor=0.01,
                     backoff_jitter=0.01, backoff_max=0.05, retry_after_max=1, page_size=5)


class SandboxChannel(KitChannel):
    \"\"\"What the kit asks the sandbox (read directly, not through the plugin).\"\"\"

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox

    def unfulfilled_order_ids(self) -> set[str]:
        return {o["id"] for o in self.sandbox.orders.values() if o["status"] == "unfulfilled"}

    def add_order(self) -> str:
        return self.sandbox.add_order()

    def recorded_tracking(self, order_id: str) -> list[str]:
        return list(self.sandbox.orders.get(order_id, {}).get("tracking", []))

    def inject(self, fault: str) -> bool:
        return self.sandbox.inject(fault)

    def clear_faults(self) -> None:
        self.sandbox.clear_faults()


@pytest.fixture(autouse=True)
def fast_client(monkeypatch):
    monkeypatch.setattr(plugin, "client_options", FAST)


@pytest.fixture
def sandbox():
    with Sandbox() as server:
        yield server


class TestConformance(ConformanceSuite):
    @pytest.fixture
    def cartplugin_kit_plugin(self):
        return plugin

    @pytest.fixture
    def cartplugin_kit_channel(self, sandbox):
        return SandboxChannel(sandbox)

    @pytest.fixture
    def cartplugin_kit_settings(self, sandbox):
        return ${model}(api_url=sandbox.base_url, api_key=sandbox.api_key)

    @pytest.fixture
    def cartplugin_kit_bad_key_settings(self, sandbox):
        return ${model}(api_url=sandbox.base_url, api_key="wrong-key-000000")


def test_the_plugin_describes_itself():
    info = plugin.cartplugin_channel_info()
    assert info.name == "$channel" and info.settings_model is ${model}
""",
}


def names(raw: str) -> dict[str, str]:
    """The names a plugin called ``raw`` gets: channel key, package, distribution, title."""
    channel = re.sub(r"[\s-]+", "_", raw.strip().lower())
    channel = channel.removeprefix("cartplugin_")
    if not _NAME.match(channel):
        raise HostError(
            f"a plugin name is a letter then letters, digits, '-' or '_' (2 to 41 characters), not {raw[:50]!r}"
        )
    words = [w for w in channel.split("_") if w]
    return {
        "channel": channel,
        "package": f"cartplugin_{channel}",
        "dist": "cartplugin-" + channel.replace("_", "-"),
        "title": " ".join(w.capitalize() for w in words),
        "model": "".join(w.capitalize() for w in words) + "Settings",
        "command": channel.replace("_", "-"),
        "upper": channel.upper(),
    }


def generate(raw_name: str, directory: Path) -> Path:
    """Write the package into ``directory/<distribution name>``; refuses to overwrite anything."""
    values = names(raw_name)
    root = directory / values["dist"]
    if root.exists():
        raise HostError(f"{root} already exists; choose another name or --directory")
    for template_path, text in TEMPLATES.items():
        target = root / Template(template_path).substitute(values)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(Template(text).substitute(values), encoding="utf-8")
    return root
