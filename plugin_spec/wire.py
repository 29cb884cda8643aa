"""Readers of channel JSON and small helpers every channel plugin needs (no I/O).

Each reader names the field in its error, so the ``BadOrder`` a person reads says what to fix.
A plugin's ``mapping.py`` builds on these and keeps only its own field names.
"""

from __future__ import annotations

import contextvars
import functools
import gc
import logging
import queue
import re
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, NamedTuple, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, GetPydanticSchema, TypeAdapter, ValidationError, create_model
from pydantic_core import core_schema

from . import stopping
from .errors import AuthError, BadData, ChannelError, RateLimitWait
from .models import MAX_ID, MAX_TEXT, BadOrder, ChannelOrder, Shipment, UploadResult

log = logging.getLogger(__name__)

#: money on the wire: a plain non-negative decimal string, e.g. "1299.00"
MONEY_RE = re.compile(r"^\d{1,14}(\.\d{1,4})?$")
#: the same with an optional leading minus, e.g. a discount sent as "-2.00"
SIGNED_MONEY_RE = re.compile(r"^-?\d{1,14}(\.\d{1,4})?$")
#: an ISO 4217 currency code as channels send it
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
#: the earliest order date believed: anything before is a broken clock or a placeholder
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
#: how far in the future a channel's clock may run before its stamps are refused
CLOCK_SKEW = timedelta(days=1)
_UNSAFE_ID = re.compile(r"[\x00-\x1f\x7f/\\]")

T = TypeVar("T")
S = TypeVar("S", bound=BaseModel)


class MappingError(ValueError):
    """One field of one order is not what the contract says (the order becomes a BadOrder)."""


def money(value: Any, field: str, *, signed: bool = False) -> Decimal:
    """A money string such as ``"12.30"`` as Decimal; floats, ints and junk are refused.

    A float has already lost cents by the time it is read, so only strings are money.
    ``signed=True`` also takes a leading minus (``"-2.00"``: a discount or an adjustment as
    some channels send them).
    """
    if value.__class__ is str and MONEY_RE.match(value):
        return Decimal(value)
    if signed and value.__class__ is str and SIGNED_MONEY_RE.match(value):
        return Decimal(value)
    if isinstance(value, bool) or not isinstance(value, str):
        raise MappingError(f"{field} must be a decimal string, got {type(value).__name__} {value!r:.40}")
    if not signed and SIGNED_MONEY_RE.match(value):
        raise MappingError(f"{field} must not be negative: {value!r:.40}")
    raise MappingError(f"{field} is not a decimal amount: {value!r:.40}")


class Amount(NamedTuple):
    """An amount of money in a currency, e.g. ``Amount(Decimal("12.30"), "EUR")``."""

    value: Decimal
    currency: str


def amount(
    value: Any, field: str, *, value_key: str = "value", currency_key: str = "currency", signed: bool = False
) -> Amount:
    """A currency-coded amount such as ``{"value": "12.30", "currency": "EUR"}`` as ``Amount``.

    ``value_key`` and ``currency_key`` name the channel's keys (Amazon: ``"amount"`` and
    ``"currencyCode"``); the value is read with ``money(signed=signed)`` and the currency must
    be an ISO 4217 code in capitals. Each error names the field and key, e.g. ``total.currency``.
    """
    if not isinstance(value, dict):
        what = "missing" if value is None else f"not an object but {type(value).__name__}"
        raise MappingError(f"{field} is {what}; an amount is {{{value_key!r}: ..., {currency_key!r}: ...}}")
    currency = value.get(currency_key)
    if currency.__class__ is not str or not CURRENCY_RE.match(currency):
        raise MappingError(f"{field}.{currency_key} is not an ISO 4217 currency code: {currency!r:.20}")
    return Amount(money(value.get(value_key), f"{field}.{value_key}", signed=signed), currency)


