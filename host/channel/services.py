"""The three operations of a channel, gated by the host and routed to the company's plugin.

Gating lives here and only here: with Allow Order Download off the download hook is never
called, with Allow Tracking Upload off the upload hook is never called, and neither runs
before Test Settings has passed for the settings as they are now.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils
from pydantic import SecretStr

from host import clock, config
from host.channel import plugins
from host.channel.acceptance import accept_after_download
from host.errors import HostError
from host.jobs import bounded
from host.jobs.failpoints import failpoint
from host.records import companies, orders, website_options
from host.records.companies import Company
from host.records.credentials import DbCredentialStore
from host.store.db import write
from plugin_spec import BadOrder, CartSettings, ChannelOrder, Shipment, TestResult, UploadResult, stopping
from plugin_spec.errors import RateLimitWait
from plugin_spec.progress import counting as counting_pages
from plugin_spec.ratelimit import wall_time
from plugin_spec.wire import without_secrets

#: how far back Import Orders looks when no --since is given ("all recent unfulfilled orders")
RECENT_DAYS = config.current().recent_days
#: orders committed per transaction (with the cursor that follows them)
BATCH_SIZE = config.current().download_batch
#: shipments handed to the upload hook per call
UPLOAD_BATCH = config.current().upload_batch
#: channel-cancelled orders named in a job's log line (the rest are counted)
FLAGGED_SHOWN = 20
CURSOR_NAME = "orders_updated_at"
#: how far past the host's clock an order's updated_at may be before it counts as bad (clocks
#: differ a little between the channel and the host; more is a wrong date)
CLOCK_SKEW_SECONDS = 300
#: the earliest ``updated_at`` from which every order up to the cursor has been read
COVERED_FROM = companies.COVERED_FROM

Progress = Callable[[int], None]
#: what a download has done so far (pages read, orders read, new, updated, unchanged), handed to
#: a ``record`` callable inside a write transaction
Counts = dict[str, int]
#: a page's progress is recorded at most this often (a batch's always, with its orders)
PROGRESS_EVERY_SECONDS = 1.0


class NotAllowed(HostError):
    """The company's settings do not allow this work now (a toggle is off, or untested)."""


def redact(
    text: str,
    settings: CartSettings | None,
    credentials: DbCredentialStore | None = None,
    tokens: Iterable[str] = (),
) -> str:
    """Remove every secret value of ``settings`` from ``text`` (defence in depth for messages),
    and every token the channel's auth obtained (seen through ``credentials``, or ``tokens``)."""
    secrets: list[str] = list(tokens)
    if settings is not None:
        for name in type(settings).model_fields:
            value = getattr(settings, name)
            if isinstance(value, SecretStr):
                secrets.append(value.get_secret_value())
    if credentials is not None:
        secrets += credentials.secret_values()
    return without_secrets(text, secrets, companies.mask)


def _settings(db: sqlite_utils.Database, company: Company) -> tuple[str, CartSettings]:
    channel = companies.store_plugin(db, company)
    return channel, companies.cart_settings_model(db, company)


def check_allowed(db: sqlite_utils.Database, company: Company, kind: str) -> None:
    """Refuse work the company's Website General Settings do not allow right now."""
    ws = companies.website_settings(db, company)
    if not ws["store_plugin"]:
        raise NotAllowed(
            f"company {company.name!r} has no store plugin; choose a Store Plugin in Website General Settings",
            cli_hint=f"cartplugin website-settings {company.name!r} --store-plugin NAME",
        )
    if ws["plugin_missing"]:
        raise NotAllowed(
            f"plugin missing: the store plugin {ws['store_plugin']!r} of company {company.name!r} is not installed; "
            "ask an operator to install it again, or choose another Store Plugin in Website General Settings",
            cli_hint=f"cartplugin install it again, or choose another: cartplugin website-settings "
            f"{company.name!r} --store-plugin NAME",
        )
    if kind in ("import_orders", "download_orders") and not ws["allow_order_download"]:
        raise NotAllowed(f"Allow Order Download is off for company {company.name!r}")
    if kind == "upload_tracking" and not ws["allow_tracking_upload"]:
        raise NotAllowed(f"Allow Tracking Upload is off for company {company.name!r}")
    if kind != "test_settings" and ws["connection_status"] != "established":
        raise NotAllowed(
            f"the connection of company {company.name!r} is not established; run Test Settings first, in Cart General",
            cli_hint=f"cartplugin test-settings {company.name!r}",
        )


