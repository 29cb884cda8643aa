"""Read-only queries behind the web admin's grids: server-side paging, sorting and filters.

Every filter and sort maps to a fixed SQL fragment (never text from the request), and each
one has an index (migration 0004_web_admin), so a page costs the same at 100 rows or 100,000.
Paging is by OFFSET within an indexed order; pages far from the start cost more, which the
grid accepts since staff narrow with filters rather than paging to page 2,000.

Every query here takes the ``Access`` of the signed-in user (``host.records.access``; no default, so a
new caller cannot forget it): rows, counts and the choices of a filter come from the companies
the user reaches only, whatever the request's parameters name.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from host.records import order_search
from host.records import orders as orders_module
from host.records.access import EVERY, Access
from host.store.api import Store, in_list
from host.store.api import backend as store_backend

PAGE_SIZE = 50

ORDER_SORTS = {
    "id": "o.id",
    "order_date": "o.order_date",
    "source_order_id": "o.source_order_id",
    "status": "o.status",
}


@dataclass
class Page:
    rows: list[dict[str, Any]]
    total: int
    page: int
    per_page: int
    sort: str = "id"
    descending: bool = True
    filters: dict[str, Any] = field(default_factory=dict)
    #: more rows match than were counted (``COUNT_CAP``): ``total`` is the cap, shown as "10,000+"
    capped: bool = False

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_next(self) -> bool:
        """Whether a page follows this one (past the count's cap: whenever this one is full)."""
        if self.capped and self.page >= self.pages:
            return len(self.rows) == self.per_page
        return self.page < self.pages


#: a grid counts the rows that match up to this many, and says "10,000+" beyond: an exact count
#: reads every matching index entry (on PostgreSQL 10-18 ms at 120,000 orders, the larger part of
#: a Manage Orders page, and more while an import writes: its new rows are not yet all-visible),
#: for a figure nobody pages through; a capped one stops at the cap (about 1 ms)
COUNT_CAP = 10_000


def _counted(from_where: str) -> str:
    """``SELECT COUNT(*)`` of the rows ``from_where`` ("FROM ... WHERE ...") finds, at most
    ``COUNT_CAP`` + 1 of them (one more than the cap tells that there are more)."""
    return f"SELECT COUNT(*) FROM (SELECT 1 {from_where} LIMIT {int(COUNT_CAP) + 1}) AS counted"


def _page_total(db: Store, count: str, params: dict[str, Any]) -> tuple[int, bool]:
    """The count a grid shows, and whether it was capped."""
    total = db.execute(count, params).fetchone()[0]
    return (COUNT_CAP, True) if total > COUNT_CAP else (total, False)


def _page_number(value: Any) -> int:
    text = str(value or "1")
    return max(1, min(int(text), 1_000_000)) if text.isdecimal() else 1


def _reach(access: Access, column: str) -> tuple[str, dict[str, Any]]:
    """A SQL condition on ``column`` (a fixed name, never text from a request) that keeps the
    companies ``access`` reaches, and its named parameters (``:reach_0``, ...)."""
    if access.company_ids is None:
        return "1 = 1", {}
    if not access.company_ids:
        return "1 = 0", {}
    marks, params = in_list("reach", sorted(access.company_ids))
    return f"{column} IN {marks}", params


def companies_overview(db: Store, access: Access) -> list[dict[str, Any]]:
    """The Companies list: toggles, connection, last download and upload, orders needing attention."""
    reach, params = _reach(access, "c.id")
    rows = db.query(
        f"""
        SELECT c.id, c.name, c.connection_status, c.connection_tested_at, w.store_plugin,
               w.allow_order_download, w.allow_tracking_upload,
               (SELECT MAX(finished_at) FROM jobs j WHERE j.company_id = c.id
                  AND j.kind IN ('import_orders', 'download_orders') AND j.status IN ('Completed', 'Partial Success'))
                  AS last_download,
               (SELECT MAX(finished_at) FROM jobs j WHERE j.company_id = c.id
                  AND j.kind = 'upload_tracking' AND j.status IN ('Completed', 'Partial Success')) AS last_upload,
               (SELECT COUNT(*) FROM orders o WHERE o.company_id = c.id AND o.channel_cancelled = 1
                  AND o.status != 'Cancelled') AS attention
        FROM companies c JOIN website_settings w ON w.company_id = c.id WHERE {reach} ORDER BY c.name
        """,
        params,
    )
    from host.records.companies import plugin_missing

    return [{**row, "allow_order_download": bool(row["allow_order_download"]),
             "allow_tracking_upload": bool(row["allow_tracking_upload"]),
             "plugin_missing": plugin_missing(row["store_plugin"])} for row in rows]  # fmt: skip


def company_choices(db: Store, access: Access) -> list[dict[str, Any]]:
    """The companies a grid's company filter offers (id and name, by name): what the Companies
    list computes for each (last jobs, orders needing attention) is not read for a drop-down."""
    reach, params = _reach(access, "id")
    return list(db.query(f"SELECT id, name FROM companies WHERE {reach} ORDER BY name", params))


def _order_filters(filters: dict[str, Any], backend: str, access: Access) -> tuple[list[str], dict[str, Any]]:
    where: list[str] = []
    params: dict[str, Any] = {}
    if not access.everything:
        reach, params = _reach(access, "o.company_id")
        where.append(reach)
    if str(filters.get("company") or "").isdecimal():
        where.append("o.company_id = :company")
        params["company"] = int(filters["company"])
    if filters.get("status") in orders_module.STATUSES:
        where.append("o.status = :status")
        params["status"] = filters["status"]
    if filters.get("payment"):
        where.append("o.payment_status = :payment")
        params["payment"] = str(filters["payment"])[:40]
    if filters.get("shipping") in (
        orders_module.UNSHIPPED,
        orders_module.PARTIALLY_SHIPPED,
        orders_module.FULLY_SHIPPED,
    ):
        where.append("o.shipping_status = :shipping")
        params["shipping"] = filters["shipping"]
    if filters.get("source_updated") in ("yes", "no"):
        where.append("o.source_updated_for_shipping = :source_updated")
        params["source_updated"] = 1 if filters["source_updated"] == "yes" else 0
    if filters.get("cancelled") == "yes":
        where.append("o.channel_cancelled = 1")
    if filters.get("upload_failed") == "yes":
        where.append("o.id IN (SELECT order_id FROM shipments WHERE upload_state = 'failed')")
    if order_search.term(filters.get("q")):  # any part of the channel's order id
        sql, values = order_search.condition(filters["q"], backend)
        where.append(sql)
        params.update(values)
    return where, params


def orders_sql(
    filters: dict[str, Any],
    sort: str,
    descending: bool,
    page: int,
    per_page: int,
    backend: str = "sqlite",
    access: Access = EVERY,
) -> tuple[str, str, dict[str, Any]]:
    """The page's SELECT and COUNT statements of the orders grid, and their named parameters;
    ``backend``: the name ``host.store.api.backend`` gives for the database they run on."""
    where, params = _order_filters(filters, backend, access)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    direction = "DESC" if descending else "ASC"
    order_by = f"{ORDER_SORTS.get(sort, 'o.id')} {direction}" + (f", o.id {direction}" if sort != "id" else "")
    select = (
        "SELECT o.id, o.source_order_id, c.name AS company, o.status, o.payment_status, o.shipping_status, "
        "o.order_date, o.currency, o.grand_total, o.total_cost, o.source_updated_for_shipping, o.channel_cancelled "
        f"FROM orders o JOIN companies c ON c.id = o.company_id{clause} ORDER BY {order_by} "
        f"LIMIT {int(per_page)} OFFSET {int((page - 1) * per_page)}"
    )
    return select, _counted(f"FROM orders o{clause}"), params


def orders_page(db: Store, args: dict[str, Any], access: Access, per_page: int = PAGE_SIZE) -> Page:
    sort: str = args["sort"] if args.get("sort") in ORDER_SORTS else "id"
    descending = args.get("dir", "desc") != "asc"
    page = _page_number(args.get("page"))
    filters = {
        k: args.get(k)
        for k in ("company", "status", "payment", "shipping", "source_updated", "cancelled", "upload_failed", "q")
    }
    select, count, params = orders_sql(filters, sort, descending, page, per_page, store_backend(db), access)
    rows = [
        {**row, "source_updated_for_shipping": bool(row["source_updated_for_shipping"]),
         "needs_attention": bool(row["channel_cancelled"]) and row["status"] != "Cancelled"}
        for row in db.query(select, params)
    ]  # fmt: skip
    total, capped = _page_total(db, count, params)
    return Page(rows, total, page, per_page, sort, descending, {k: v for k, v in filters.items() if v}, capped)


def backend_of(db: Store) -> str:
    """The store's kind, "sqlite" or "postgresql" (``host.store.api.backend``)."""
    return store_backend(db)


def payment_statuses(db: Store, access: Access) -> list[str]:
    """The payment statuses the user's orders have, for the grid's filter. Found one after the
    other through the ``orders_payment_grid`` index (each the least greater than the last): a
    ``SELECT DISTINCT`` reads every order on PostgreSQL, which has no skip scan (about 16 ms at
    100,000 orders, on every page of the grid)."""
    reach, params = _reach(access, "company_id")
    sql = f"""
        WITH RECURSIVE seen(status) AS (
            SELECT MIN(payment_status) FROM orders WHERE {reach}
            UNION ALL
            SELECT (SELECT MIN(payment_status) FROM orders WHERE payment_status > seen.status AND {reach})
            FROM seen WHERE seen.status IS NOT NULL
        )
        SELECT status FROM seen WHERE status IS NOT NULL ORDER BY 1
    """
    return [row[0] for row in db.execute(sql, params)]


def jobs_sql(
    filters: dict[str, Any], page: int, per_page: int, access: Access = EVERY
) -> tuple[str, str, dict[str, Any]]:
    where: list[str] = []
    params: dict[str, Any] = {}
    if not access.everything:
        reach, params = _reach(access, "j.company_id")
        where.append(reach)
    if str(filters.get("company") or "").isdecimal():
        where.append("j.company_id = :company")
        params["company"] = int(filters["company"])
    if filters.get("kind"):
        where.append("j.kind = :kind")
        params["kind"] = str(filters["kind"])[:40]
    if filters.get("status"):
        where.append("j.status = :status")
        params["status"] = str(filters["status"])[:40]
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    select = (
        "SELECT j.id, j.kind, c.name AS company, j.company_id, j.status, j.priority, j.attempts, j.created_at, "
        "j.started_at, j.finished_at, j.summary, j.progress "
        f"FROM jobs j JOIN companies c ON c.id = j.company_id{clause} "
        f"ORDER BY j.id DESC LIMIT {int(per_page)} OFFSET {int((page - 1) * per_page)}"
    )
    return select, _counted(f"FROM jobs j{clause}"), params


def jobs_page(db: Store, args: dict[str, Any], access: Access, per_page: int = PAGE_SIZE) -> Page:
    page = _page_number(args.get("page"))
    filters = {k: args.get(k) for k in ("company", "kind", "status")}
    select, count, params = jobs_sql(filters, page, per_page, access)
    rows = [
        {**row, "summary": json.loads(row["summary"]) if row["summary"] else None,
         "progress": json.loads(row["progress"]) if row["progress"] else None}
        for row in db.query(select, params)
    ]  # fmt: skip
    total, capped = _page_total(db, count, params)
    return Page(rows, total, page, per_page, filters={k: v for k, v in filters.items() if v}, capped=capped)


def failed_uploads(db: Store, access: Access, limit: int = 200) -> list[dict[str, Any]]:
    """Shipments the channel refused, newest first, with their order."""
    reach, params = _reach(access, "o.company_id")
    return list(
        db.query(
            "SELECT s.id AS shipment_id, s.order_id, s.carrier, s.tracking_number, s.upload_attempts, "
            "s.upload_message, s.next_upload_at, o.source_order_id, c.name AS company "
            "FROM shipments s JOIN orders o ON o.id = s.order_id JOIN companies c ON c.id = o.company_id "
            f"WHERE s.upload_state = 'failed' AND {reach} ORDER BY s.id DESC LIMIT :limit",
            {**params, "limit": limit},
        )
    )


def attention_orders(db: Store, access: Access, limit: int = 500) -> list[dict[str, Any]]:
    """Orders the channel cancelled that staff have not set to Cancelled, in the user's companies."""
    if access.company_ids is None:
        return list(orders_module.list_orders(db, needs_attention=True, limit=limit))
    found = itertools.chain.from_iterable(
        orders_module.list_orders(db, company_id, needs_attention=True, limit=limit)
        for company_id in access.company_ids
    )
    return sorted(found, key=lambda row: row["id"])[:limit]


def explain(db: Store, sql: str, params: dict[str, Any]) -> list[str]:
    """EXPLAIN QUERY PLAN lines of ``sql`` (the bench shows that grids go through indexes)."""
    return [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()]
