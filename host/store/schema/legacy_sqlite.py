"""SQLite's steps 0001..0017, frozen: they only bring a database made before the baseline up to it.

A new database is made from the schema's single source (``host.store.schema.steps``), never from
these. Never edit, rename or add to them (a schema change is a new step in ``steps.py``); they
stay for as long as a database made before the baseline may still be opened. Each runs in one
transaction with its record (``0008_channel_money`` makes its own) and checks before it alters,
so a run stopped before its record repeats harmlessly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from host.errors import HostError

LegacyStep = Callable[[Any], None]
#: (name, step, runs in a transaction of the runner's), in order
STEPS: list[tuple[str, LegacyStep, bool]] = []
#: what these steps left otherwise than the baseline, done when such a database is recorded at it
TO_BASELINE: tuple[str, ...] = ()


def _step(name: str, *, transactional: bool = True) -> Callable[[LegacyStep], LegacyStep]:
    def register(fn: LegacyStep) -> LegacyStep:
        STEPS.append((name, fn, transactional))
        return fn

    return register


@_step("0001_initial")
def m0001_initial(db: Any) -> None:
    for statement in _INITIAL.split(";\n"):
        if statement.strip():
            db.execute(statement)


_INITIAL = """
CREATE TABLE companies (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created_at TEXT NOT NULL,
    connection_status TEXT NOT NULL DEFAULT 'untested'
        CHECK (connection_status IN ('untested', 'established', 'failed')),
    connection_message TEXT,
    connection_tested_at TEXT,
    settings_version INTEGER NOT NULL DEFAULT 0,
    next_download_at TEXT
);
CREATE INDEX companies_download_due ON companies(next_download_at)
    WHERE connection_status = 'established';
CREATE TABLE website_settings (
    company_id INTEGER PRIMARY KEY REFERENCES companies(id),
    store_type TEXT NOT NULL DEFAULT 'Custom',
    store_plugin TEXT,
    allow_order_download INTEGER NOT NULL DEFAULT 0,
    allow_tracking_upload INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
CREATE TABLE cart_settings (
    company_id INTEGER NOT NULL REFERENCES companies(id),
    channel TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT,
    is_secret INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (company_id, channel, key)
);
CREATE TABLE cursors (
    company_id INTEGER NOT NULL REFERENCES companies(id),
    channel TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (company_id, channel, name)
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    company_id INTEGER NOT NULL REFERENCES companies(id),
    channel TEXT NOT NULL,
    source_order_id TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'In Process',
    status_set_by_staff INTEGER NOT NULL DEFAULT 0,
    payment_status TEXT NOT NULL,
    shipping_status TEXT NOT NULL DEFAULT 'Unshipped',
    payment_method TEXT,
    order_date TEXT NOT NULL,
    channel_updated_at TEXT NOT NULL,
    currency TEXT NOT NULL,
    subtotal TEXT NOT NULL,
    shipping_total TEXT NOT NULL,
    tax TEXT NOT NULL,
    grand_total TEXT NOT NULL,
    commission TEXT NOT NULL,
    total_cost TEXT NOT NULL,
    buyer_company TEXT,
    buyer_vat_number TEXT,
    buyer_email TEXT,
    shipping_address TEXT,
    billing_address TEXT,
    channel_financial_status TEXT,
    channel_fulfillment_status TEXT,
    channel_cancelled INTEGER NOT NULL DEFAULT 0,
    source_updated_for_shipping INTEGER NOT NULL DEFAULT 0,
    imported_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (company_id, channel, source_order_id)
);
CREATE INDEX orders_awaiting_upload ON orders(company_id)
    WHERE shipping_status = 'Fully Shipped' AND source_updated_for_shipping = 0;
CREATE INDEX orders_channel_cancelled ON orders(company_id) WHERE channel_cancelled = 1;
CREATE TABLE order_lines (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    source_line_id TEXT NOT NULL,
    sku TEXT NOT NULL,
    title TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    unit_price TEXT NOT NULL,
    tax TEXT NOT NULL,
    quantity_shipped INTEGER NOT NULL DEFAULT 0,
    UNIQUE (order_id, source_line_id)
);
CREATE TABLE order_properties (
    order_id INTEGER NOT NULL REFERENCES orders(id),
    name TEXT NOT NULL,
    value TEXT,
    PRIMARY KEY (order_id, name)
);
CREATE TABLE shipments (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    carrier TEXT NOT NULL,
    tracking_number TEXT NOT NULL,
    tracking_url TEXT,
    shipped_at TEXT NOT NULL,
    upload_state TEXT NOT NULL DEFAULT 'pending'
        CHECK (upload_state IN ('pending', 'accepted', 'failed')),
    upload_attempts INTEGER NOT NULL DEFAULT 0,
    upload_message TEXT,
    uploaded_at TEXT,
    UNIQUE (order_id, tracking_number)
);
CREATE INDEX shipments_order ON shipments(order_id);
CREATE TABLE shipment_lines (
    shipment_id INTEGER NOT NULL REFERENCES shipments(id),
    order_line_id INTEGER NOT NULL REFERENCES order_lines(id),
    quantity INTEGER NOT NULL,
    serial_numbers TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (shipment_id, order_line_id)
);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    company_id INTEGER NOT NULL REFERENCES companies(id),
    kind TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'Queued',
    priority INTEGER NOT NULL DEFAULT 0,
    params TEXT NOT NULL DEFAULT '{}',
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 5,
    run_after TEXT NOT NULL,
    claimed_by TEXT,
    heartbeat_at TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    summary TEXT
);
CREATE UNIQUE INDEX jobs_one_pending ON jobs(company_id, kind)
    WHERE status IN ('Queued', 'Processing');