# -- Test Settings -----------------------------------------------------------------------------


def test_settings(db: sqlite_utils.Database, company: Company, *, seconds: float | None = None) -> TestResult:
    """Run the plugin's check and record the outcome for the settings as they are now.

    The whole check, retries included, gets ``seconds`` (default: the ``test_settings_seconds``
    setting); a channel silent that long fails the test with a message that says so.
    """
    seconds = config.current().test_settings_seconds if seconds is None else seconds
    version = companies.settings_version(db, company)
    channel, settings = _settings(db, company)
    hook = plugins.hook_for(channel, "cartplugin_test_settings")
    credentials = DbCredentialStore.of(db, company.id, channel)
    outcome = bounded.call_within(
        lambda: hook(settings=settings, credentials=credentials), seconds, after=credentials.close
    )
    result = outcome.value
    if outcome.out_of_time and not (isinstance(result, TestResult) and result.ok):
        result = TestResult(ok=False, message=silent_channel(seconds))
    elif isinstance(outcome.error, Exception):  # a plugin should return ok=False, but a crash must not leak
        result = TestResult(ok=False, message=f"the plugin failed: {type(outcome.error).__name__}: {outcome.error}")
    elif outcome.error is not None:
        raise outcome.error
    if not isinstance(result, TestResult):
        result = TestResult(ok=False, message=f"plugin {channel!r} returned no TestResult")
    result = result.model_copy(update={"message": redact(result.message, settings, credentials)})
    if not companies.record_test_result(db, company, version, result.ok, result.message):
        return TestResult(ok=False, message="the settings changed while they were being tested; test again")
    return result


def silent_channel(seconds: float) -> str:
    """What Test Settings says when the channel did not answer within its time."""
    return f"The channel did not answer within {seconds:g} s; try again later, or check the address in the settings."


# -- order download ----------------------------------------------------------------------------


def get_cursor(db: sqlite_utils.Database, company_id: int, channel: str, name: str = CURSOR_NAME) -> datetime | None:
    row = db.execute(
        "SELECT value FROM cursors WHERE company_id = ? AND channel = ? AND name = ?", [company_id, channel, name]
    ).fetchone()
    return clock.parse(row[0]) if row else None


def import_since(db: sqlite_utils.Database, company: Company, requested: datetime | None) -> tuple[datetime, str]:
    """Where Import Orders starts, and why.

    A Start Date (the web dialog always sends one; the CLI's ``--start-date``) is read from as
    it is. Without one it asks for the last ``RECENT_DAYS``; when every order of that window
    up to the cursor has been read already (and nothing changed there since, or its
    ``updated_at`` would be past the cursor) it starts at the cursor instead of reading the
    window again.
    """
    if requested is not None:
        return requested, "the Start Date"
    window = recent_since()
    channel = companies.store_plugin(db, company)
    cursor = get_cursor(db, company.id, channel)
    covered = get_cursor(db, company.id, channel, COVERED_FROM)
    if cursor is not None and covered is not None and covered <= window < cursor:
        return cursor, f"the last {RECENT_DAYS} days were read up to there already"
    return window, f"the last {RECENT_DAYS} days"


def behind_the_cursor(
    db: sqlite_utils.Database, company: Company, channel: str, since: datetime, why: str
) -> tuple[datetime, str]:
    """``since``, moved back by the channel's ``cursor_lag_seconds`` when it is at or after the
    saved cursor less that lag: an order the channel's listing shows late is not passed."""
    lag = timedelta(seconds=plugins.channel_info(channel).cursor_lag_seconds)
    cursor = get_cursor(db, company.id, channel)
    if not lag or cursor is None or since < cursor - lag:
        return since, why
    return cursor - lag, f"{why}, less the {lag.total_seconds():g} s the channel's listing may lag"


