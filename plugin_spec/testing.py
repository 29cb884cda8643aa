"""The conformance kit: checks a channel plugin against the cartplugin contract, on a live sandbox.

It is a pytest plugin (entry point ``cartplugin_kit`` in the ``pytest11`` group), loaded in
every pytest run of an environment where cartplugin is installed, and it does nothing there
until a test module opts in by subclassing :class:`ConformanceSuite`::

    import pytest
    from plugin_spec.testing import ConformanceSuite, KitChannel

    class TestConformance(ConformanceSuite):
        @pytest.fixture
        def cartplugin_kit_plugin(self):
            return my_channel.plugin               # the module (or object) your entry point names

        @pytest.fixture
        def cartplugin_kit_channel(self, sandbox):
            return MySandboxChannel(sandbox)        # a KitChannel: what the kit asks your sandbox

        @pytest.fixture
        def cartplugin_kit_settings(self, sandbox):
            return MySettings(api_url=sandbox.base_url, token=sandbox.token)

        @pytest.fixture
        def cartplugin_kit_bad_key_settings(self, sandbox):
            return MySettings(api_url=sandbox.base_url, token="wrong-token-123456")

The four fixtures may also live in a ``conftest.py``. Every check fails with a message that
says what to fix; ``docs/writing-a-plugin.md`` walks through it. The suite mutates the
channel (it adds an order and uploads tracking), so give it a fresh sandbox per test.
"""

from __future__ import annotations

import abc
import inspect
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any, NoReturn

import pluggy
import pytest
from pydantic import SecretStr

from . import hookspecs
from .credentials import MemoryCredentialStore
from .errors import ChannelError, RateLimited, TransientError
from .hookspecs import PROJECT_NAME
from .models import (
    AcceptRequest,
    AcceptResult,
    BadOrder,
    CartSettings,
    ChannelInfo,
    ChannelOrder,
    Shipment,
    ShipmentLine,
    TestResult,
    UploadResult,
)
from .wire import without_secrets

__all__ = ["ConformanceSuite", "Harness", "KitChannel", "kit_fail", "secret_values"]

HOOKS_DOC = "docs/plugin-hooks.md"
#: field names that hold a credential: they must be typed SecretStr
#: (an address of one, such as ``token_url`` or ``auth_endpoint``, is not one)
SECRET_NAME = re.compile(
    r"^(?!.*_(url|uri|endpoint|region)$).*(key|token|secret|password|passwd|credential|auth)", re.IGNORECASE
)
OPERATION_HOOKS = {
    "test_settings": "cartplugin_test_settings",
    "download_orders": "cartplugin_download_orders",
    "upload_tracking": "cartplugin_upload_tracking",
    "accept_orders": "cartplugin_accept_orders",
    "update_tracking": "cartplugin_upload_tracking",
}
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
#: shorter secrets are too likely to occur by chance in a message to be checked for
MIN_SECRET_LEN = 6


def kit_fail(problem: str, fix: str) -> NoReturn:
    """Fail the current check with what is wrong and what the author should change."""
    tokens = {v for store in _shown_stores for v in store.secret_values() if len(v) >= MIN_SECRET_LEN}
    problem = without_secrets(problem, _shown_secrets | tokens, lambda _secret: "<secret>")
    pytest.fail(f"cartplugin kit: {problem}\n  What to fix: {fix}", pytrace=False)


def secret_values(*settings: CartSettings | None) -> list[str]:
    """The raw values of the SecretStr fields (and of str fields named like a credential)."""
    found: list[str] = []
    for item in settings:
        if item is None:
            continue
        for name in type(item).model_fields:
            value = getattr(item, name, None)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif not (isinstance(value, str) and SECRET_NAME.search(name)):
                continue
            if len(value) >= MIN_SECRET_LEN and value not in found:
                found.append(value)
    return found


#: secrets of the settings the current check used: kit messages never print them
_shown_secrets: set[str] = set()
#: and the tokens its plugin obtained
_shown_stores: list[MemoryCredentialStore] = []


class KitChannel(abc.ABC):
    """What the kit needs to ask your channel's sandbox; subclass it in your tests.

    The kit compares what your plugin reports with what the sandbox really holds, so these
    read the sandbox directly (its Python API or control endpoints), never through the plugin.
    """

    @abc.abstractmethod
    def unfulfilled_order_ids(self) -> set[str]:
        """Ids (as your plugin reports them in ``source_order_id``) of every order that a
        download with ``unfulfilled_only=True`` and no ``since`` must yield."""

    @abc.abstractmethod
    def add_order(self) -> str:
        """Create one new unfulfilled order whose ``updated_at`` is newer than every other
        order's; return its id."""

    @abc.abstractmethod
    def recorded_tracking(self, order_id: str) -> list[str]:
        """The tracking numbers the channel holds for ``order_id`` (empty when none)."""

    def inject(self, fault: str) -> bool:
        """Make the sandbox answer every following API request with this trouble until
        :meth:`clear_faults`: ``"rate_limited"`` (429 with Retry-After), ``"server_error"``
        (503), ``"timeout"`` (no answer within the plugin's read timeout) or ``"cut_off_body"``
        (an answer that stops halfway). Return False when your sandbox cannot: that check is
        skipped. A sandbox on ``plugin_spec.sandbox.api.ApiSandbox`` does all four
        (``return self.sandbox.inject(fault)``)."""
        return False

    def clear_faults(self) -> None:  # noqa: B027 - optional: a channel that injects no fault has none to clear
        """Switch every injected fault off again."""

    def lose_next_answer(self) -> bool:
        """Make the sandbox apply the next change (a POST) but answer it with a 502, as when a
        proxy loses the answer. Return False when your sandbox cannot: that check is skipped."""
        return False

    def change_orders_during_download(self) -> bool:
        """Make the sandbox change two orders in the middle of the next download, right after
        it has served the first page: one already served and one not yet, each to an
        ``updated_at`` newer than every other order's, so both move to the end of a list sorted
        by it. Seed the sandbox with more than two pages of unfulfilled orders. Return False
        when your sandbox cannot: that check is skipped. A sandbox on
        ``plugin_spec.sandbox.api.ApiSandbox`` that implements ``bump(order)`` does it with
        ``set_faults(touch_during_download=1)``."""
        return False

    def declared_totals(self, order_id: str) -> Mapping[str, Any] | None:
        """The order's amounts as the sandbox holds them, for the kit to compare with the
        plugin's arithmetic (None: that check is skipped). Any of ``subtotal``,
        ``shipping_total``, ``tax_total``, ``discount_total``, ``grand_total`` (Decimal), and
        ``lines``: ``{source_line_id: {"line_total": ..., "unit_price": ..., "tax": ...,
        "discount": ...}}`` with the keys the channel states. A line's ``line_total`` is
        compared with the plugin's line total, or its unit price times the quantity."""
        return None

    def cancel_order(self, order_id: str) -> bool:
        """Cancel ``order_id`` on the channel as its buyer or the marketplace would (its
        modification date moves). Return False when your sandbox cannot: that check is skipped."""
        return False

    def cancel_line(self, order_id: str, line_id: str) -> bool:
        """Cancel one line (``source_line_id`` as your plugin reports it) of ``order_id`` on the
        channel, as its buyer or the marketplace would, leaving the other lines standing (the
        order's modification date moves). Return False when your sandbox cannot cancel that line
        (one shipped already): the kit tries another; when it cannot cancel any, that check is
        skipped."""
        return False

    # --- for channels whose API wants access tokens (OAuth 2.0): the sandbox's token endpoint

    def token_mints(self) -> int | None:
        """How many access tokens the sandbox's token endpoint has issued so far; None for a
        channel without tokens (an API key): the token checks are skipped."""
        return None

    def expire_tokens(self) -> bool:
        """Make every access token issued so far stop working, as when they expire or the
        channel revokes them early (the refresh token stays good)."""
        return False

    def issued_tokens(self) -> list[str]:
        """Every access and refresh token the sandbox issued: none may appear in a message."""
        return []

    def unknown_order_id(self) -> str:
        """An order id the channel does not have (override if yours must look a certain way)."""
        return "999000999"

    def make_shipment(self, order: ChannelOrder, shipment_id: int, tracking_number: str) -> Shipment:
        """A valid shipment of every line of ``order`` (override to add serial numbers)."""
        return Shipment(
            shipment_id=shipment_id,
            source_order_id=order.source_order_id,
            carrier="UPS",
            tracking_number=tracking_number,
            tracking_url=f"https://www.ups.com/track?tracknum={tracking_number}",
            shipped_at=datetime.now(UTC),
            lines=[
                ShipmentLine(source_line_id=line.source_line_id, sku=line.sku, quantity=line.quantity)
                for line in order.lines
            ],
        )