class Currencies:
    """One currency per order: read each of an order's amounts through one ``Currencies``.

    The first amount read sets the order's currency (``code``); an amount in another currency
    raises a MappingError naming both currencies and both fields, so ``order_or_bad`` turns a
    mixed order into a BadOrder with that reason and the rest of the page imports. The host
    stores one currency per order and never converts.
    """

    def __init__(self, currency: Any = None, field: str = "currency") -> None:
        #: the order's currency, once known: ``currency`` when the order names it itself
        self.currency: str | None = None
        self._first_field = field
        if currency is not None:
            self.check(currency, field)

    def check(self, currency: Any, field: str) -> str:
        """``currency`` when it is the order's (the first one seen sets it), else MappingError."""
        if currency.__class__ is not str or not CURRENCY_RE.match(currency):
            raise MappingError(f"{field} is not an ISO 4217 currency code: {currency!r:.20}")
        if self.currency is None:
            self.currency, self._first_field = currency, field
        elif currency != self.currency:
            raise MappingError(
                f"{field} is in {currency} but {self._first_field} is in {self.currency}: "
                "an order must have one currency"
            )
        return currency

    def amount(
        self,
        value: Any,
        field: str,
        *,
        value_key: str = "value",
        currency_key: str = "currency",
        signed: bool = False,
    ) -> Decimal:
        """``amount(...)``'s value, its currency checked against the order's."""
        read = amount(value, field, value_key=value_key, currency_key=currency_key, signed=signed)
        self.check(read.currency, field)
        return read.value

    @property
    def code(self) -> str:
        """The order's currency, for ``ChannelOrder.currency``; MappingError when none was read."""
        if self.currency is None:
            raise MappingError("the order has no amount with a currency")
        return self.currency