def _extend_coverage(db: sqlite_utils.Database, company_id: int, channel: str, since: datetime) -> None:
    """After a complete run from ``since`` that joined the cursor it found: everything from
    ``since`` to the cursor has been read."""
    db.execute(
        "INSERT INTO cursors (company_id, channel, name, value, updated_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (company_id, channel, name) DO UPDATE SET value = MIN(cursors.value, excluded.value), "
        "updated_at = excluded.updated_at",
        [company_id, channel, COVERED_FROM, clock.iso(since), clock.now_iso()],
    )


def _save_cursor(db: sqlite_utils.Database, company_id: int, channel: str, value: datetime) -> None:
    # Never moves backwards: a concurrent or older run cannot undo a newer cursor.
    db.execute(
        "INSERT INTO cursors (company_id, channel, name, value, updated_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (company_id, channel, name) DO UPDATE SET value = MAX(cursors.value, excluded.value), "
        "updated_at = excluded.updated_at",
        [company_id, channel, CURSOR_NAME, clock.iso(value), clock.now_iso()],
    )


class SettingsChanged(HostError):
    """The company's settings changed while a download ran: its orders may be another account's."""


class Interrupted(HostError):
    """The worker is stopping: the job stopped at an order boundary with its work committed."""


def _utc_or_bound(value: datetime) -> datetime:
    """``value`` in UTC; an instant too far out to convert becomes the smallest or largest one."""
    if value.tzinfo is UTC:  # what plugins give (once per imported order)
        return value
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC) if value.year < 2000 else datetime.max.replace(tzinfo=UTC)