# ---------------------------------------------------------------------------------------------
# fixtures an author must provide: these defaults only explain how


def _missing(name: str, what: str) -> None:
    kit_fail(
        f"the fixture {name!r} is not defined",
        f"define `{name}` (in your ConformanceSuite subclass or a conftest.py) returning {what}. "
        "See docs/writing-a-plugin.md.",
    )


@pytest.fixture
def cartplugin_kit_plugin() -> Any:
    """Override: the plugin module or object your ``cartplugin`` entry point names."""
    _missing("cartplugin_kit_plugin", "your plugin module (the one with the @hookimpl functions)")


@pytest.fixture
def cartplugin_kit_settings() -> Any:
    """Override: an instance of your settings model that works against a running sandbox."""
    _missing("cartplugin_kit_settings", "an instance of your settings model pointing at a running sandbox")


@pytest.fixture
def cartplugin_kit_bad_key_settings() -> Any:
    """Override: the same settings as ``cartplugin_kit_settings`` but with a wrong key/token."""
    _missing("cartplugin_kit_bad_key_settings", "your good settings with a wrong key or token")


@pytest.fixture
def cartplugin_kit_channel() -> Any:
    """Override: a :class:`KitChannel` reading the same sandbox as the settings."""
    _missing("cartplugin_kit_channel", "a plugin_spec.testing.KitChannel over your sandbox")


# ---------------------------------------------------------------------------------------------
# the harness: calls a plugin the way the host does, through a fresh PluginManager


class Harness:
    """One plugin registered on a fresh pluggy manager with the cartplugin hook specs."""

    def __init__(self, plugin: Any):
        if plugin is None:
            kit_fail("cartplugin_kit_plugin returned None", "return your plugin module or object from the fixture")
        self.plugin = plugin
        #: the ``credentials`` every operation hook gets, as the host gives a company's: the
        #: kit reads the tokens the plugin obtained from it, to check that none is ever shown
        self.credentials = MemoryCredentialStore()
        _shown_secrets.clear()
        _shown_stores[:] = [self.credentials]
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        # check_pending is the separate test_hooks_match_the_specs; here only what calling needs
        _, exc = _catching(lambda: self.pm.register(plugin, name="plugin-under-test"))
        if exc is not None:
            kit_fail(f"the plugin does not register: {exc}", _spec_fix())

    def implements(self, hook: str) -> bool:
        return any(impl.plugin is self.plugin for impl in getattr(self.pm.hook, hook).get_hookimpls())

    def channel_info(self) -> ChannelInfo:
        if not self.implements("cartplugin_channel_info"):
            kit_fail("the plugin has no cartplugin_channel_info hook", f"implement it (see {HOOKS_DOC})")
        results = self.pm.hook.cartplugin_channel_info()
        if len(results) != 1 or not isinstance(results[0], ChannelInfo):
            kit_fail(
                f"cartplugin_channel_info returned {_short(results[0] if results else None)}, not a ChannelInfo",
                "return plugin_spec.ChannelInfo(name=..., display_name=..., version=..., settings_model=...)",
            )
        return results[0]

    def call(self, hook: str, **kwargs: Any) -> Any:
        _shown_secrets.update(secret_values(kwargs.get("settings")))
        if hook in OPERATION_HOOKS.values():
            kwargs.setdefault("credentials", self.credentials)
        if not self.implements(hook):
            kit_fail(f"the plugin has no {hook} hook", f"implement {hook} (see {HOOKS_DOC})")
        return getattr(self.pm.hook, hook)(**kwargs)

    def test_settings(self, settings: CartSettings) -> TestResult:
        result, exc = _catching(lambda: self.call("cartplugin_test_settings", settings=settings))
        if exc is not None:  # the check is exactly that it must not raise
            kit_fail(
                f"cartplugin_test_settings raised {type(exc).__name__}: {_clip(str(exc))}",
                "catch the failure and return TestResult(ok=False, message=<what the person should do>)",
            )
        if not isinstance(result, TestResult):
            kit_fail(
                f"cartplugin_test_settings returned {_short(result)}, not a TestResult",
                "return plugin_spec.TestResult(ok=..., message=...)",
            )
        return result

    def download(self, settings: CartSettings, since: datetime | None) -> list[ChannelOrder | BadOrder]:
        stream = self.call("cartplugin_download_orders", settings=settings, since=since, unfulfilled_only=True)
        if isinstance(stream, list | tuple | set | dict) or not isinstance(stream, Iterator):
            kit_fail(
                f"cartplugin_download_orders returned {_short(stream)}, not an iterator",
                "make the hook a generator (use `yield`, or return a generator function's result) so orders "
                "stream page by page and memory stays flat; do not build a list",
            )
        items = list(stream)
        for position, item in enumerate(items):
            if not isinstance(item, ChannelOrder | BadOrder):
                kit_fail(
                    f"the download yielded {_short(item)} at position {position}",
                    "yield plugin_spec.ChannelOrder for each order (BadOrder for one you cannot map)",
                )
        return items

    def accept(self, settings: CartSettings, orders: list[ChannelOrder]) -> list[AcceptResult]:
        requests = [AcceptRequest(source_order_id=o.source_order_id) for o in orders]
        results, exc = _catching(lambda: self.call("cartplugin_accept_orders", settings=settings, orders=requests))
        if exc is not None:
            kit_fail(f"cartplugin_accept_orders raised {type(exc).__name__}: {_clip(str(exc))}",
                     "return AcceptResult(ok=False, message=...) for an order that cannot be accepted")  # fmt: skip
        if not isinstance(results, list) or sorted(
            getattr(r, "source_order_id", None) or "" for r in results
        ) != sorted(r.source_order_id for r in requests):
            kit_fail(
                f"cartplugin_accept_orders returned {_short(results)}",
                "return exactly one plugin_spec.AcceptResult per request, echoing its source_order_id",
            )
        failed = [r for r in results if not r.ok]
        if failed:
            kit_fail(f"accepting order {failed[0].source_order_id} failed: {failed[0].message}",
                     "check the accept call your plugin sends against the sandbox")  # fmt: skip
        return results

    def upload(self, settings: CartSettings, shipments: list[Shipment]) -> list[UploadResult]:
        results, exc = _catching(
            lambda: self.call("cartplugin_upload_tracking", settings=settings, shipments=shipments)
        )
        if exc is not None:
            kit_fail(
                f"cartplugin_upload_tracking raised {type(exc).__name__}: {_clip(str(exc))}",
                "catch per-shipment failures and return UploadResult(ok=False, message=...) for that shipment; "
                "a repeat of recorded tracking is ok=True, already_recorded=True",
            )
        if not isinstance(results, list) or not all(isinstance(r, UploadResult) for r in results):
            kit_fail(
                f"cartplugin_upload_tracking returned {_short(results)}",
                "return a list with one plugin_spec.UploadResult per shipment",
            )
        sent = sorted(s.shipment_id for s in shipments)
        got = sorted(r.shipment_id for r in results)
        if got != sent:
            kit_fail(
                f"{len(shipments)} shipments (ids {sent}) got {len(results)} results (ids {got})",
                "return exactly one UploadResult per shipment, with shipment_id copied from the Shipment",
            )
        return results


