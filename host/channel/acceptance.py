"""Accepting new orders on channels that want the seller to accept each one before shipping.

A plugin whose ``ChannelInfo.capabilities`` include ``accept_orders`` marks such orders
``awaiting_acceptance`` on download. The host then asks the plugin to accept them: right after
each download when the company's ``accept_on_download`` setting is on, otherwise when staff
accept them (Accept Order on the web admin's order page, or ``cartplugin orders accept``), where
lines the seller cannot serve are cancelled on the channel instead. Until then the order shows
as Awaiting acceptance and its tracking is not uploaded (the channel would refuse it). An order
staff set to Cancelled here is never accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from host.channel import plugins
from host.channel.gate import channel_settings, check_allowed, redact
from host.errors import HostError, NotFound
from host.records import audit, companies
from host.records.companies import Company
from host.records.credentials import DbCredentialStore
from host.store.api import Store
from host.store.db import write
from plugin_spec import AcceptRequest, AcceptResult, ChannelError

CAPABILITY = "accept_orders"


def needs_acceptance(channel: str) -> bool:
    return CAPABILITY in plugins.channel_info(channel).capabilities


def waiting(db: Store, company_id: int) -> list[dict[str, Any]]:
    """Orders of the company still awaiting acceptance, oldest first; not one staff cancelled."""
    return list(db.query(
        "SELECT id, source_order_id FROM orders WHERE company_id = :company_id AND awaiting_acceptance = 1 "
        "AND status != 'Cancelled' ORDER BY id",
        {"company_id": company_id},
    ))  # fmt: skip


def accept_orders(
    db: Store,
    company: Company,
    order_ids: Sequence[int] | None = None,
    *,
    cancel_lines: Mapping[int, Sequence[str]] | None = None,
    log: Callable[[str, str], None] | None = None,
    actor: str | None = None,
) -> list[dict[str, Any]]:
    """Accept the company's orders awaiting acceptance (all, or ``order_ids``) on its channel.

    ``cancel_lines`` maps a host order id to SKUs or channel line ids to cancel instead of
    accepting. Returns one row per order: id, source order id, ok, message. Each answer goes
    to the Change Log under ``actor`` (when given); cartplugin's own tries after a download
    write only the orders accepted (a refusal is tried again at every download).
    """
    check_allowed(db, company, "download_orders")
    channel, settings = channel_settings(db, company)
    if not needs_acceptance(channel):
        raise HostError(f"the {channel} channel does not ask sellers to accept orders")
    rows = waiting(db, company.id)
    if order_ids is not None:
        wanted = {int(i) for i in order_ids}
        by_id = {row["id"] for row in rows}
        for order_id in wanted - by_id:
            if not db.execute(
                "SELECT 1 FROM orders WHERE id = :id AND company_id = :company_id",
                {"id": order_id, "company_id": company.id},
            ).fetchone():
                raise NotFound(f"company {company.name!r} has no order {order_id}")
        rows = [row for row in rows if row["id"] in wanted]
    if not rows:
        return []
    requests = [AcceptRequest(source_order_id=row["source_order_id"],
                              cancel_line_ids=_line_ids(db, row["id"], (cancel_lines or {}).get(row["id"], ())))
                for row in rows]  # fmt: skip
    hook = plugins.hook_for(channel, "cartplugin_accept_orders")
    credentials = DbCredentialStore.of(db, company.id, channel)
    try:
        results = hook(settings=settings, orders=requests, credentials=credentials) or []
    except Exception as exc:  # noqa: BLE001 - the channel (or the plugin) failed: no order is accepted, each says why
        reason = exc.message if isinstance(exc, ChannelError) else f"the plugin failed: {type(exc).__name__}: {exc}"
        message = redact(reason, settings, credentials)
        if log:
            log("warning", f"{len(rows)} order(s) not accepted (the next try is the next download or Accept Order): "
                           f"{message}")  # fmt: skip
        if actor is not None and audit.source_of(actor) != audit.SYSTEM_SOURCE:
            for row in rows:
                audit.record(db, actor, "order not accepted", company_id=company.id,
                             target=f"order {row['source_order_id']}", details={"answer": message})  # fmt: skip
        return [{"id": row["id"], "source_order_id": row["source_order_id"], "ok": False, "message": message}
                for row in rows]  # fmt: skip
    finally:
        credentials.close()
    by_source = {r.source_order_id: r for r in results if isinstance(r, AcceptResult)}
    requests_by = {r.source_order_id: set(r.cancel_line_ids) for r in requests}
    report = []
    with write(db):
        for row in rows:
            result = by_source.get(row["source_order_id"]) or AcceptResult(
                source_order_id=row["source_order_id"], ok=False, message="the plugin returned no result"
            )
            if result.ok:
                db.execute("UPDATE orders SET awaiting_acceptance = 0 WHERE id = :id", {"id": row["id"]})
            message = redact(result.message, settings, credentials)
            report.append(
                {"id": row["id"], "source_order_id": row["source_order_id"], "ok": result.ok, "message": message}
            )
            if log and not result.ok:
                log("warning", f"order {row['source_order_id']} not accepted: {message}")
            if actor is not None and (result.ok or audit.source_of(actor) != audit.SYSTEM_SOURCE):
                cancelled = [line["sku"] for line in db.query(
                    "SELECT sku, source_line_id FROM order_lines WHERE order_id = :id ORDER BY id", {"id": row["id"]}
                ) if line["source_line_id"] in requests_by[row["source_order_id"]]]  # fmt: skip
                audit.record(db, actor, "order accepted" if result.ok else "order not accepted",
                             company_id=company.id, target=f"order {row['source_order_id']}",
                             details={"cancel": cancelled, "answer": message})  # fmt: skip
    return report


def accept_after_download(db: Store, company: Company, log: Callable[[str, str], None] | None = None) -> int | None:
    """Accept waiting orders when the channel needs it and ``accept_on_download`` is on; how many."""
    channel = companies.store_plugin(db, company)
    if not needs_acceptance(channel):
        return None
    settings = companies.cart_settings_model(db, company)
    if not getattr(settings, "accept_on_download", False) or not waiting(db, company.id):
        return None
    return sum(1 for row in accept_orders(db, company, log=log, actor=audit.SYSTEM) if row["ok"])


def _line_ids(db: Store, order_id: int, refs: Sequence[str]) -> list[str]:
    """Channel line ids of the order's lines named by SKU or line id; an unknown one is refused."""
    lines = list(db.query("SELECT source_line_id, sku FROM order_lines WHERE order_id = :id", {"id": order_id}))
    found = []
    for ref in refs:
        match = [line["source_line_id"] for line in lines if ref in (line["sku"], line["source_line_id"])]
        if not match:
            raise NotFound(f"order {order_id} has no line with SKU or line id {ref!r}")
        found.extend(match)
    return found
