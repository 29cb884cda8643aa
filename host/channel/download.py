"""The order download pipeline: the channel's orders streamed into the host, batch by batch.

A run reads the plugin's listing, screens each order (``_screen``) and the Website General
options' gate (``website_options.DownloadGate``), and commits each batch with the cursor that
follows it in one transaction (``cursors.save_cursor``). Where it starts is
``host.channel.cursors``' to say; that it may run at all is ``host.channel.gate``'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from host import clock, config
from host.channel import cursors, plugins
from host.channel.acceptance import accept_after_download
from host.channel.gate import Interrupted, channel_settings, redact
from host.errors import HostError
from host.jobs.failpoints import failpoint
from host.records import companies, orders, website_options
from host.records.companies import Company
from host.records.credentials import DbCredentialStore
from host.store.api import Store
from host.store.db import write
from plugin_spec import BadOrder, ChannelOrder, stopping
from plugin_spec.errors import RateLimitWait
from plugin_spec.progress import counting as counting_pages
from plugin_spec.ratelimit import wall_time

#: channel-cancelled orders named in a job's log line (the rest are counted)
FLAGGED_SHOWN = 20
#: how far past the host's clock an order's updated_at may be before it counts as bad (clocks
#: differ a little between the channel and the host; more is a wrong date)
CLOCK_SKEW_SECONDS = 300

Progress = Callable[[int], None]
Log = Callable[[str, str], None]
#: what a download has done so far (pages read, orders read, new, updated, unchanged), handed to
#: a ``record`` callable inside a write transaction
Counts = dict[str, int]
#: a page's progress is recorded at most this often (a batch's always, with its orders)
PROGRESS_EVERY_SECONDS = 1.0

#: why a new order was not imported, in staff words (the option that decides it)
_SKIPPED_WHY = {
    "skipped_shipped": "already shipped on the channel, and Allow Download Shipped Orders is off",
    "skipped_unpaid": "unpaid on the channel, and Allow Unpaid Orders is off",
    "skipped_before_limit": "created before the Order Download Limit Date",
}


class SettingsChanged(HostError):
    """The company's settings changed while a download ran: its orders may be another account's."""


def download_orders(
    db: Store,
    company: Company,
    *,
    since: datetime | None,
    progress: Progress | None = None,
    log: Log | None = None,
    stop: Callable[[], bool] | None = None,
    budget_seconds: float | None = None,
    record: Callable[[Counts], None] | None = None,
    held: Callable[[], None] | None = None,
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
    its own) and once at the end; pages are counted by ``plugin_spec.progress``. ``held()`` (a
    running job's claim) is asked first in each transaction that writes orders or the cursor: it
    raises when the job is no longer this worker's, and the transaction changes nothing.
    """
    run = _Download(db, company, since, log=log, budget_seconds=budget_seconds, record=record, held=held)
    items = run.open_listing()
    run.read(items, progress, stop)
    run.commit()
    run.finish()
    run.record_progress_alone()
    summary = run.summary()
    # a channel that fails leaves the orders Awaiting acceptance: the next download tries again;
    # so does a job stopping (or no longer this worker's), which sends nothing more
    if stop is not None and stop():
        return summary
    with stopping.stop_when(stop):
        accepted = accept_after_download(db, company, log)
    if accepted is not None:
        summary["accepted"] = accepted
    return summary