def _catching(call: Any) -> tuple[Any, Exception | None]:
    """Run ``call``; return (result, None) or (None, exception).

    Checks fail *outside* the ``except`` block, so pytest does not print the plugin's exception
    as the context of the kit's failure (its text may hold the very secret being checked).
    """
    try:
        return call(), None
    except Exception as exc:  # noqa: BLE001
        return None, exc


def _spec_fix() -> str:
    return (
        f"name each hook exactly as in plugin_spec/hookspecs.py ({HOOKS_DOC}), decorate it with "
        "plugin_spec.hookimpl, and take only arguments the spec has"
    )


def _type_name(annotation: Any) -> str:
    return annotation.__name__ if isinstance(annotation, type) else str(annotation)


def _short(value: Any) -> str:
    return f"{type(value).__name__} {_clip(repr(value), 80)}"


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _readable(message: str) -> bool:
    text = message.strip()
    return len(text) >= 10 and "Traceback" not in text and not text.startswith("<") and " " in text


def _orders(items: Iterable[ChannelOrder | BadOrder]) -> list[ChannelOrder]:
    return [item for item in items if isinstance(item, ChannelOrder)]


def _no_bad_orders(items: Iterable[ChannelOrder | BadOrder]) -> None:
    bad = [item for item in items if isinstance(item, BadOrder)]
    if bad:
        kit_fail(
            "the download yielded BadOrder for orders the sandbox considers valid: "
            + "; ".join(f"{b.source_order_id}: {b.message}" for b in bad[:3]),
            "your mapping rejects orders your own sandbox serves; fix the mapping (or the sandbox data)",
        )


# ---------------------------------------------------------------------------------------------
# the suite