def timestamp(value: Any, field: str, *, now: datetime | None = None) -> datetime:
    """An ISO-8601 timestamp with an offset, as an aware UTC datetime in a plausible range.

    Years before 2000 or more than a day ahead are refused: such a stamp would move the
    download cursor somewhere no real order is. Never raises OverflowError (year 1 or 9999
    with an offset): that becomes a MappingError like any other bad value.
    """
    if not isinstance(value, str):
        raise MappingError(f"{field} must be an ISO-8601 string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise MappingError(f"{field} has no time zone: {value!r:.40}")
        parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        if isinstance(exc, MappingError):
            raise
        raise MappingError(f"{field} is not a plausible ISO-8601 timestamp: {value!r:.40}") from None
    latest = (now or datetime.now(UTC)) + CLOCK_SKEW
    if not EARLIEST <= parsed <= latest:
        raise MappingError(f"{field} is out of the plausible range (2000 to tomorrow): {value!r:.40}")
    return parsed


def order_or_bad(
    raw: Any,
    mapper: Callable[[dict[str, Any]], ChannelOrder],
    *,
    id_field: str,
    updated_field: str,
    channel: str,
) -> ChannelOrder | BadOrder:
    """``mapper(raw)``, or a BadOrder naming the order and the reason: never an exception.

    Any error while mapping one order (a bad field, a model refusal, a bug in the mapper) costs
    that order only; the rest of the page still imports.
    """
    if not isinstance(raw, dict):
        return BadOrder(message=f"{channel} sent an order that is not a JSON object but {type(raw).__name__}")
    try:
        return mapper(raw)
    except Exception as exc:  # one order's surprise must not sink the page
        if isinstance(exc, ValidationError):
            reason = validation_summary(exc)
        elif isinstance(exc, ValueError):
            reason = str(exc)
        else:
            reason = f"{type(exc).__name__}: {exc}"
        order_id = _best_effort(lambda: plain_id(raw.get(id_field), id_field))
        updated = _best_effort(lambda: timestamp(raw.get(updated_field), updated_field))
        label = f"order {order_id}" if order_id else "an order without a usable id"
        return BadOrder(
            source_order_id=order_id,
            updated_at=updated,
            message=f"{channel} sent {label} that cannot be imported: {mask_text(reason, 600)}",
        )


# ---------------------------------------------------------------------------------------------
# a whole listing page validated from its bytes in pydantic's core (see ``page_reader``)

#: money on the wire as pydantic's core checks it: MONEY_RE with ASCII digits only (stricter)
_MONEY_CORE = r"^[0-9]{1,14}(\.[0-9]{1,4})?$"
_C = r"\x00-\x1f\x7f-\x9f"
#: an Ident of the models (not "." nor "..", no control character), as one core pattern
_IDENT_CORE = rf"^(?:[^.{_C}][^{_C}]*|\.[^.{_C}][^{_C}]*|\.\.[^{_C}]+)$"
_S = _C + r"/\\"
#: an id that is also one URL path segment (``safe_segment``): no "/" nor "\\" either
_SEGMENT_CORE = rf"^(?:[^.{_S}][^{_S}]*|\.[^.{_S}][^{_S}]*|\.\.[^{_S}]+)$"


def _money_schema(source: Any, handler: Any) -> core_schema.CoreSchema:
    # a JSON string matching the pattern, then the core's Decimal (which also serialises it)
    return core_schema.chain_schema(
        [core_schema.str_schema(pattern=_MONEY_CORE, strict=True), core_schema.decimal_schema()]
    )


#: ``money()`` in pydantic's core: a decimal string as Decimal; a number, "1e3", "-1" are refused
MoneyText = Annotated[Decimal, GetPydanticSchema(_money_schema)]

#: ``_MONEY_CORE`` with an optional leading minus
_SIGNED_MONEY_CORE = r"^-?[0-9]{1,14}(\.[0-9]{1,4})?$"


def _signed_money_schema(source: Any, handler: Any) -> core_schema.CoreSchema:
    return core_schema.chain_schema(
        [core_schema.str_schema(pattern=_SIGNED_MONEY_CORE, strict=True), core_schema.decimal_schema()]
    )


#: ``money(signed=True)`` in pydantic's core: ``MoneyText`` that also takes a leading minus
SignedMoneyText = Annotated[Decimal, GetPydanticSchema(_signed_money_schema)]
#: a non-empty string id the models accept (``Ident``), checked in the core
IdentText = Annotated[str, Field(min_length=1, max_length=MAX_ID, pattern=_IDENT_CORE, strict=True)]
#: ``plain_id()`` for string ids in the core: an Ident that is also one URL path segment
SegmentId = Annotated[str, Field(min_length=1, max_length=MAX_ID, pattern=_SEGMENT_CORE, strict=True)]


def _optional_text_schema(source: Any, handler: Any) -> core_schema.CoreSchema:
    text = core_schema.str_schema(min_length=1, max_length=MAX_TEXT, strict=True)
    # "" is checked by the literal, then becomes None: a step that always fails, so its default
    empty = core_schema.chain_schema([core_schema.literal_schema([""]), _always_default(None)])
    return core_schema.nullable_schema(core_schema.union_schema([text, empty], mode="left_to_right"))


def _always_default(default: Any) -> core_schema.CoreSchema:
    """A core step whose result is always ``default``: it refuses every value but ``default`` itself."""
    return core_schema.with_default_schema(core_schema.literal_schema([default]), default=default, on_error="default")


#: ``text()`` in pydantic's core: a string (at most MAX_TEXT), None for null or ""; anything else is refused
OptionalText = Annotated[str | None, GetPydanticSchema(_optional_text_schema)]


def Ignored(default: Any) -> GetPydanticSchema:  # noqa: N802 - used like a type: ``Annotated[bool, Ignored(False)]``
    """A page model's field that keeps ``default`` whatever the wire sends under its name.

    For the ChannelOrder fields a plugin's mapping never reads (``payment_status``,
    ``awaiting_acceptance``): declared without an alias, pydantic would read them from a key of
    the same name.
    """
    return GetPydanticSchema(lambda source, handler: _always_default(default))


def _object_schema(source: Any, handler: Any) -> core_schema.CoreSchema:
    shape = core_schema.nullable_schema(core_schema.typed_dict_schema({}, extra_behavior="ignore"))
    return core_schema.chain_schema([shape, _always_default(None)])


#: a JSON object or null, checked and not kept (None): for a field whose values are read with
#: ``AliasPath`` (which would read nothing from a list or a string, where the mapping refuses)
ObjectShape = Annotated[None, GetPydanticSchema(_object_schema)]


def optional_text(value: Any) -> str | None:
    """``text()`` for a page model: a string, None for a missing or empty one, else ValueError."""
    if value.__class__ is str and value:
        return value
    if value is None or value == "":
        return None
    raise ValueError("not a string")


PageReader = Callable[[bytes], tuple[list[Any], Any]]


def page_reader(order_model: type[ChannelOrder], *, results: str = "results", next_link: str = "next") -> PageReader:
    """A reader of one listing page's bytes into ``(orders, next link)`` in pydantic's core.

    ``order_model`` is a subclass of ChannelOrder that validates the channel's JSON of one
    order as it is on the wire (aliases, core types such as ``MoneyText``), so each order is
    parsed and validated once, from bytes, with no Python mapping in between. The model must
    be at least as strict as the plugin's Python mapping and give the same order when both
    accept one: any ``ValidationError`` (one bad order, malformed JSON) makes ``JsonApi.pages``
    read the page the plain way, where the mapping reports each bad order on its own.
    """
    page = create_model(
        f"{order_model.__name__}Page",
        __config__=ConfigDict(extra="ignore"),
        results=(list[order_model], Field(validation_alias=results)),  # type: ignore[valid-type]
        next=(str | None, Field(default=None, validation_alias=next_link)),
    )
    adapter: TypeAdapter[Any] = TypeAdapter(page)

    def read(raw: bytes) -> tuple[list[Any], Any]:
        # The collector is paused while the core builds the page: the objects it makes are
        # the result, kept, so a collection on the way would only scan them; by allocation
        # count a page triggers several, and they drive the full collections of the whole
        # process (an import of 20,000 orders: 15 full and 1,800 young collections -> 3 and
        # 360, see docs/benchmarks.md). A thread that finds it paused leaves it to the first.
        if gc.isenabled():
            gc.disable()
            try:
                parsed = adapter.validate_json(raw)
            finally:
                gc.enable()
        else:
            parsed = adapter.validate_json(raw)
        return parsed.results, parsed.next

    return read


def validation_summary(exc: ValidationError) -> str:
    """The first few of pydantic's complaints, as ``field: message``, without the input values."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False)[:3]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg", "invalid"))
    return "; ".join(parts)


def plain_id(value: Any, field: str) -> str:
    """An id as text (an integer is accepted: it is unambiguous); refuses what a path cannot hold."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value:
        raise MappingError(f"{field} is missing or not a string")
    safe_segment(value, field)
    return value


def _best_effort(read: Callable[[], T]) -> T | None:
    try:
        return read()
    except Exception:  # noqa: BLE001 - only for naming a bad order; None is the honest answer
        return None


def safe_segment(value: Any, what: str = "id") -> str:
    """Quote ``value`` as exactly one URL path segment, or raise BadData.

    ``.`` and ``..`` are refused rather than quoted (a client or proxy resolves them and the
    request lands on another path), and so are ``/``, ``\\``, NUL and control characters.
    """
    text = str(value)
    if text in ("", ".", "..") or _UNSAFE_ID.search(text) or len(text) > 200:
        raise BadData(f"The {what} {mask_text(text)!r} cannot be used in a URL path; it is not a valid channel id.")
    return quote(text, safe="")


def mask_text(text: str, keep: int = 40) -> str:
    """A short printable rendering of untrusted text for a message."""
    printable = "".join(ch if ch.isprintable() else "?" for ch in text[:keep])
    return printable + ("..." if len(text) > keep else "")


def mask(secret: str) -> str:
    """Show only the last 4 characters of a secret (and nothing of a short one)."""
    return "****" + secret[-4:] if len(secret) >= 12 else "****"


def without_secrets(text: str, secrets: Iterable[str], shown: Callable[[str], str] = mask) -> str:
    """``text`` with every secret replaced by ``shown(secret)``, in whatever letter case the
    channel echoed it (a server that lower-cases the key it quotes back must not reveal it)."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = re.compile(re.escape(secret), re.IGNORECASE).sub(shown(secret).replace("\\", "\\\\"), text)
    return text


def upload_each(
    shipments: Iterable[Shipment],
    send_one: Callable[[Shipment], UploadResult],
    *,
    label: str,
    concurrency: int = 1,
) -> list[UploadResult]:
    """One result per shipment, in order: one failure never sinks the rest.

    Up to ``concurrency`` shipments are sent at once, each ``send_one`` on a thread of a
    bounded pool (give it the client's ``HttpOptions.concurrency``; the rate limiter still
    paces every request), after the first one alone. An AuthError stops the sending (the key
    is wrong for all of them) and answers every shipment not sent yet with its message; any other ChannelError or
    exception is that shipment's result, retryable when the error is. When the job is
    stopping (``plugin_spec.stopping``) nothing more is sent: a shipment not sent is answered
    retryable and named in the host's ``Halt.unsent``, the results obtained are returned. A
    rate limit whose next slot is past the job's budget (``RateLimitWait``) stops the sending
    the same way, and the host's ``Halt.waiting_until`` says when a slot frees. Each result
    is also handed to the host as it comes back (``Halt.answered``, on this thread), so the host
    can store it before the batch ends.
    """
    todo = list(shipments)
    host_halt = stopping.current()

    def report(result: UploadResult | None) -> None:
        if result is not None and host_halt is not None:
            host_halt.answered(result)

    auth: list[AuthError] = []  # the first wrong-key answer, shared by the threads
    waits: list[RateLimitWait] = []  # sends the rate limit refused: the next slot is past the budget

    def halted() -> bool:
        return bool(auth) or bool(waits) or (host_halt is not None and host_halt())

    def one(shipment: Shipment) -> UploadResult | None:
        """The shipment's result, or None when it was not sent (the job stopping, a wrong key)."""
        sid = shipment.shipment_id
        try:
            return send_one(shipment)
        except stopping.Stopped:
            return None
        except RateLimitWait as exc:
            waits.append(exc)
            return None
        except AuthError as exc:
            auth.append(exc)
            return UploadResult(shipment_id=sid, ok=False, message=exc.message)
        except ChannelError as exc:
            return UploadResult(shipment_id=sid, ok=False, retryable=exc.retryable, message=exc.message)
        except Exception as exc:  # one shipment's surprise must not cost the others their upload
            log.exception("unexpected error uploading shipment %s", sid)
            return UploadResult(
                shipment_id=sid,
                ok=False,
                retryable=True,
                message=f"Unexpected error uploading tracking to {label} for order "
                f"{mask_text(shipment.source_order_id)}: {type(exc).__name__}",
            )  # fmt: skip

    results: list[UploadResult | None] = [None] * len(todo)
    # the limiter asks the same question while it waits, so a request waiting for a slot is not sent either
    with stopping.stop_when(halted):
        # the first shipment goes alone: a wrong key costs one request, not one per thread
        alone = len(todo) if concurrency <= 1 else 1
        for i, shipment in enumerate(todo[:alone]):
            if halted():
                break
            results[i] = one(shipment)
            report(results[i])
        if alone < len(todo) and not halted():
            _send_concurrently(todo, one, halted, results, concurrency, start=alone, report=report)
    answered: list[UploadResult] = []
    for shipment, result in zip(todo, results, strict=True):
        if result is None:
            sid = shipment.shipment_id
            if auth:
                result = UploadResult(shipment_id=sid, ok=False, message=auth[0].message)
            else:
                if host_halt is not None:
                    host_halt.not_sent(sid)
                why = waits[0].message if waits else "the job stopped"
                result = UploadResult(shipment_id=sid, ok=False, retryable=True, message=f"not sent: {why}")
        answered.append(result)
    if waits and host_halt is not None:
        host_halt.waiting(min(wait.until for wait in waits))
    return answered


def _send_concurrently(
    todo: list[Shipment],
    one: Callable[[Shipment], UploadResult | None],
    halted: Callable[[], bool],
    results: list[UploadResult | None],
    concurrency: int,
    *,
    start: int,
    report: Callable[[UploadResult | None], None],
) -> None:
    """``one(shipment)`` for each from ``start`` on, at most ``concurrency`` at once, until
    ``halted()``; each result is ``report``-ed on this thread as it comes back."""
    finished: queue.SimpleQueue[tuple[int, Future[UploadResult | None]]] = queue.SimpleQueue()
    running = 0

    def settle() -> None:  # wait for one send to end; its result is kept and reported here
        i, future = finished.get()
        results[i] = future.result()
        report(results[i])

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="upload") as pool:
        for i, shipment in enumerate(todo[start:], start=start):
            while running >= concurrency:  # a thread is free: the next shipment goes only now, so a stop keeps the rest
                settle()
                running -= 1
            if halted():
                break
            # each send sees this context's stop scope (the limiter asks it)
            future = pool.submit(contextvars.copy_context().run, one, shipment)
            future.add_done_callback(functools.partial(_put, finished, i))
            running += 1
        while running:
            settle()
            running -= 1