class _Download:
    """One download run: what it read, what it holds for the next batch, and where the cursor may go."""

    def __init__(
        self,
        db: Store,
        company: Company,
        since: datetime | None,
        *,
        log: Log | None,
        budget_seconds: float | None,
        record: Callable[[Counts], None] | None,
        held: Callable[[], None] | None = None,
    ):
        self.db, self.company, self.since = db, company, since
        self.log, self.budget_seconds, self.record, self.held = log, budget_seconds, record, held
        self.channel, self.settings = channel_settings(db, company)
        self.version = companies.settings_version(db, company)
        self.hook = plugins.hook_for(self.channel, "cartplugin_download_orders")
        self.credentials = DbCredentialStore.of(db, company.id, self.channel)
        self.batch_size = config.current().download_batch
        start_cursor = cursors.get_cursor(db, company.id, self.channel)
        # Website General's options: which new orders are imported (and whether shipped ones are asked for)
        self.gate = website_options.DownloadGate.of(companies.website_settings(db, company))
        self.skipped: dict[str, int] = dict.fromkeys(website_options.SKIPPED_KEYS, 0)
        self.passed: list[datetime] = []  # skipped orders' updated_at: the cursor moves past them
        # a run that starts after the saved cursor leaves a gap behind it: it must not move the
        # cursor, or the next download would start past orders nobody read
        self.contiguous = start_cursor is None or (since is not None and since <= start_cursor)
        self.ceiling = clock.now() + timedelta(seconds=CLOCK_SKEW_SECONDS)
        self.floor = _utc_or_bound(since) if since is not None else None
        self.started = time.monotonic()
        self.wait_until = clock.now() + timedelta(seconds=budget_seconds) if budget_seconds is not None else None
        self.stats = orders.ImportStats()
        self.bad: list[str] = []
        self.cap: datetime | None = None  # the cursor may not pass a bad order
        self.frozen = False  # a bad order without a date: the cursor stays where it is
        self.batch: list[tuple[ChannelOrder, datetime]] = []
        self.seen = 0
        self.pages = 0
        # the first progress once a page arrives a PROGRESS_EVERY_SECONDS into the run: a short
        # download writes its counts beside its batch and its end, not in a write of their own
        self.recorded_at = self.started
        self.recorded: Counts | None = None
        self.more = False
        self.waiting: datetime | None = None

    # -- the listing -------------------------------------------------------------------------------

    def open_listing(self) -> Iterable[Any]:
        """The plugin's listing of orders since the start (a generator the plugin pages through)."""
        try:
            items = self.hook(settings=self.settings, since=self.since, unfulfilled_only=self.gate.unfulfilled_only,
                              credentials=self.credentials)  # fmt: skip
        except BaseException:
            self.credentials.close()
            raise
        if items is None:
            self.credentials.close()
            raise HostError(f"plugin {self.channel!r} does not download orders")
        return items

    def read(self, items: Iterable[Any], progress: Progress | None, stop: Callable[[], bool] | None) -> None:
        """Take every order of the listing into batches, committing each full one, until the
        listing ends, the budget or the rate limit ends the run, or ``stop()`` interrupts it."""
        try:
            # a request waiting for the rate limit stops with the job, and waits no longer than its budget
            with stopping.stop_when(stop, wait_until=self.wait_until), counting_pages(self.page_arrived):
                for item in items:
                    if not self.take(item):
                        continue
                    if progress:
                        progress(1)
                    if stop is not None and stop():
                        self.commit()
                        raise Interrupted("the worker is stopping; the job continues from its cursor")
                    if self.budget_seconds is not None and time.monotonic() - self.started > self.budget_seconds:
                        self.more = True
                        break
        except RateLimitWait as exc:
            # nothing was sent for the next page: what was read is kept, the next run reads on from there
            self.more, self.waiting = True, exc.until
        except stopping.Stopped:
            self.commit()
            raise Interrupted("the worker is stopping; the job continues from its cursor") from None
        finally:
            # stops the plugin's listing (and any page it is fetching ahead) however this loop ends
            close = getattr(items, "close", None)
            try:
                if close is not None:
                    close()
            finally:
                self.credentials.close()

    def take(self, item: Any) -> bool:
        """One item of the listing into the batch (committed when full); False when it was a
        bad order or one the options skip."""
        self.seen += 1
        if isinstance(item, ChannelOrder):
            at = _utc_or_bound(item.updated_at)
            item = _screen(item, at, self.ceiling)
        if isinstance(item, BadOrder):
            self.report_bad(item.source_order_id, item.updated_at, item.message)
            return False
        if not isinstance(item, ChannelOrder):
            self.report_bad(None, None, f"the plugin yielded a {type(item).__name__}, not an order")
            return False
        if self.skip(item, at):
            return False
        self.batch.append((item, at))
        failpoint("download.item")
        if len(self.batch) >= self.batch_size:
            self.commit()
        return True

    def skip(self, order: ChannelOrder, at: datetime) -> bool:
        """True when the options skip ``order``: a new one only (one imported earlier keeps
        receiving the channel's changes, a cancellation above all)."""
        reason = self.gate.skipped(order)
        if reason is None or _known(self.db, self.company.id, self.channel, order.source_order_id):
            return False
        self.skipped[reason] += 1
        self.passed.append(at)
        return True

    def report_bad(self, order_id: str | None, updated_at: datetime | None, message: str) -> None:
        """Log a bad order and hold the cursor at its ``updated_at``, so it is read again next run."""
        self.bad.append(order_id or "?")
        if self.log:
            shown = (order_id or "(no id)")[:80]
            self.log("warning", redact(f"order {shown} not imported: {message[:500]}", self.settings, self.credentials))
        if updated_at is None:
            self.frozen = True
            return
        held = _utc_or_bound(updated_at)
        if held > self.ceiling:
            return  # later than any cursor may go: it is read again anyway
        if self.floor is not None and held < self.floor:
            held = self.floor  # before the start of this run: hold the cursor where the run began
        if self.cap is None or held < self.cap:
            self.cap = held

    # -- progress ----------------------------------------------------------------------------------

    def counts(self) -> Counts:
        stats = self.stats
        return {"pages": self.pages, "orders": self.seen, "new": stats.inserted, "updated": stats.updated,
                "unchanged": stats.unchanged}  # fmt: skip

    def record_now(self) -> None:
        # inside a write transaction: beside the batch it counts, or alone for a page
        if self.record is not None:
            self.recorded = self.counts()
            self.record(self.recorded)
            self.recorded_at = time.monotonic()

    def page_arrived(self, items: int) -> None:
        self.pages += 1
        if self.record is not None and time.monotonic() - self.recorded_at >= PROGRESS_EVERY_SECONDS:
            with write(self.db):
                self.record_now()

    def record_progress_alone(self) -> None:
        """The final counts, in a write of their own unless the last write recorded them."""
        if self.record is not None and self.recorded != self.counts():
            with write(self.db):
                self.record_now()

    # -- writing -----------------------------------------------------------------------------------

    def same_settings(self) -> None:
        # inside each write transaction: a change committed by anyone before it is seen here
        if self.held is not None:
            self.held()
        if companies.settings_version(self.db, self.company) != self.version:
            raise SettingsChanged(
                f"the settings of company {self.company.name!r} changed during the download; "
                "nothing more is saved from it (run Test Settings, then the next download reads the new account)"
            )

    def commit(self) -> None:
        """Write the batch and the cursor after it in one transaction."""
        batch, passed, db = self.batch, self.passed, self.db
        if not batch and not passed:
            return
        company_id, channel, commission = self.company.id, self.channel, self.settings.commission_percent
        batch_orders = [order for order, _ in batch]
        # the rows are built before the write lock is taken: every job process waits for it
        prepared = orders.prepare_batch(db, company_id, channel, batch_orders, commission)
        with write(db):
            self.same_settings()
            failed = orders.upsert_each(db, company_id, channel, batch_orders, commission, self.stats, prepared)
            for order, message in failed:
                self.report_bad(order.source_order_id, order.updated_at, message)
            failed_ids = {id(order) for order, _ in failed}
            stored = [at for order, at in batch if id(order) not in failed_ids] + passed
            failpoint("download.before_cursor")
            if self.contiguous and not self.frozen and stored:
                newest = max(stored)
                cap = self.cap
                cursors.save_cursor(db, company_id, channel, min(newest, cap) if cap is not None else newest)
            self.record_now()
            failpoint("download.after_cursor")  # cursor written, nothing committed yet
        failpoint("download.after_commit")
        batch.clear()
        passed.clear()

    def finish(self) -> None:
        """Say why a run ended early, or record that a complete one read its whole window."""
        if self.more:
            if self.log and self.waiting is not None:
                until = wall_time(self.waiting)
                self.log("warning", f"waiting for the channel's rate limit until {until}; "
                                    "the next download continues from here")  # fmt: skip
            elif self.log:
                self.log("warning", f"stopped after its time budget of {self.budget_seconds:g} s; "
                                    "the next download continues from the cursor")  # fmt: skip
        elif self.since is not None and self.contiguous and not self.frozen:
            with write(self.db):
                self.same_settings()
                cursors.extend_coverage(self.db, self.company.id, self.channel, self.since)
                self.record_now()

    def summary(self) -> dict[str, Any]:
        """The run's counts (and its log lines for the cancelled and the skipped)."""
        log = self.log
        flagged = self.stats.flagged_cancelled
        if flagged and log:
            shown = ", ".join(flagged[:FLAGGED_SHOWN]) + (
                f" and {len(flagged) - FLAGGED_SHOWN} more" if len(flagged) > FLAGGED_SHOWN else ""
            )
            log(
                "warning",
                f"{len(flagged)} order(s) cancelled on the channel, flagged for staff with their status unchanged "
                f"(see Attention): {shown}",
            )
        summary: dict[str, Any] = {**self.stats.as_dict(), "bad_orders": len(self.bad), "seen": self.seen}
        summary.update({key: count for key, count in self.skipped.items() if count})
        if log:
            for key, count in self.skipped.items():
                if count:
                    log("info", f"{count} order(s) not imported: {_SKIPPED_WHY[key]}")
        if self.more:
            summary["more"] = True
        if self.waiting is not None:
            summary["waiting_until"] = clock.iso(self.waiting)
        return summary


def _known(db: Store, company_id: int, channel: str, source_order_id: str) -> bool:
    """Whether the host has the channel's order already."""
    row = db.execute(
        "SELECT 1 FROM orders WHERE company_id = :company_id AND channel = :channel AND source_order_id = :source",
        {"company_id": company_id, "channel": channel, "source": source_order_id},
    ).fetchone()
    return row is not None


def _utc_or_bound(value: datetime) -> datetime:
    """``value`` in UTC; an instant too far out to convert becomes the smallest or largest one."""
    if value.tzinfo is UTC:  # what plugins give (once per imported order)
        return value
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC) if value.year < 2000 else datetime.max.replace(tzinfo=UTC)


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


def download_soon(db: Store, company: Company, at: str | None = None) -> None:
    """Make the company's next automatic download due now (a download stopped with more to read),
    or at ``at`` (a stored timestamp: when the channel's rate limit allows the next request)."""
    with write(db):
        db.execute(
            "UPDATE companies SET next_download_at = :at WHERE id = :id",
            {"at": at or clock.now_iso(), "id": company.id},
        )