class ConformanceSuite:
    """Subclass as ``class TestSomething(ConformanceSuite)`` in a test module to run the kit.

    The class name does not start with ``Test``, so pytest collects nothing until you subclass
    it; override a single ``test_*`` method (e.g. with ``pytest.mark.skip``) only with a reason.
    """

    @pytest.fixture
    def cartplugin_kit(self, cartplugin_kit_plugin: Any) -> Harness:
        return Harness(cartplugin_kit_plugin)

    @pytest.fixture
    def cartplugin_kit_info(self, cartplugin_kit: Harness) -> ChannelInfo:
        return cartplugin_kit.channel_info()

    # --- the contract ---------------------------------------------------------------------

    def test_hooks_match_the_specs(self, cartplugin_kit_plugin: Any) -> None:
        """Registers on a fresh PluginManager and passes check_pending; implements every hook it needs."""
        pm = pluggy.PluginManager(PROJECT_NAME)
        pm.add_hookspecs(hookspecs)

        def register_and_check() -> None:
            pm.register(cartplugin_kit_plugin, name="plugin-under-test")
            pm.check_pending()

        _, exc = _catching(register_and_check)
        if exc is not None:
            kit_fail(f"the hooks do not match the specs: {exc}", _spec_fix())
        implemented = {caller.name for caller in pm.get_hookcallers(cartplugin_kit_plugin) or []}
        if "cartplugin_channel_info" not in implemented:
            kit_fail("the plugin does not implement cartplugin_channel_info", f"add it (see {HOOKS_DOC})")
        (info,) = pm.hook.cartplugin_channel_info() or [None]
        capabilities = getattr(info, "capabilities", frozenset(OPERATION_HOOKS))
        missing = sorted(OPERATION_HOOKS[c] for c in capabilities if OPERATION_HOOKS[c] not in implemented)
        if missing:
            kit_fail(
                f"ChannelInfo.capabilities promises {sorted(capabilities)} but the plugin lacks {missing}",
                f"implement {', '.join(missing)} (see {HOOKS_DOC}) or drop it from capabilities",
            )
        for name in implemented:
            impl = getattr(cartplugin_kit_plugin, name, None)
            if name == "cartplugin_download_orders" or impl is None:
                continue
            if inspect.isgeneratorfunction(impl):
                kit_fail(f"{name} is a generator function", "only cartplugin_download_orders streams; return a value")

    def test_channel_info_is_complete(self, cartplugin_kit_info: ChannelInfo) -> None:
        """Name, display name, version and a settings model whose fields all have a label."""
        info = cartplugin_kit_info
        for field in ("display_name", "version"):
            if not getattr(info, field).strip():
                kit_fail(f"ChannelInfo.{field} is blank", f"give ChannelInfo a {field} staff can read")
        model: object = info.settings_model  # whatever the plugin really gave, checked below
        if not (isinstance(model, type) and issubclass(model, CartSettings)):
            kit_fail(
                f"ChannelInfo.settings_model is {model!r}, not a subclass of CartSettings",
                "declare `class MySettings(plugin_spec.CartSettings)` and add your fields to it",
            )
        unlabelled = [name for name, f in model.model_fields.items() if not (f.title or "").strip()]
        if unlabelled:
            kit_fail(
                f"settings fields without a title: {unlabelled}",
                "give each field Field(title=...): the title is the label staff see on the Cart General screen",
            )

    def test_settings_model_marks_secrets(
        self, cartplugin_kit_info: ChannelInfo, cartplugin_kit_settings: Any, cartplugin_kit_bad_key_settings: Any
    ) -> None:
        """Credentials are SecretStr, so the host stores and shows them masked."""
        model = cartplugin_kit_info.settings_model
        for label, settings in (("cartplugin_kit_settings", cartplugin_kit_settings),
                                ("cartplugin_kit_bad_key_settings", cartplugin_kit_bad_key_settings)):  # fmt: skip
            if not isinstance(settings, model):
                kit_fail(
                    f"the {label} fixture returned {_short(settings)}, not an instance of {model.__name__}",
                    f"return {model.__name__}(...) from the {label} fixture",
                )
        plain = [
            name
            for name, field in model.model_fields.items()
            if SECRET_NAME.search(name) and field.annotation is not SecretStr
        ]
        if plain:
            kit_fail(
                f"settings fields {plain} look like credentials but are typed "
                + ", ".join(_type_name(model.model_fields[n].annotation) for n in plain),
                "type each credential exactly `SecretStr` (from pydantic; not `str`, not `SecretStr | None`): "
                "the host stores and shows only SecretStr fields masked",
            )
        if not any(field.annotation is SecretStr for field in model.model_fields.values()):
            kit_fail(
                f"{model.__name__} has no SecretStr field",
                "type the channel's key or token `SecretStr`; the kit needs one to check the wrong-key path",
            )
        if secret_values(cartplugin_kit_settings) == secret_values(cartplugin_kit_bad_key_settings):
            kit_fail(
                "cartplugin_kit_bad_key_settings has the same secrets as cartplugin_kit_settings",
                "change the key/token in the bad-key fixture to one the sandbox refuses",
            )

    # --- Test Settings ----------------------------------------------------------------------

    def test_test_settings_succeeds_with_good_settings(
        self, cartplugin_kit: Harness, cartplugin_kit_settings: Any
    ) -> None:
        result = cartplugin_kit.test_settings(cartplugin_kit_settings)
        if not result.ok:
            kit_fail(
                f"Test Settings failed with the good settings: {result.message}",
                "check that cartplugin_kit_settings points at the running sandbox, and that the call "
                "Test Settings makes is one the sandbox answers",
            )
        if not result.message.strip():
            kit_fail("Test Settings succeeded with an empty message", "say what it connected to, e.g. the account name")

    def test_test_settings_fails_readably_on_a_wrong_key(
        self, cartplugin_kit: Harness, cartplugin_kit_bad_key_settings: Any, cartplugin_kit_settings: Any
    ) -> None:
        result = cartplugin_kit.test_settings(cartplugin_kit_bad_key_settings)
        if result.ok:
            kit_fail(
                "Test Settings returned ok=True with a wrong key",
                "make one authenticated call and return ok=False when the channel answers 401/403",
            )
        if not _readable(result.message):
            kit_fail(
                f"the wrong-key message is not something a person can act on: {result.message!r}",
                "say what is wrong and what to do, e.g. 'The channel refused the token (HTTP 401). "
                "Check the token in Cart General.'",
            )
        _check_no_secret(
            [result.message, result.account_name or ""],
            secret_values(cartplugin_kit_settings, cartplugin_kit_bad_key_settings),
            "the wrong-key TestResult",
        )

    # --- download ---------------------------------------------------------------------------

    def test_download_streams_every_unfulfilled_order_once(
        self, cartplugin_kit: Harness, cartplugin_kit_settings: Any, cartplugin_kit_channel: KitChannel
    ) -> None:
        expected = {str(i) for i in cartplugin_kit_channel.unfulfilled_order_ids()}
        if not expected:
            kit_fail("the sandbox has no unfulfilled orders", "seed the sandbox with a few unfulfilled orders")
        items = cartplugin_kit.download(cartplugin_kit_settings, since=None)
        _no_bad_orders(items)
        orders = _orders(items)
        ids = [o.source_order_id for o in orders]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            kit_fail(
                f"the download yielded these orders more than once: {twice[:10]}",
                "follow the channel's paging exactly once per page (check the next link / page number)",
            )
        missing = sorted(expected - set(ids))
        if missing:
            kit_fail(
                f"the download missed {len(missing)} of {len(expected)} unfulfilled orders, e.g. {missing[:5]}",
                "fetch every page, and every state the channel uses for orders still to ship",
            )
        extra = sorted(
            o.source_order_id for o in orders if o.source_order_id not in expected and not o.channel_cancelled
        )
        if extra:
            kit_fail(
                f"the download yielded orders that are not unfulfilled: {extra[:10]}",
                "with unfulfilled_only=True yield only orders still to ship (or cancelled ones, flagged "
                "channel_cancelled=True, so the host can tell staff)",
            )
        stamps = [o.updated_at for o in orders]
        if stamps != sorted(stamps):
            kit_fail(
                "orders do not come in ascending updated_at",
                "ask the channel for ascending modification order; the host's cursor assumes it",
            )

    def test_download_respects_since(
        self, cartplugin_kit: Harness, cartplugin_kit_settings: Any, cartplugin_kit_channel: KitChannel
    ) -> None:
        first = _orders(cartplugin_kit.download(cartplugin_kit_settings, since=LONG_AGO))
        stamps = sorted({o.updated_at for o in first})
        if len(stamps) < 2:
            kit_fail("the sandbox needs at least 2 unfulfilled orders with different updated_at",
                     "seed the sandbox with more orders")  # fmt: skip
        since = stamps[len(stamps) // 2]
        new_id = str(cartplugin_kit_channel.add_order())
        items = cartplugin_kit.download(cartplugin_kit_settings, since=since)
        _no_bad_orders(items)
        got = {o.source_order_id for o in _orders(items)}
        early = sorted(o.source_order_id for o in _orders(items) if o.updated_at < since)
        if early:
            kit_fail(
                f"with since={since.isoformat()} the download yielded orders updated before it: {early[:5]}",
                "pass `since` to the channel's modification-date filter (and drop older orders yourself "
                "if the channel's filter is coarser than the datetime)",
            )
        wanted = {o.source_order_id for o in first if o.updated_at >= since} | {new_id}
        missing = sorted(wanted - got)
        if missing:
            kit_fail(
                f"with since={since.isoformat()} (inclusive) the download missed {missing[:5]}"
                + (" (the order added after the first download)" if new_id in missing else ""),
                "`since` is inclusive: yield every order whose updated_at >= since",
            )

    def test_amounts_are_the_channels(
        self, cartplugin_kit: Harness, cartplugin_kit_settings: Any, cartplugin_kit_channel: KitChannel
    ) -> None:
        """Every amount of every order is the one the channel states: nothing left out, nothing
        counted twice, a line total never taken for a unit price."""
        orders = _orders(cartplugin_kit.download(cartplugin_kit_settings, since=LONG_AGO))
        compared = 0
        for order in orders:
            declared = cartplugin_kit_channel.declared_totals(order.source_order_id)
            if declared is None:
                continue
            compared += 1
            for field in ("subtotal", "shipping_total", "tax_total", "discount_total", "grand_total"):
                if field in declared and Decimal(declared[field]) != getattr(order, field):
                    _wrong_amount(order.source_order_id, field, getattr(order, field), declared[field])
            lines = {line.source_line_id: line for line in order.lines}
            for line_id, amounts in (declared.get("lines") or {}).items():
                line = lines.get(str(line_id))
                if line is None:
                    kit_fail(f"order {order.source_order_id} came without its line {line_id}",
                             "map every line of the channel's order")  # fmt: skip
                total = line.line_total if line.line_total is not None else (line.unit_price or 0) * line.quantity
                got = {"line_total": total, "unit_price": line.unit_price, "tax": line.tax, "discount": line.discount}
                for field, expected in amounts.items():
                    if got.get(field) is None or Decimal(expected) != got[field]:
                        _wrong_amount(f"{order.source_order_id} line {line_id}", field, got.get(field), expected)
        if not compared:
            pytest.skip(
                "the sandbox declares no order's amounts; implement KitChannel.declared_totals to run this check"
            )

    def test_download_loses_no_order_changed_while_it_runs(
        self, cartplugin_kit: Harness, cartplugin_kit_settings: Any, cartplugin_kit_channel: KitChannel
    ) -> None:
        if not cartplugin_kit_channel.change_orders_during_download():
            pytest.skip(
                "the sandbox cannot change orders during a download; implement "
                "KitChannel.change_orders_during_download to run this check"
            )
        items = cartplugin_kit.download(cartplugin_kit_settings, since=None)
        _no_bad_orders(items)
        got = {o.source_order_id for o in _orders(items)}
        missing = sorted({str(i) for i in cartplugin_kit_channel.unfulfilled_order_ids()} - got)
        if missing:
            kit_fail(
                f"with two orders changed during the download, it missed {len(missing)}, e.g. {missing[:5]}",
                "page by a keyset cursor, never by plain offsets: an order read on an early page that changes "
                "moves to the end, and the next one slides into the offsets already read "
                "(plugin_spec.paging.Keyset over the channel's offsets or tokens; docs/channel-toolkit.md)",
            )

    def test_download_with_a_wrong_key_raises_a_channel_error(
        self, cartplugin_kit: Harness, cartplugin_kit_bad_key_settings: Any, cartplugin_kit_settings: Any
    ) -> None:
        _, exc = _catching(lambda: cartplugin_kit.download(cartplugin_kit_bad_key_settings, since=None))
        if exc is None:
            kit_fail("a download with a wrong key raised nothing",
                     "raise plugin_spec.AuthError when the channel answers 401/403")  # fmt: skip
        if not isinstance(exc, ChannelError):
            kit_fail(
                f"a download with a wrong key raised {type(exc).__name__}: {_clip(str(exc))}",
                "translate the channel's 401/403 into plugin_spec.AuthError (a ChannelError), so the host "
                "fails the job at once instead of retrying",
            )
        _check_no_secret(
            [str(exc), repr(exc)],
            secret_values(cartplugin_kit_settings, cartplugin_kit_bad_key_settings),
            "the wrong-key error",
        )
        if not _readable(str(exc)):
            kit_fail(f"the wrong-key error is not readable: {str(exc)!r}", "say what is wrong and what to do")

    @pytest.mark.parametrize(
        "fault, expected",
        [pytest.param(fault, kind, id=fault) for fault, kind in (
            ("rate_limited", RateLimited), ("server_error", TransientError), ("timeout", TransientError),
            ("cut_off_body", TransientError))],
    )  # fmt: skip
    def test_transient_trouble_is_classified_so_the_host_retries(
        self, cartplugin_kit: Harness, cartplugin_kit_channel: KitChannel, cartplugin_kit_settings: Any,
        fault: str, expected: type[ChannelError],
    ) -> None:  # fmt: skip
        if not cartplugin_kit_channel.inject(fault):
            pytest.skip(f"the sandbox cannot inject {fault!r}; implement KitChannel.inject to run this check")
        try:
            _, exc = _catching(lambda: cartplugin_kit.download(cartplugin_kit_settings, since=None))
        finally:
            cartplugin_kit_channel.clear_faults()
        why = {
            "rate_limited": "a 429 (after the client's own retries) is plugin_spec.RateLimited, with retry_after",
            "server_error": "a 5xx answer (after retries) is plugin_spec.TransientError",
            "timeout": "a connect or read timeout is plugin_spec.TransientError",
            "cut_off_body": "an answer cut off or unreadable is plugin_spec.TransientError, never BadData: "
            "repeating the request may well work",
        }[fault]
        if exc is None:
            kit_fail(f"with the channel answering {fault!r} the download raised nothing", f"raise it: {why}")
        if not isinstance(exc, expected) or not getattr(exc, "retryable", False):
            kit_fail(
                f"with the channel answering {fault!r} the download raised {type(exc).__name__}: {_clip(str(exc))}",
                f"{why} (plugin_spec.http.JsonApi does this for you)",
            )
        _check_no_secret([str(exc), repr(exc)], secret_values(cartplugin_kit_settings), f"the {fault} error")
        if not _readable(str(exc)):
            kit_fail(
                f"the {fault} error is not readable: {str(exc)!r}", "say what happened and that it will be retried"
            )

    def test_an_order_cancelled_on_the_channel_comes_back_flagged(
        self, cartplugin_kit: Harness, cartplugin_kit_settings: Any, cartplugin_kit_channel: KitChannel
    ) -> None:
        """The host tells staff about an order the channel cancelled only if a download brings it flagged."""
        orders = [o for o in _orders(cartplugin_kit.download(cartplugin_kit_settings, since=LONG_AGO))
                  if not o.channel_cancelled]  # fmt: skip
        if not orders:
            kit_fail("the sandbox has no unfulfilled order to cancel", "seed the sandbox with a few unfulfilled orders")
        target = orders[0]
        if not cartplugin_kit_channel.cancel_order(target.source_order_id):
            pytest.skip("the sandbox cannot cancel an order; implement KitChannel.cancel_order to run this check")
        items = cartplugin_kit.download(cartplugin_kit_settings, since=target.updated_at)
        found = [o for o in _orders(items) if o.source_order_id == target.source_order_id]
        if not found:
            kit_fail(
                f"order {target.source_order_id}, cancelled on the channel, did not come back in a download "
                f"since its last change ({target.updated_at.isoformat()})",
                "with unfulfilled_only=True also yield the orders the channel cancelled (ask for them, or for "
                "every status and drop only the shipped ones), flagged channel_cancelled=True",
            )
        if not found[-1].channel_cancelled:
            kit_fail(
                f"order {target.source_order_id} was cancelled on the channel but came back with "
                "channel_cancelled=False",
                "map the channel's cancelled state (of the order, or of every line) to channel_cancelled=True: "
                "the host then flags the order for staff instead of letting them ship it",
            )

    def test_a_line_cancelled_on_the_channel_comes_back_flagged(
        self, cartplugin_kit: Harness, cartplugin_kit_settings: Any, cartplugin_kit_channel: KitChannel
    ) -> None:
        """The host leaves a line the channel cancelled out of the package only if a download
        brings that line flagged ``OrderLine.channel_cancelled``."""
        orders = [o for o in _orders(cartplugin_kit.download(cartplugin_kit_settings, since=LONG_AGO))
                  if not o.channel_cancelled and not any(line.channel_cancelled for line in o.lines)]  # fmt: skip
        if not orders:
            kit_fail("the sandbox has no unfulfilled order to cancel a line of", "seed it with unfulfilled orders")
        # a line of an order with several first, so that the order itself stands
        candidates = [(o, each) for o in sorted(orders, key=lambda o: len(o.lines) < 2) for each in o.lines]
        chosen = next(
            ((o, each) for o, each in candidates[:20]
             if cartplugin_kit_channel.cancel_line(o.source_order_id, each.source_line_id)),
            None,
        )  # fmt: skip
        if chosen is None:
            pytest.skip("the sandbox cannot cancel a line; implement KitChannel.cancel_line to run this check")
        target, line = chosen
        items = cartplugin_kit.download(cartplugin_kit_settings, since=target.updated_at)
        found = [o for o in _orders(items) if o.source_order_id == target.source_order_id]
        if not found:
            kit_fail(
                f"order {target.source_order_id}, with line {line.source_line_id} cancelled on the channel, did "
                f"not come back in a download since its last change ({target.updated_at.isoformat()})",
                "with unfulfilled_only=True also yield the orders whose lines the channel cancelled",
            )
        flags = {each.source_line_id: each.channel_cancelled for each in found[-1].lines}
        if not flags.get(line.source_line_id):
            kit_fail(
                f"line {line.source_line_id} of order {target.source_order_id} was cancelled on the channel but "
                "came back with channel_cancelled=False",
                "map the channel's state of each line (cancelled, refunded before shipping) to "
                "OrderLine(channel_cancelled=True): the host then leaves it out of the package and out of "
                "Fully Shipped",
            )
        standing = [lid for lid, flag in flags.items() if flag and lid != line.source_line_id]
        if standing and len(target.lines) > 1 and not found[-1].channel_cancelled:
            kit_fail(
                f"order {target.source_order_id}: only line {line.source_line_id} was cancelled, but the plugin "
                f"also flagged {standing}",
                "flag a line from its own state, not from the order's or another line's",
            )

    # --- access tokens ----------------------------------------------------------------------

    def test_an_access_token_is_kept_and_renewed_once_when_it_expires(
        self, cartplugin_kit: Harness, cartplugin_kit_settings: Any, cartplugin_kit_channel: KitChannel
    ) -> None:
        """Only for channels whose API wants access tokens (``KitChannel.token_mints``)."""
        channel = cartplugin_kit_channel
        if channel.token_mints() is None:
            pytest.skip("the channel has no access tokens (KitChannel.token_mints returns None)")
        _orders(cartplugin_kit.download(cartplugin_kit_settings, since=None))
        minted = channel.token_mints() or 0
        cartplugin_kit.test_settings(cartplugin_kit_settings)
        _orders(cartplugin_kit.download(cartplugin_kit_settings, since=None))
        again = (channel.token_mints() or 0) - minted
        if again:
            kit_fail(
                f"Test Settings and a second download obtained {again} new access token(s) although the first "
                "one was still valid",
                "keep the token in the store the host passes to every hook (the `credentials` argument): "
                "plugin_spec.auth.OAuth2RefreshToken(..., store=credentials); every process shares it",
            )
        if not channel.expire_tokens():
            kit_fail(
                "KitChannel.token_mints answers but expire_tokens returned False",
                "implement KitChannel.expire_tokens (make the sandbox refuse every token issued so far)",
            )
        items, exc = _catching(lambda: cartplugin_kit.download(cartplugin_kit_settings, since=None))
        if exc is not None:
            kit_fail(
                f"after the access token expired the download raised {type(exc).__name__}: {_clip(str(exc))}",
                "renew the access token when the API answers 401 and send the request again, once: "
                "plugin_spec.auth's OAuth2 strategies do this inside every request of plugin_spec.http.JsonApi",
            )
        _no_bad_orders(items)
        renewed = (channel.token_mints() or 0) - minted
        if renewed != 1:
            kit_fail(
                f"one expiry of the access token cost {renewed} new tokens",
                "renew once and use the new token for every following request (and every page)",
            )

    # --- upload -----------------------------------------------------------------------------

    def _two_orders(self, kit: Harness, settings: Any) -> list[ChannelOrder]:
        orders = [o for o in _orders(kit.download(settings, since=LONG_AGO)) if not o.channel_cancelled]
        if len(orders) < 2:
            kit_fail("the sandbox needs at least 2 unfulfilled orders to test uploads", "seed it with more orders")
        two = orders[:2]
        if "accept_orders" in kit.channel_info().capabilities:
            kit.accept(settings, [o for o in two if o.awaiting_acceptance])
        return two

    def test_accepted_orders_no_longer_await_acceptance(
        self, cartplugin_kit: Harness, cartplugin_kit_settings: Any, cartplugin_kit_info: ChannelInfo
    ) -> None:
        """Only for plugins that declare ``accept_orders``: accepting works and shows on download."""
        if "accept_orders" not in cartplugin_kit_info.capabilities:
            pytest.skip("the plugin does not declare accept_orders")
        if "accept_on_download" not in cartplugin_kit_info.settings_model.model_fields:
            kit_fail(
                "the settings model has no accept_on_download field",
                'add `accept_on_download: bool = Field(default=True, title="Accept new orders on download")`',
            )
        waiting = [
            o
            for o in _orders(cartplugin_kit.download(cartplugin_kit_settings, since=LONG_AGO))
            if o.awaiting_acceptance
        ]
        if not waiting:
            kit_fail(
                "no downloaded order is awaiting_acceptance", "seed the sandbox with new orders the seller must accept"
            )
        cartplugin_kit.accept(cartplugin_kit_settings, waiting[:1])
        again = {
            o.source_order_id: o for o in _orders(cartplugin_kit.download(cartplugin_kit_settings, since=LONG_AGO))
        }
        if again[waiting[0].source_order_id].awaiting_acceptance:
            kit_fail(f"order {waiting[0].source_order_id} still awaits acceptance after an ok AcceptResult",
                     "accept every waiting line on the channel before returning ok=True")  # fmt: skip

    def test_an_upload_whose_answer_was_lost_is_reconciled(
        self, cartplugin_kit: Harness, cartplugin_kit_settings: Any, cartplugin_kit_channel: KitChannel
    ) -> None:
        """A change that landed although its answer was lost is a success, not a failed upload."""
        a, _ = self._two_orders(cartplugin_kit, cartplugin_kit_settings)
        if not cartplugin_kit_channel.lose_next_answer():
            pytest.skip("the sandbox cannot lose an answer; implement KitChannel.lose_next_answer to run this check")
        try:
            number = f"KIT{uuid.uuid4().hex[:12].upper()}"
            (result,) = cartplugin_kit.upload(
                cartplugin_kit_settings, [cartplugin_kit_channel.make_shipment(a, 301, number)]
            )
        finally:
            cartplugin_kit_channel.clear_faults()
        if not result.ok:
            kit_fail(
                f"the channel recorded tracking {number} but the upload came back failed: {result.message}",
                "when the answer is lost or a retry is refused, read the order back before calling it failed "
                "(plugin_spec.wire.send_or_reconcile)",
            )

    def test_upload_returns_one_result_per_shipment(
        self, cartplugin_kit: Harness, cartplugin_kit_settings: Any, cartplugin_kit_channel: KitChannel
    ) -> None:
        a, b = self._two_orders(cartplugin_kit, cartplugin_kit_settings)
        unknown = cartplugin_kit_channel.unknown_order_id()
        tracking = [f"KIT{uuid.uuid4().hex[:12].upper()}" for _ in range(3)]
        shipments = [
            cartplugin_kit_channel.make_shipment(a, 101, tracking[0]),
            cartplugin_kit_channel.make_shipment(a, 102, tracking[1]).model_copy(update={"source_order_id": unknown}),
            cartplugin_kit_channel.make_shipment(b, 103, tracking[2]),
        ]
        results = {r.shipment_id: r for r in cartplugin_kit.upload(cartplugin_kit_settings, shipments)}
        for shipment_id, order in ((101, a), (103, b)):
            result = results[shipment_id]
            if not result.ok:
                kit_fail(
                    f"uploading tracking for order {order.source_order_id} failed: {result.message}",
                    "check the shipment body your plugin sends against the sandbox",
                )
        if results[102].ok:
            kit_fail(
                f"a shipment for an order the channel does not have ({unknown}) came back ok=True",
                "return ok=False with the channel's reason for that shipment",
            )
        if not _readable(results[102].message):
            kit_fail(f"the failure message for an unknown order is not readable: {results[102].message!r}",
                     "say which order failed and why")  # fmt: skip
        for order, number in ((a, tracking[0]), (b, tracking[2])):
            recorded = cartplugin_kit_channel.recorded_tracking(order.source_order_id)
            if number not in recorded:
                kit_fail(
                    f"the upload said ok for order {order.source_order_id} "
                    f"but the sandbox holds {recorded}, not {number}",
                    "send the tracking number to the channel before returning ok=True",
                )

    def test_upload_repeat_is_already_recorded(
        self, cartplugin_kit: Harness, cartplugin_kit_settings: Any, cartplugin_kit_channel: KitChannel
    ) -> None:
        a, _ = self._two_orders(cartplugin_kit, cartplugin_kit_settings)
        shipment = cartplugin_kit_channel.make_shipment(a, 201, f"KIT{uuid.uuid4().hex[:12].upper()}")
        (first,) = cartplugin_kit.upload(cartplugin_kit_settings, [shipment])
        if not first.ok:
            kit_fail(f"the first upload failed: {first.message}", "check the shipment body against the sandbox")
        (again,) = cartplugin_kit.upload(cartplugin_kit_settings, [shipment])
        if not again.ok:
            kit_fail(
                f"uploading the same tracking a second time failed: {again.message}",
                "when the channel already has this tracking number for the order, return "
                "UploadResult(ok=True, already_recorded=True): a repeat (e.g. after a crash) is not an error",
            )
        if not again.already_recorded:
            kit_fail(
                "the repeated upload came back without already_recorded=True",
                "recognise the channel's 'already recorded' answer and set already_recorded=True",
            )

    # --- secrets ----------------------------------------------------------------------------

    def test_no_secret_in_any_message(
        self,
        cartplugin_kit: Harness,
        cartplugin_kit_settings: Any,
        cartplugin_kit_bad_key_settings: Any,
        cartplugin_kit_channel: KitChannel,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Every message, result, exception and log record of every hook, good key and wrong key."""
        secrets = secret_values(cartplugin_kit_settings, cartplugin_kit_bad_key_settings)
        texts: list[tuple[str, str]] = []
        caplog.set_level(logging.DEBUG)
        for label, settings in (
            ("good settings", cartplugin_kit_settings),
            ("wrong key", cartplugin_kit_bad_key_settings),
        ):
            result = _quietly(partial(cartplugin_kit.call, "cartplugin_test_settings", settings=settings), texts)
            if isinstance(result, TestResult):
                texts.append((f"TestResult ({label})", f"{result.message} {result.account_name or ''} {result!r}"))
            orders = _download_messages(cartplugin_kit, settings, label, texts)
            target = orders[0] if orders else None
            if target is None and label == "good settings":
                continue
            shipment = (
                cartplugin_kit_channel.make_shipment(target, 301, "KITSECRET0001")
                if target is not None
                else Shipment(
                    shipment_id=301,
                    source_order_id=cartplugin_kit_channel.unknown_order_id(),
                    carrier="UPS",
                    tracking_number="KITSECRET0001",
                    shipped_at=datetime.now(UTC),
                )  # fmt: skip
            )
            repeat = shipment.model_copy(update={"shipment_id": 302})
            _upload_messages(cartplugin_kit, settings, [shipment, repeat], label, texts)
        if cartplugin_kit_channel.expire_tokens():
            # after a renewal: a token obtained at run time is the secret to keep out of errors now
            texts += _after_renewal(cartplugin_kit, cartplugin_kit_settings, cartplugin_kit_channel)
        texts += [(f"log record {r.name}", r.getMessage()) for r in caplog.records]
        # tokens the plugin obtained at run time (OAuth access and rotated refresh tokens) too
        tokens = [*cartplugin_kit.credentials.secret_values(), *cartplugin_kit_channel.issued_tokens()]
        tokens = [v for v in tokens if len(v) >= MIN_SECRET_LEN]
        for where, text in texts:
            _check_no_secret([text], secrets, where)
            _check_no_secret([text], tokens, where, what="an access or refresh token the plugin obtained")


def _after_renewal(kit: Harness, settings: Any, channel: KitChannel) -> list[tuple[str, str]]:
    """Every message of a download, an upload and a failing download after the tokens expired."""
    texts: list[tuple[str, str]] = []
    orders = _download_messages(kit, settings, "", texts)
    if orders:
        shipment = channel.make_shipment(orders[0], 401, "KITSECRET0002")
        unknown = shipment.model_copy(update={"shipment_id": 402, "source_order_id": channel.unknown_order_id()})
        _upload_messages(kit, settings, [shipment, unknown], "", texts)
    if channel.expire_tokens() and channel.inject("server_error"):
        try:
            _download_messages(kit, settings, "", texts)
        finally:
            channel.clear_faults()
    return [(f"{where} (after the access token was renewed)", text) for where, text in texts]


def _labelled(kind: str, label: str) -> str:
    return f"{kind} ({label})" if label else kind


def _download_messages(kit: Harness, settings: Any, label: str, texts: list[tuple[str, str]]) -> list[ChannelOrder]:
    """A download with ``settings``: its error and BadOrder messages added to ``texts``; its orders."""
    download = partial(kit.call, "cartplugin_download_orders", settings=settings, since=None, unfulfilled_only=True)
    items = _quietly(lambda: list(download()), texts)
    texts += [(_labelled("BadOrder", label), i.message) for i in items or [] if isinstance(i, BadOrder)]
    return [i for i in items or [] if isinstance(i, ChannelOrder)]


def _upload_messages(
    kit: Harness, settings: Any, shipments: list[Shipment], label: str, texts: list[tuple[str, str]]
) -> None:
    """An upload with ``settings``: its error and every result's message added to ``texts``."""
    upload = partial(kit.call, "cartplugin_upload_tracking", settings=settings, shipments=shipments)
    results = _quietly(upload, texts)
    kind = _labelled("UploadResult", label)
    texts += [(kind, f"{r.message} {r!r}") for r in results or [] if isinstance(r, UploadResult)]


def _wrong_amount(where: str, field: str, got: Any, expected: Any) -> NoReturn:
    kit_fail(
        f"order {where}: the plugin gives {field} = {got} but the channel states {expected}",
        f"map {field} from the channel's own figure, as it states it: the host stores amounts and never "
        "recomputes them (a line total is not a unit price; tax, shipping and discounts are neither "
        "left out of the grand total nor counted twice)",
    )


def _quietly(call: Any, texts: list[tuple[str, str]]) -> Any:
    result, exc = _catching(call)
    if exc is not None:  # only its text matters here
        texts.append((f"{type(exc).__name__} raised by a hook", f"{exc} {exc!r} {exc.__cause__!r} {exc.__context__!r}"))
    return result


def _check_no_secret(
    texts: Iterable[str], secrets: list[str], where: str, what: str = "a secret settings value"
) -> None:
    for text in texts:
        for secret in secrets:
            if secret.casefold() in text.casefold():  # echoed in another letter case is still shown
                kit_fail(
                    f"{what} appears in {where}: {_clip(text)}",
                    "never format a key or token into a message, exception or log line; raise your own "
                    "error `from None` when the library's exception holds the request headers",
                )


# ---------------------------------------------------------------------------------------------
# pytest plugin hooks


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cartplugin_kit: a cartplugin conformance check (from plugin_spec.testing.ConformanceSuite)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # mark the kit's tests so `-m cartplugin_kit` runs (or `-m "not cartplugin_kit"` skips) them all
    for item in items:
        cls = getattr(item, "cls", None)
        if cls is not None and issubclass(cls, ConformanceSuite):
            item.add_marker("cartplugin_kit")


def conformance_suite(
    plugin: Any,
    *,
    sandbox: str,
    channel: Callable[[Any], KitChannel],
    settings: Callable[[Any], Any],
    bad_key_settings: Callable[[Any], Any],
) -> type[ConformanceSuite]:
    """A :class:`ConformanceSuite` whose four fixtures are built from the fixture named
    ``sandbox``: ``TestMine = conformance_suite(plugin, sandbox="sandbox", channel=MyChannel,
    settings=lambda s: MySettings(...), bad_key_settings=lambda s: MySettings(...))``."""

    class Suite(ConformanceSuite):
        @pytest.fixture
        def cartplugin_kit_plugin(self) -> Any:
            return plugin

        @pytest.fixture
        def cartplugin_kit_channel(self, request: pytest.FixtureRequest) -> KitChannel:
            return channel(request.getfixturevalue(sandbox))

        @pytest.fixture
        def cartplugin_kit_settings(self, request: pytest.FixtureRequest) -> Any:
            return settings(request.getfixturevalue(sandbox))

        @pytest.fixture
        def cartplugin_kit_bad_key_settings(self, request: pytest.FixtureRequest) -> Any:
            return bad_key_settings(request.getfixturevalue(sandbox))

    return Suite