CREATE INDEX jobs_runnable ON jobs(status, run_after, priority);
CREATE INDEX jobs_company ON jobs(company_id, id);
CREATE TABLE job_logs (
    id INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    at TEXT NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX job_logs_job ON job_logs(job_id, id)
"""


@_step("0002_shipment_retry_schedule")
def m0002_shipment_retry_schedule(db: Any) -> None:
    # a refused tracking upload waits before the next try instead of being sent every round
    if "next_upload_at" not in db["shipments"].columns_dict:
        db.execute("ALTER TABLE shipments ADD COLUMN next_upload_at TEXT")


@_step("0003_hardening")
def m0003_hardening(db: Any) -> None:
    from host import clock
    from host.records import secrets
    from host.records.names import name_key

    # company names match case-insensitively beyond ASCII (NOCASE knows only A-Z)
    if "name_key" not in db["companies"].columns_dict:
        db.execute("ALTER TABLE companies ADD COLUMN name_key TEXT")
    for company_id, name in db.execute("SELECT id, name FROM companies").fetchall():
        db.execute("UPDATE companies SET name_key = :key WHERE id = :id", {"key": name_key(name), "id": company_id})
    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS companies_name_key ON companies(name_key)")
    # an older version wrote years before 1000 unpadded ("999-..."), which sorts above "2026-..."
    for company_id, channel, name, value in db.execute(
        "SELECT company_id, channel, name, value FROM cursors"
    ).fetchall():
        fixed = clock.iso(clock.parse(value))
        if fixed != value:
            db.execute(
                "UPDATE cursors SET value = :value"
                " WHERE company_id = :company_id AND channel = :channel AND name = :name",
                {"value": fixed, "company_id": company_id, "channel": channel, "name": name},
            )
    secrets.seal_clear_rows(db)
    db.execute("PRAGMA user_version = 3")  # this step's own number: a run stopped after it says so


@_step("0004_web_admin")
def m0004_web_admin(db: Any) -> None:
    # staff accounts, throttled logins and the audit log of the web admin; indexes for its grids
    for statement in _WEB_ADMIN.split(";\n"):
        if statement.strip():
            db.execute(statement)
    db.execute("PRAGMA user_version = 4")  # this step's own number: a run stopped after it says so


@_step("0005_order_acceptance")
def m0005_order_acceptance(db: Any) -> None:
    # some channels want each new order accepted by the seller before it may be shipped
    columns = {row[1] for row in db.execute("PRAGMA table_info(orders)").fetchall()}
    if "awaiting_acceptance" not in columns:
        db.execute("ALTER TABLE orders ADD COLUMN awaiting_acceptance INTEGER NOT NULL DEFAULT 0")
    db.execute("CREATE INDEX IF NOT EXISTS orders_awaiting ON orders(company_id, awaiting_acceptance)")
    db.execute("PRAGMA user_version = 5")  # this step's own number: a run stopped after it says so


@_step("0006_drop_unused")
def m0006_drop_unused(db: Any) -> None:
    # nothing ever read them: staff own an order's status by construction (an import never
    # changes it), and Source Updated for Shipping is a column of orders, the only property
    db.execute("DROP TABLE IF EXISTS order_properties")
    columns = {row[1] for row in db.execute("PRAGMA table_info(orders)").fetchall()}
    if "status_set_by_staff" in columns:
        db.execute("ALTER TABLE orders DROP COLUMN status_set_by_staff")
    db.execute("PRAGMA user_version = 6")  # this step's own number: a run stopped after it says so


@_step("0007_channel_credentials")
def m0007_channel_credentials(db: Any) -> None:
    # what a channel's auth obtains at run time (OAuth access tokens, rotated refresh tokens),
    # shared by every process: see host/records/credentials.py
    db.execute(_CHANNEL_CREDENTIALS)
    db.execute("PRAGMA user_version = 7")  # this step's own number: a run stopped after it says so


_CHANNEL_CREDENTIALS = """
CREATE TABLE IF NOT EXISTS channel_credentials (
    company_id INTEGER NOT NULL REFERENCES companies(id),
    channel TEXT NOT NULL,
    name TEXT NOT NULL,
    origin TEXT NOT NULL DEFAULT '',
    value TEXT,
    expires_at TEXT,
    version INTEGER NOT NULL DEFAULT 0,
    refreshed_at TEXT,
    lease_until TEXT,
    PRIMARY KEY (company_id, channel, name)
)
"""


@_step("0008_channel_money", transactional=False)
def m0008_channel_money(db: Any) -> None:
    # Discounts, the channel's adjustment, and line totals as channels send them; a line may
    # have a line total and no unit price, so order_lines.unit_price loses NOT NULL (a CHECK
    # still wants one of the two). SQLite
    # cannot drop a constraint in place: the table is rebuilt, which needs foreign keys off
    # (dropping the old table would otherwise cascade into shipment_lines), and PRAGMA
    # foreign_keys is ignored inside a transaction, hence a step that makes its own one. It
    # checks before it alters, so a run stopped before its record is written repeats harmlessly.
    from host.store.sqlite import write

    db.execute("PRAGMA foreign_keys = OFF")
    try:
        if db.execute("PRAGMA foreign_keys").fetchone()[0]:  # a transaction was open: it would cascade
            raise HostError("migration 0008_channel_money must run outside a transaction; nothing was changed")
        with write(db):
            orders = {row[1] for row in db.execute("PRAGMA table_info(orders)").fetchall()}
            for column in ("discount_total", "adjustment_total"):
                if column not in orders:
                    db.execute(f"ALTER TABLE orders ADD COLUMN {column} TEXT NOT NULL DEFAULT '0'")
            lines = {row[1] for row in db.execute("PRAGMA table_info(order_lines)").fetchall()}
            if "line_total" not in lines:
                kept = ", ".join(sorted(lines, key=_LINE_COLUMNS.index))
                db.execute(_ORDER_LINES_0008)
                db.execute(f"INSERT INTO order_lines_0008 ({kept}) SELECT {kept} FROM order_lines")
                db.execute("DROP TABLE order_lines")
                db.execute("ALTER TABLE order_lines_0008 RENAME TO order_lines")
            if db.execute("PRAGMA foreign_key_check").fetchone() is not None:
                raise HostError("migration 0008_channel_money would break a foreign key; nothing was changed")
            db.execute("PRAGMA user_version = 8")  # this step's own number: a run stopped after it says so
    finally:
        db.execute("PRAGMA foreign_keys = ON")


#: order_lines' columns before 0008, in their order
_LINE_COLUMNS = (
    "id",
    "order_id",
    "source_line_id",
    "sku",
    "title",
    "quantity",
    "unit_price",
    "tax",
    "quantity_shipped",
)
_ORDER_LINES_0008 = """
CREATE TABLE order_lines_0008 (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    source_line_id TEXT NOT NULL,
    sku TEXT NOT NULL,
    title TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    unit_price TEXT,
    tax TEXT NOT NULL,
    quantity_shipped INTEGER NOT NULL DEFAULT 0,
    line_total TEXT,
    discount TEXT NOT NULL DEFAULT '0',
    UNIQUE (order_id, source_line_id),
    CHECK (unit_price IS NOT NULL OR line_total IS NOT NULL)
)
"""


_WEB_ADMIN = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'support', 'warehouse', 'read-only')),
    password_hash TEXT NOT NULL,
    session_version INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    last_login_at TEXT
);
CREATE TABLE IF NOT EXISTS login_failures (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures(key, at);
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    company_id INTEGER REFERENCES companies(id),
    target TEXT,
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_log_company ON audit_log(company_id, id);
CREATE TABLE IF NOT EXISTS web_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_company_grid ON orders(company_id, id);
CREATE INDEX IF NOT EXISTS orders_status_grid ON orders(status, id);
CREATE INDEX IF NOT EXISTS orders_shipping_grid ON orders(shipping_status, id);
CREATE INDEX IF NOT EXISTS orders_payment_grid ON orders(payment_status, id);
CREATE INDEX IF NOT EXISTS orders_source_grid ON orders(source_order_id);
CREATE INDEX IF NOT EXISTS orders_date_grid ON orders(order_date, id);
CREATE INDEX IF NOT EXISTS orders_updated_grid ON orders(source_updated_for_shipping, id);
CREATE INDEX IF NOT EXISTS orders_cancelled_grid ON orders(id) WHERE channel_cancelled = 1;
CREATE INDEX IF NOT EXISTS shipments_failed ON shipments(order_id) WHERE upload_state = 'failed';
CREATE INDEX IF NOT EXISTS jobs_status_grid ON jobs(status, id);
CREATE INDEX IF NOT EXISTS jobs_kind_grid ON jobs(kind, id);
CREATE INDEX IF NOT EXISTS jobs_company_kind ON jobs(company_id, kind, status, finished_at)
"""


@_step("0009_cancelled_lines")
def m0009_cancelled_lines(db: Any) -> None:
    # a line the channel cancelled while the rest of its order stands: not shipped, and not
    # waited for by Fully Shipped
    columns = {row[1] for row in db.execute("PRAGMA table_info(order_lines)").fetchall()}
    if "channel_cancelled" not in columns:
        db.execute("ALTER TABLE order_lines ADD COLUMN channel_cancelled INTEGER NOT NULL DEFAULT 0")
    # this step's own number (a run stopped after it says so), never lowering the version of a
    # database that has later steps already
    if db.execute("PRAGMA user_version").fetchone()[0] < 9:
        db.execute("PRAGMA user_version = 9")


@_step("0010_shipment_corrections")
def m0010_shipment_corrections(db: Any) -> None:
    # staff correct the tracking of a shipment the channel has recorded: the number it replaces
    # is kept until the channel takes the new one (a refused upload waits for staff with no
    # schema change: a shipment in upload_state 'failed' is never due by itself)
    if "replaces_tracking" not in db["shipments"].columns_dict:
        db.execute("ALTER TABLE shipments ADD COLUMN replaces_tracking TEXT")
    db.execute("PRAGMA user_version = 10")  # this step's own number: a run stopped after it says so


@_step("0011_job_progress")
def m0011_job_progress(db: Any) -> None:
    # what a running download has done so far (pages, orders), written as it goes, so staff
    # see a long Import Orders move; JSON, kept after the job ends
    columns = {row[1] for row in db.execute("PRAGMA table_info(jobs)").fetchall()}
    if "progress" not in columns:
        db.execute("ALTER TABLE jobs ADD COLUMN progress TEXT")
    db.execute("PRAGMA user_version = 11")  # this step's own number: a run stopped after it says so


@_step("0013_website_options")
def m0013_website_options(db: Any) -> None:
    # Website General's other options (which orders a download imports, when tracking is sent)
    # and the index the worker's removal of old Queued Jobs goes through
    columns = {row[1] for row in db.execute("PRAGMA table_info(website_settings)").fetchall()}
    for column, spelling in WEBSITE_OPTION_COLUMNS:
        if column not in columns:
            db.execute(f"ALTER TABLE website_settings ADD COLUMN {column} {spelling}")
    db.execute("CREATE INDEX IF NOT EXISTS jobs_finished ON jobs(finished_at)")
    db.execute("PRAGMA user_version = 13")  # this step's own number: a run stopped after it says so


#: website_settings columns of step 0013 (PostgreSQL: step 0008_website_options)
WEBSITE_OPTION_COLUMNS = (
    ("allow_download_shipped", "INTEGER NOT NULL DEFAULT 0"),
    ("allow_unpaid_orders", "INTEGER NOT NULL DEFAULT 0"),
    ("order_download_limit", "INTEGER NOT NULL DEFAULT 0"),
    ("order_download_limit_date", "TEXT"),
    ("delay_tracking", "INTEGER NOT NULL DEFAULT 0"),
    ("delay_min_hours", "INTEGER NOT NULL DEFAULT 0"),
    ("delay_skip_saturday", "INTEGER NOT NULL DEFAULT 0"),
    ("delay_skip_sunday", "INTEGER NOT NULL DEFAULT 0"),
)


@_step("0014_order_id_search")
def m0014_order_id_search(db: Any) -> None:
    # staff search Manage Orders on any part of a channel's order id: a trigram index over
    # orders, filled here with the orders already there (host/records/order_search.py)
    from host.records.order_search import REBUILD, SQLITE_SCHEMA

    for statement in SQLITE_SCHEMA:
        db.execute(statement)
    db.execute(REBUILD)
    db.execute("PRAGMA user_version = 14")  # this step's own number: a run stopped after it says so


@_step("0015_user_companies")
def m0015_user_companies(db: Any) -> None:
    # staff limited to some companies (a 3PL's client companies); an account made before
    # reaches every company, as it did (host/records/access.py)
    if "all_companies" not in db["users"].columns_dict:
        db.execute("ALTER TABLE users ADD COLUMN all_companies INTEGER NOT NULL DEFAULT 1")
    db.execute(USER_COMPANIES)
    db.execute("PRAGMA user_version = 15")  # this step's own number: a run stopped after it says so


#: the companies given to a user limited to some (step 0015; PostgreSQL: step 0010_user_companies)
USER_COMPANIES = """
CREATE TABLE IF NOT EXISTS user_companies (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    company_id INTEGER NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, company_id)
)
"""


@_step("0016_user_lifecycle")
def m0016_user_lifecycle(db: Any) -> None:
    # Employees in the browser: an admin disables a user (who then cannot sign in) and enables
    # them again; a disabled user keeps their name in the Change Log
    columns = {row[1] for row in db.execute("PRAGMA table_info(users)").fetchall()}
    if "disabled" not in columns:
        db.execute("ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0")
    db.execute("PRAGMA user_version = 16")  # this step's own number: a run stopped after it says so


@_step("0017_change_log_source")
def m0017_change_log_source(db: Any) -> None:
    # the Change Log keeps where each change came from (web, cli, system): entries of the command
    # line written before this step said so in their name ("... (command line)")
    columns = {row[1] for row in db.execute("PRAGMA table_info(audit_log)").fetchall()}
    if "source" not in columns:
        db.execute(f"ALTER TABLE audit_log ADD COLUMN source {CHANGE_LOG_SOURCE}")
    db.execute(CHANGE_LOG_OLD_CLI)
    db.execute(CHANGE_LOG_SOURCE_INDEX)
    db.execute("PRAGMA user_version = 17")  # this step's own number: a run stopped after it says so


#: the audit_log column of step 0017 (PostgreSQL: step 0012_change_log_source)
CHANGE_LOG_SOURCE = "TEXT NOT NULL DEFAULT 'web' CHECK (source IN ('web', 'cli', 'system'))"
CHANGE_LOG_OLD_CLI = "UPDATE audit_log SET source = 'cli' WHERE actor = 'command line' OR actor LIKE '% (command line)'"
CHANGE_LOG_SOURCE_INDEX = "CREATE INDEX IF NOT EXISTS audit_log_source ON audit_log(source, id)"