def download_orders(
    db: sqlite_utils.Database,
    company: Company,
    *,
    since: datetime | None,
    progress: Progress | None = None,
    log: Callable[[str, str], None] | None = None,
    stop: Callable[[], bool] | None = None,
    budget_seconds: float | None = None,
    record: Callable[[Counts], None] | None = None,
) -> dict[str, Any]:
    """Stream the channel's unfulfilled orders since ``since`` into the host, batch by batch.

    Each batch of orders and the cursor that follows it commit in one transaction, so a crash
    leaves either both or neither. A bad order (malformed, impossible to store, or stamped in
    the future) holds the cursor at its ``updated_at`` so it is fetched again next time, while
    the orders around it import. The cursor never passes now + ``CLOCK_SKEW_SECONDS``.

    When ``budget_seconds`` runs out the download commits what it has and returns with
    ``"more": True`` (the next run continues from the cursor); so it does when the channel's
    rate limit would make the next request wait past the budget, with ``"waiting_until"``: the
    instant the limit allows it, when the next download is due. When ``stop()`` becomes true
    (between orders, or while a request waits for the rate limit) it commits and raises
    ``Interrupted``. If the company's settings change meanwhile (another key
    or URL may be another account) it raises ``SettingsChanged`` without saving that batch.

    ``record(counts)`` (a running job's progress) is called inside the transaction of each
    batch, when a listing page arrives (at most every ``PROGRESS_EVERY_SECONDS``, in a write of
    its own) and once at the end; pages are counted by ``plugin_spec.progress``.
    """
    channel, settings = _settings(db, company)
    version = companies.settings_version(db, company)
    hook = plugins.hook_for(channel, "cartplugin_download_orders")
    credentials = DbCredentialStore.of(db, company.id, channel)
    start_cursor = get_cursor(db, company.id, channel)
    # Website General's options: which new orders are imported (and whether shipped ones are asked for)
    gate = website_options.DownloadGate.of(companies.website_settings(db, company))
    skipped: dict[str, int] = dict.fromkeys(website_options.SKIPPED_KEYS, 0)
    passed: list[datetime] = []  # skipped orders' updated_at: the cursor moves past them
    # a run that starts after the saved cursor leaves a gap behind it: it must not move the
    # cursor, or the next download would start past orders nobody read
    contiguous = start_cursor is None or (since is not None and since <= start_cursor)
    ceiling = clock.now() + timedelta(seconds=CLOCK_SKEW_SECONDS)
    floor = _utc_or_bound(since) if since is not None else None
    started = time.monotonic()
    wait_until = clock.now() + timedelta(seconds=budget_seconds) if budget_seconds is not None else None
    stats = orders.ImportStats()
    bad: list[str] = []
    state: dict[str, Any] = {"cap": None, "frozen": False}  # the cursor may not pass a bad order
    batch: list[tuple[ChannelOrder, datetime]] = []
    seen = 0
    pages = 0
    recorded_at = float("-inf")

    def counts() -> Counts:
        return {"pages": pages, "orders": seen, "new": stats.inserted, "updated": stats.updated,
                "unchanged": stats.unchanged}  # fmt: skip

    def record_now() -> None:
        # inside a write transaction: beside the batch it counts, or alone for a page
        nonlocal recorded_at
        if record is not None:
            record(counts())
            recorded_at = time.monotonic()

    def page_arrived(items: int) -> None:
        nonlocal pages
        pages += 1
        if record is not None and time.monotonic() - recorded_at >= PROGRESS_EVERY_SECONDS:
            with write(db):
                record_now()

    def report_bad(order_id: str | None, updated_at: datetime | None, message: str) -> None:
        bad.append(order_id or "?")
        if log:
            shown = (order_id or "(no id)")[:80]
            log("warning", redact(f"order {shown} not imported: {message[:500]}", settings, credentials))
        if updated_at is None:
            state["frozen"] = True
            return
        held = _utc_or_bound(updated_at)
        if held > ceiling:
            return  # later than any cursor may go: it is read again anyway
        if floor is not None and held < floor:
            held = floor  # before the start of this run: hold the cursor where the run began
        if state["cap"] is None or held < state["cap"]:
            state["cap"] = held

    def same_settings() -> None:
        # inside each write transaction: a change committed by anyone before it is seen here
        if companies.settings_version(db, company) != version:
            raise SettingsChanged(
                f"the settings of company {company.name!r} changed during the download; "
                "nothing more is saved from it (run Test Settings, then the next download reads the new account)"
            )

    def commit() -> None:
        if not batch and not passed:
            return
        batch_orders = [order for order, _ in batch]
        # the rows are built before the write lock is taken: every job process waits for it
        prepared = orders.prepare_batch(db, company.id, channel, batch_orders, settings.commission_percent)
        with write(db):
            same_settings()
            failed = orders.upsert_each(
                db, company.id, channel, batch_orders, settings.commission_percent, stats, prepared
            )
            for order, message in failed:
                report_bad(order.source_order_id, order.updated_at, message)
            failed_ids = {id(order) for order, _ in failed}
            stored = [at for order, at in batch if id(order) not in failed_ids] + passed
            failpoint("download.before_cursor")
            if contiguous and not state["frozen"] and stored:
                newest = max(stored)
                cap = state["cap"]
                _save_cursor(db, company.id, channel, min(newest, cap) if cap is not None else newest)
            record_now()
            failpoint("download.after_cursor")  # cursor written, nothing committed yet
        failpoint("download.after_commit")
        batch.clear()
        passed.clear()

    def skip(order: ChannelOrder, at: datetime) -> bool:
        """True when the options skip ``order``: a new one only (one imported earlier keeps
        receiving the channel's changes, a cancellation above all)."""
        reason = gate.skipped(order)
        if (
            reason is None
            or db.execute(
                "SELECT 1 FROM orders WHERE company_id = ? AND channel = ? AND source_order_id = ?",
                [company.id, channel, order.source_order_id],
            ).fetchone()
        ):
            return False
        skipped[reason] += 1
        passed.append(at)
        return True

    try:
        items = hook(settings=settings, since=since, unfulfilled_only=gate.unfulfilled_only, credentials=credentials)
    except BaseException:
        credentials.close()
        raise
    if items is None:
        credentials.close()
        raise HostError(f"plugin {channel!r} does not download orders")
    more = False
    waiting: datetime | None = None
    try:
        # a request waiting for the rate limit stops with the job, and waits no longer than its budget
        with stopping.stop_when(stop, wait_until=wait_until), counting_pages(page_arrived):
            for item in items:
                seen += 1
                if isinstance(item, ChannelOrder):
                    at = _utc_or_bound(item.updated_at)
                    item = _screen(item, at, ceiling)
                if isinstance(item, BadOrder):
                    report_bad(item.source_order_id, item.updated_at, item.message)
                    continue
                if not isinstance(item, ChannelOrder):
                    report_bad(None, None, f"the plugin yielded a {type(item).__name__}, not an order")
                    continue
                if skip(item, at):
                    continue
                batch.append((item, at))
                failpoint("download.item")
                if len(batch) >= BATCH_SIZE:
                    commit()
                if progress:
                    progress(1)
                if stop is not None and stop():
                    commit()
                    raise Interrupted("the worker is stopping; the job continues from its cursor")
                if budget_seconds is not None and time.monotonic() - started > budget_seconds:
                    more = True
                    break
    except RateLimitWait as exc:
        # nothing was sent for the next page: what was read is kept, the next run reads on from there
        more, waiting = True, exc.until
    except stopping.Stopped:
        commit()
        raise Interrupted("the worker is stopping; the job continues from its cursor") from None
    finally:
        # stops the plugin's listing (and any page it is fetching ahead) however this loop ends
        close = getattr(items, "close", None)
        try:
            if close is not None:
                close()
        finally:
            credentials.close()
    commit()
    if record is not None:
        with write(db):
            record_now()
    if more:
        if log and waiting is not None:
            until = wall_time(waiting)
            log("warning", f"waiting for the channel's rate limit until {until}; the next download continues from here")
        elif log:
            log(
                "warning",
                f"stopped after its time budget of {budget_seconds:g} s; the next download continues from the cursor",
            )
    elif since is not None and contiguous and not state["frozen"]:
        with write(db):
            same_settings()
            _extend_coverage(db, company.id, channel, since)
    flagged = stats.flagged_cancelled
    if flagged and log:
        shown = ", ".join(flagged[:FLAGGED_SHOWN]) + (
            f" and {len(flagged) - FLAGGED_SHOWN} more" if len(flagged) > FLAGGED_SHOWN else ""
        )
        log(
            "warning",
            f"{len(flagged)} order(s) cancelled on the channel, flagged for staff with their status unchanged "
            f"(see Attention): {shown}",
        )
    summary = {**stats.as_dict(), "bad_orders": len(bad), "seen": seen}
    summary.update({key: count for key, count in skipped.items() if count})
    if log:
        for key, count in skipped.items():
            if count:
                log("info", f"{count} order(s) not imported: {_SKIPPED_WHY[key]}")
    if more:
        summary["more"] = True
    if waiting is not None:
        summary["waiting_until"] = clock.iso(waiting)
    # a channel that fails leaves the orders Awaiting acceptance: the next download tries again
    accepted = accept_after_download(db, company, log)
    if accepted is not None:
        summary["accepted"] = accepted
    return summary


