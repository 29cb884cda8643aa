"""The tracking upload pipeline: Fully Shipped orders' tracking sent to the channel, batch by batch.

Each shipment's answer is stored as it comes back (``plugin_spec.wire.upload_each`` hands it over
through the stop scope's ``on_result``; one short write, ``orders.record_upload_result``), so a
database outage costs at most the requests in flight; what a plugin returns only at the end of
a batch is recorded then (``orders.record_upload_results``);
Delay Tracking Time holds a shipment back until its delay ends (``website_options.upload_due``).
That the upload may run at all is ``host.channel.gate``'s to say.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from host import clock, config
from host.channel import plugins
from host.channel.gate import Interrupted, channel_settings, redact
from host.jobs.failpoints import failpoint
from host.records import companies, orders, website_options
from host.records.companies import Company
from host.records.credentials import DbCredentialStore
from host.store.api import Store
from host.store.db import write
from plugin_spec import CartSettings, Shipment, UploadResult, stopping
from plugin_spec.errors import RateLimitWait
from plugin_spec.ratelimit import wall_time


def upload_tracking(
    db: Store,
    company: Company,
    *,
    log: Callable[[str, str], None] | None = None,
    stop: Callable[[], bool] | None = None,
    budget_seconds: float | None = None,
    held: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Send every Fully Shipped order's tracking that the channel has not accepted yet.

    Each result is stored as it comes back (else, for a plugin that answers only with its list,
    right after the plugin returns the batch); should storing fail (the database went away),
    nothing more is sent and the failure is raised once the plugin returns. An order whose
    shipments are all accepted gets Source Updated for Shipping = True and is not sent again.
    The plugin may post a batch's shipments concurrently (``plugin_spec.wire.upload_each``);
    ``stop`` and the time budget are asked before each shipment is sent (``stopping.stop_when``):
    once either says stop nothing more is sent, the answers already obtained are recorded (so
    nothing is posted twice), and the shipments not sent stay pending exactly as they were. So
    it ends, with ``"waiting_until"``, when the channel's rate limit would make the next post
    wait past the budget; the company's shipments are then not due before that instant.
    ``held()`` (a running job's claim) is asked in each transaction that stores results: it
    raises when the job is no longer this worker's; nothing is stored and nothing more is sent.
    """
    channel, settings = channel_settings(db, company)
    credentials = DbCredentialStore.of(db, company.id, channel)
    hook = functools.partial(plugins.hook_for(channel, "cartplugin_upload_tracking"), credentials=credentials)
    counts: dict[str, Any] = {"accepted": 0, "failed": 0, "retrying": 0, "already_recorded": 0}
    delay = companies.website_settings(db, company)  # Delay Tracking Time and its days
    after_id = 0
    batch_size = config.current().upload_batch
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
            shipments = orders.shipments_to_upload(db, company.id, after_id=after_id, limit=batch_size)
            if not shipments:
                break
            after_id = shipments[-1].shipment_id
            shipments = _hold_delayed(db, shipments, delay, counts, log)
            if not shipments:
                continue
            failpoint("upload.before_send")
            recorder = _Recorder(db, shipments, settings, counts, log, credentials, held)
            results, unsent, waiting, error = _send(hook, settings, shipments, stopping_now, wait_until, recorder)
            if set(by_shipment(results)) - recorder.stored - unsent:
                failpoint("upload.after_channel")
            recorder.record(results, unsent)
            failpoint("upload.after_record")
            if error is not None:  # storing a result failed: what was sent and not stored goes again
                raise error
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
    db: Store,
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
    recorder: _Recorder,
) -> tuple[list[Any], set[int], datetime | None, BaseException | None]:
    """The plugin's results for one batch (each stored by ``recorder`` as it came back, when the
    plugin sends through ``upload_each``), the ids of the shipments it did not send because the
    job is stopping or the rate limit's next slot is past ``wait_until``, that slot's instant,
    and what storing a result raised (then nothing more was sent)."""
    with stopping.stop_when(stop, wait_until=wait_until, on_result=recorder.one) as halt:
        try:
            results = hook(settings=settings, shipments=shipments) or []
        except stopping.Stopped:
            # a plugin sending without upload_each let the limiter's refusal through: its answers
            # are lost, so the whole batch stays pending (the channel answers a repeat "already recorded")
            return [], {s.shipment_id for s in shipments} - recorder.stored, None, halt.error
        except RateLimitWait as exc:  # likewise, sending without upload_each
            return [], {s.shipment_id for s in shipments} - recorder.stored, exc.until, halt.error
    return results, halt.unsent, halt.waiting_until, halt.error


def by_shipment(results: list[Any]) -> dict[int, UploadResult]:
    return {r.shipment_id: r for r in results if isinstance(r, UploadResult)}


class _Recorder:
    """Stores a batch's upload results: each one as it comes back (:meth:`one`, one short write),
    the rest once the plugin returns (:meth:`record`); a shipment not sent is left as it was."""

    def __init__(
        self,
        db: Store,
        shipments: list[Shipment],
        settings: CartSettings,
        counts: dict[str, Any],
        log: Callable[[str, str], None] | None,
        credentials: DbCredentialStore | None,
        held: Callable[[], None] | None = None,
    ):
        self.db, self.settings, self.counts, self.log, self.credentials = db, settings, counts, log, credentials
        #: the running job's claim, asked in the transaction that stores each result (fencing)
        self.held = held
        self.source_ids = {s.shipment_id: s.source_order_id for s in shipments}
        self.shipments = shipments
        #: the shipments whose result is stored already
        self.stored: set[int] = set()

    def one(self, result: UploadResult) -> None:
        if result.shipment_id not in self.source_ids or result.shipment_id in self.stored:
            return
        failpoint("upload.after_channel")
        self._store([result])

    def record(self, results: list[Any], unsent: set[int]) -> None:
        """Store the result of each shipment sent whose result is not stored yet."""
        by_id = by_shipment(results)
        rest = [
            by_id.get(s.shipment_id)
            or UploadResult(
                shipment_id=s.shipment_id, ok=False, retryable=True, message="the plugin returned no result"
            )
            for s in self.shipments
            if s.shipment_id not in unsent and s.shipment_id not in self.stored
        ]
        if rest:
            self._store(rest)

    def _store(self, results: list[UploadResult]) -> None:
        redacted = [
            r.model_copy(update={"message": redact(r.message, self.settings, self.credentials)}) for r in results
        ]
        with write(self.db):
            if self.held is not None:
                self.held()
            recorded = orders.record_upload_results(self.db, redacted)
        self.stored.update(r.shipment_id for r in redacted)
        for key in ("accepted", "failed", "retrying"):
            self.counts[key] += recorded[key]
        self.counts["already_recorded"] += sum(1 for r in redacted if r.ok and r.already_recorded)
        if self.log:
            for r in redacted:
                if not r.ok:
                    self.log("warning", f"tracking of order {self.source_ids[r.shipment_id]} not accepted: {r.message}")