def _put(finished: queue.SimpleQueue[tuple[int, Future[Any]]], i: int, future: Future[Any]) -> None:
    finished.put((i, future))


def settings_as(model: type[S], settings: Any) -> S:
    """``settings`` as the plugin's own settings model (a host may hand over a mapping or a base
    ``CartSettings``); validated, so a bad value fails at the hook call, not mid-download."""
    if isinstance(settings, model):
        return settings
    data = settings.model_dump() if hasattr(settings, "model_dump") else settings
    return model.model_validate(data)


def text(value: Any, field: str, *, required: bool = False) -> str | None:
    """A string field; None for a missing or empty one (a MappingError when ``required``)."""
    if value.__class__ is str and value:  # the usual case first
        return value
    if value is None or value == "":
        if required:
            raise MappingError(f"{field} is missing")
        return None
    if not isinstance(value, str):
        raise MappingError(f"{field} must be a string, got {type(value).__name__}")
    return value


def send_or_reconcile(send: Callable[[], T], read_back: Callable[[], T | None]) -> T:
    """Send one change; if its answer is lost or it is refused, ask the channel what it holds.

    A change can land on the channel while its answer is lost (a 502 from a proxy, a reset):
    the retry is then refused because the order has moved on. ``read_back()`` reads the
    channel's state and returns the result when the change is already there, else ``None``;
    only then is the original error raised. A wrong key is never reconciled.
    """
    try:
        return send()
    except (AuthError, RateLimitWait):
        raise  # a wrong key is never reconciled; a request the rate limit kept back was never sent
    except ChannelError as exc:
        try:
            answer = read_back()
        except ChannelError:
            raise exc from None
        if answer is None:
            raise
        return answer