#: why a new order was not imported, in staff words (the option that decides it)
_SKIPPED_WHY = {
    "skipped_shipped": "already shipped on the channel, and Allow Download Shipped Orders is off",
    "skipped_unpaid": "unpaid on the channel, and Allow Unpaid Orders is off",
    "skipped_before_limit": "created before the Order Download Limit Date",
}


def _screen(order: ChannelOrder, at: datetime, ceiling: datetime) -> ChannelOrder | BadOrder:
    """The host's own checks of an order a plugin mapped (``at``: its updated_at in UTC), before
    it joins a batch."""
    lines = order.lines
    if at <= ceiling and len(lines) == 1:
        return order  # the common case, checked with the least work (once per imported order)
    if len({line.source_line_id for line in lines}) != len(lines):
        # line ids are unique per order in the schema: one such order must not sink its batch
        return BadOrder(source_order_id=order.source_order_id, updated_at=order.updated_at,
                        message="two of its lines share one line id")  # fmt: skip
    if at > ceiling:
        # a cursor moved there would skip every real order until that date
        return BadOrder(source_order_id=order.source_order_id, updated_at=order.updated_at,
                        message=f"its updated_at {clock.iso(at)} is in the future")  # fmt: skip
    return order


def download_soon(db: sqlite_utils.Database, company: Company, at: str | None = None) -> None:
    """Make the company's next automatic download due now (a download stopped with more to read),
    or at ``at`` (a stored timestamp: when the channel's rate limit allows the next request)."""
    with write(db):
        db.execute("UPDATE companies SET next_download_at = ? WHERE id = ?", [at or clock.now_iso(), company.id])


def recent_since(days: int | None = None) -> datetime:
    """The start of the recent window: ``recent_days`` as set now (a default argument would
    keep the value of the moment this module was imported, before a config file was read)."""
    return clock.now() - timedelta(days=RECENT_DAYS if days is None else days)


def parse_start_date(value: str, name: str = "Start Date") -> datetime:
    """The Start Date of Import Orders as staff type it (``2026-11-01``, or an instant such as
    ``2026-11-01T08:00:00Z``; without a zone, UTC); ``name`` is the field in the message."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise HostError(f"{name} must be a date like 2026-11-01 or 2026-11-01T08:00:00Z, not {value[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed > clock.now():
        raise HostError(f"{name} must not be in the future")
    if parsed.year < 2000:
        raise HostError(f"{name} must be in the year 2000 or later")
    return parsed


# -- tracking upload ---------------------------------------------------------------------------


def upload_tracking(
    db: sqlite_utils.Database,
    company: Company,
    *,
    log: Callable[[str, str], None] | None = None,
    stop: Callable[[], bool] | None = None,
    budget_seconds: float | None = None,
) -> dict[str, Any]:
    """Send every Fully Shipped order's tracking that the channel has not accepted yet.

    The results of each batch are recorded right after the plugin returns them; an order whose
    shipments are all accepted gets Source Updated for Shipping = True and is not sent again.
    The plugin may post a batch's shipments concurrently (``plugin_spec.wire.upload_each``);
    ``stop`` and the time budget are asked before each shipment is sent (``stopping.stop_when``):
    once either says stop nothing more is sent, the answers already obtained are recorded (so
    nothing is posted twice), and the shipments not sent stay pending exactly as they were. So
    it ends, with ``"waiting_until"``, when the channel's rate limit would make the next post
    wait past the budget; the company's shipments are then not due before that instant.
    """
    channel, settings = _settings(db, company)
    credentials = DbCredentialStore.of(db, company.id, channel)
    hook = functools.partial(plugins.hook_for(channel, "cartplugin_upload_tracking"), credentials=credentials)
    counts: dict[str, Any] = {"accepted": 0, "failed": 0, "retrying": 0, "already_recorded": 0}
    delay = companies.website_settings(db, company)  # Delay Tracking Time and its days
    after_id = 0
    started = time.monotonic()
    wait_until = clock.now() + timedelta(seconds=budget_seconds) if budget_seconds is not None else None

    def over_budget() -> bool:
        return budget_seconds is not None and time.monotonic() - started > budget_seconds

    def stopping_now() -> bool:
        return (stop is not None and stop()) or over_budget()

    try:
        while True:
            if stop is not None and stop():
                raise Interrupted("the worker is stopping; the rest of the tracking is sent by the next run")
            if over_budget():
                counts["more"] = True  # the scheduler queues the rest on its next tick
                if log:
                    budget = f"{budget_seconds:g} s"
                    log("warning", f"stopped after its time budget of {budget}; the next upload sends the rest")
                break
            shipments = orders.shipments_to_upload(db, company.id, after_id=after_id, limit=UPLOAD_BATCH)
            if not shipments:
                break
            after_id = shipments[-1].shipment_id
            shipments = _hold_delayed(db, shipments, delay, counts, log)
            if not shipments:
                continue
            failpoint("upload.before_send")
            results, unsent, waiting = _send(hook, settings, shipments, stopping_now, wait_until)
            failpoint("upload.after_channel")
            _record(db, shipments, results, unsent, settings, counts, log, credentials)
            failpoint("upload.after_record")
            if waiting is not None:  # the shipments not sent stay pending, due when the limit allows a post
                counts["more"], counts["waiting_until"] = True, clock.iso(waiting)
                orders.defer_uploads(db, company.id, counts["waiting_until"])
                if log:
                    until = wall_time(waiting)
                    log(
                        "warning", f"waiting for the channel's rate limit until {until}; the next upload sends the rest"
                    )
                break
    finally:
        credentials.close()
    return counts


def _hold_delayed(
    db: sqlite_utils.Database,
    shipments: list[Shipment],
    settings: dict[str, Any],
    counts: dict[str, Any],
    log: Callable[[str, str], None] | None,
) -> list[Shipment]:
    """The shipments whose tracking may be sent now; each other one is not due before the
    instant its delay ends (Delay Tracking Time), so no upload is queued for it until then."""
    if not settings.get("delay_tracking"):
        return shipments
    now = clock.now()
    due: list[tuple[Shipment, datetime]] = []
    held: list[tuple[Shipment, datetime]] = []
    for shipment in shipments:
        at = website_options.upload_due(shipment.shipped_at, settings)
        (held if at > now else due).append((shipment, at))
    if held:
        orders.hold_uploads(db, [(shipment.shipment_id, clock.iso(at)) for shipment, at in held])
        counts["delayed"] = counts.get("delayed", 0) + len(held)
        if log:
            first = min(at for _, at in held)
            log(
                "info",
                f"{len(held)} tracking upload(s) held by Delay Tracking Time, the first until {clock.iso(first)}",
            )
    return [shipment for shipment, _ in due]


def _send(
    hook: Callable[..., Any],
    settings: CartSettings,
    shipments: list[Shipment],
    stop: Callable[[], bool],
    wait_until: datetime | None,
) -> tuple[list[Any], set[int], datetime | None]:
    """The plugin's results for one batch, the ids of the shipments it did not send because the
    job is stopping or the rate limit's next slot is past ``wait_until``, and that slot's instant."""
    with stopping.stop_when(stop, wait_until=wait_until) as halt:
        try:
            results = hook(settings=settings, shipments=shipments) or []
        except stopping.Stopped:
            # a plugin sending without upload_each let the limiter's refusal through: its answers
            # are lost, so the whole batch stays pending (the channel answers a repeat "already recorded")
            return [], {s.shipment_id for s in shipments}, None
        except RateLimitWait as exc:  # likewise, sending without upload_each
            return [], {s.shipment_id for s in shipments}, exc.until
    return results, halt.unsent, halt.waiting_until


def _record(
    db: sqlite_utils.Database,
    shipments: list[Shipment],
    results: list[Any],
    unsent: set[int],
    settings: CartSettings,
    counts: dict[str, Any],
    log: Callable[[str, str], None] | None,
    credentials: DbCredentialStore | None = None,
) -> None:
    """Record one result per shipment sent (a shipment not sent is left as it was)."""
    by_id = {r.shipment_id: r for r in results if isinstance(r, UploadResult)}
    complete = [
        by_id.get(s.shipment_id)
        or UploadResult(shipment_id=s.shipment_id, ok=False, retryable=True, message="the plugin returned no result")
        for s in shipments
        if s.shipment_id not in unsent
    ]
    complete = [r.model_copy(update={"message": redact(r.message, settings, credentials)}) for r in complete]
    recorded = orders.record_upload_results(db, complete)
    counts["accepted"] += recorded["accepted"]
    counts["failed"] += recorded["failed"]
    counts["retrying"] += recorded["retrying"]
    counts["already_recorded"] += sum(1 for r in complete if r.ok and r.already_recorded)
    if log:
        source_ids = {s.shipment_id: s.source_order_id for s in shipments}
        for r in complete:
            if not r.ok:
                log("warning", f"tracking of order {source_ids[r.shipment_id]} not accepted: {r.message}")
