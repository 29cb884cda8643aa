"""The schema's first step, ``0018_baseline``: every table, column, check and index the host had when
the two backends' schemas were still written apart (SQLite's step 0017 = PostgreSQL's step 0012).

A new database of either backend is made from this; a database made before it was brought here by
its old steps (``legacy_sqlite``, ``legacy_postgresql``) and is recorded at this step without running
it. Never edit it once released: change the schema with a new step (``steps.py``). The columns a
table gained over time are listed last, in the order they were added, as those old steps left them.
"""

from __future__ import annotations

DDL = """
CREATE TABLE companies (
    id {id},
    name {name} NOT NULL,
    created_at {text} NOT NULL,
    connection_status {text} NOT NULL DEFAULT 'untested'
        CHECK (connection_status IN ('untested', 'established', 'failed')),
    connection_message {text},
    connection_tested_at {text},
    settings_version INTEGER NOT NULL DEFAULT 0,
    next_download_at {text},
    name_key {text},
    CONSTRAINT companies_name UNIQUE (name)
);
CREATE INDEX companies_download_due ON companies(next_download_at)
    WHERE connection_status = 'established';
CREATE UNIQUE INDEX companies_name_key ON companies(name_key);
CREATE TABLE website_settings (
    company_id {ref} PRIMARY KEY REFERENCES companies(id),
    store_type {text} NOT NULL DEFAULT 'Custom',
    store_plugin {text},
    allow_order_download INTEGER NOT NULL DEFAULT 0,
    allow_tracking_upload INTEGER NOT NULL DEFAULT 0,
    updated_at {text} NOT NULL,
    allow_download_shipped INTEGER NOT NULL DEFAULT 0,
    allow_unpaid_orders INTEGER NOT NULL DEFAULT 0,
    order_download_limit INTEGER NOT NULL DEFAULT 0,
    order_download_limit_date {text},
    delay_tracking INTEGER NOT NULL DEFAULT 0,
    delay_min_hours INTEGER NOT NULL DEFAULT 0,
    delay_skip_saturday INTEGER NOT NULL DEFAULT 0,
    delay_skip_sunday INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE cart_settings (
    company_id {ref} NOT NULL REFERENCES companies(id),
    channel {text} NOT NULL,
    key {text} NOT NULL,
    value {text},
    is_secret INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (company_id, channel, key)
);
CREATE TABLE cursors (
    company_id {ref} NOT NULL REFERENCES companies(id),
    channel {text} NOT NULL,
    name {text} NOT NULL,
    value {text} NOT NULL,
    updated_at {text} NOT NULL,
    PRIMARY KEY (company_id, channel, name)
);
CREATE TABLE channel_credentials (
    company_id {ref} NOT NULL REFERENCES companies(id),
    channel {text} NOT NULL,
    name {text} NOT NULL,
    origin {text} NOT NULL DEFAULT '',
    value {text},
    expires_at {text},
    version INTEGER NOT NULL DEFAULT 0,
    refreshed_at {text},
    lease_until {text},
    PRIMARY KEY (company_id, channel, name)
);
CREATE TABLE orders (
    id {id},
    company_id {ref} NOT NULL REFERENCES companies(id),
    channel {text} NOT NULL,
    source_order_id {text} NOT NULL,
    status {text} NOT NULL DEFAULT 'In Process',
    payment_status {text} NOT NULL,
    shipping_status {text} NOT NULL DEFAULT 'Unshipped',
    payment_method {text},
    order_date {text} NOT NULL,
    channel_updated_at {text} NOT NULL,
    currency {text} NOT NULL,
    subtotal {text} NOT NULL,
    shipping_total {text} NOT NULL,
    tax {text} NOT NULL,
    grand_total {text} NOT NULL,
    commission {text} NOT NULL,
    total_cost {text} NOT NULL,
    buyer_company {text},
    buyer_vat_number {text},
    buyer_email {text},
    shipping_address {text},
    billing_address {text},
    channel_financial_status {text},
    channel_fulfillment_status {text},
    channel_cancelled INTEGER NOT NULL DEFAULT 0,
    source_updated_for_shipping INTEGER NOT NULL DEFAULT 0,
    imported_at {text} NOT NULL,
    updated_at {text} NOT NULL,
    awaiting_acceptance INTEGER NOT NULL DEFAULT 0,
    discount_total {text} NOT NULL DEFAULT '0',
    adjustment_total {text} NOT NULL DEFAULT '0',
    UNIQUE (company_id, channel, source_order_id)
);
CREATE INDEX orders_awaiting_upload ON orders(company_id)
    WHERE shipping_status = 'Fully Shipped' AND source_updated_for_shipping = 0;
CREATE INDEX orders_channel_cancelled ON orders(company_id) WHERE channel_cancelled = 1;
CREATE INDEX orders_awaiting ON orders(company_id, awaiting_acceptance);
CREATE INDEX orders_company_grid ON orders(company_id, id);
CREATE INDEX orders_status_grid ON orders(status, id);
CREATE INDEX orders_shipping_grid ON orders(shipping_status, id);
CREATE INDEX orders_payment_grid ON orders(payment_status, id);
CREATE INDEX orders_source_grid ON orders(source_order_id);
CREATE INDEX orders_date_grid ON orders(order_date, id);
CREATE INDEX orders_updated_grid ON orders(source_updated_for_shipping, id);
CREATE INDEX orders_cancelled_grid ON orders(id) WHERE channel_cancelled = 1;
CREATE TABLE order_lines (
    id {id},
    order_id {ref} NOT NULL REFERENCES orders(id),
    source_line_id {text} NOT NULL,
    sku {text} NOT NULL,
    title {text} NOT NULL,
    quantity INTEGER NOT NULL,
    unit_price {text},
    tax {text} NOT NULL,
    quantity_shipped INTEGER NOT NULL DEFAULT 0,
    line_total {text},
    discount {text} NOT NULL DEFAULT '0',
    channel_cancelled INTEGER NOT NULL DEFAULT 0,
    UNIQUE (order_id, source_line_id),
    CONSTRAINT order_lines_price CHECK (unit_price IS NOT NULL OR line_total IS NOT NULL)
);
CREATE TABLE shipments (
    id {id},
    order_id {ref} NOT NULL REFERENCES orders(id),
    carrier {text} NOT NULL,
    tracking_number {text} NOT NULL,
    tracking_url {text},
    shipped_at {text} NOT NULL,
    upload_state {text} NOT NULL DEFAULT 'pending'
        CHECK (upload_state IN ('pending', 'accepted', 'failed')),
    upload_attempts INTEGER NOT NULL DEFAULT 0,
    upload_message {text},
    uploaded_at {text},
    next_upload_at {text},
    replaces_tracking {text},
    UNIQUE (order_id, tracking_number)
);
CREATE INDEX shipments_order ON shipments(order_id);
CREATE INDEX shipments_failed ON shipments(order_id) WHERE upload_state = 'failed';
CREATE TABLE shipment_lines (
    shipment_id {ref} NOT NULL REFERENCES shipments(id),
    order_line_id {ref} NOT NULL REFERENCES order_lines(id),
    quantity INTEGER NOT NULL,
    serial_numbers {text} NOT NULL DEFAULT '[]',
    PRIMARY KEY (shipment_id, order_line_id)
);
CREATE TABLE jobs (
    id {id},
    company_id {ref} NOT NULL REFERENCES companies(id),
    kind {text} NOT NULL,
    status {text} NOT NULL DEFAULT 'Queued',
    priority INTEGER NOT NULL DEFAULT 0,
    params {text} NOT NULL DEFAULT '{{}}',
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 5,
    run_after {text} NOT NULL,
    claimed_by {text},
    heartbeat_at {text},
    created_at {text} NOT NULL,
    started_at {text},
    finished_at {text},
    summary {text},
    progress {text}
);
CREATE UNIQUE INDEX jobs_one_pending ON jobs(company_id, kind)
    WHERE status IN ('Queued', 'Processing');
CREATE INDEX jobs_runnable ON jobs(status, run_after, priority);
CREATE INDEX jobs_company ON jobs(company_id, id);
CREATE INDEX jobs_status_grid ON jobs(status, id);
CREATE INDEX jobs_kind_grid ON jobs(kind, id);
CREATE INDEX jobs_company_kind ON jobs(company_id, kind, status, finished_at);
CREATE INDEX jobs_finished ON jobs(finished_at);
CREATE TABLE job_logs (
    id {id},
    job_id {ref} NOT NULL REFERENCES jobs(id),
    at {text} NOT NULL,
    level {text} NOT NULL,
    message {text} NOT NULL
);
CREATE INDEX job_logs_job ON job_logs(job_id, id);
CREATE TABLE users (
    id {id},
    name {name} NOT NULL UNIQUE,
    role {text} NOT NULL CHECK (role IN ('admin', 'support', 'warehouse', 'read-only')),
    password_hash {text} NOT NULL,
    session_version INTEGER NOT NULL DEFAULT 1,
    created_at {text} NOT NULL,
    last_login_at {text},
    all_companies INTEGER NOT NULL DEFAULT 1,
    disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE user_companies (
    user_id {ref} NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    company_id {ref} NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, company_id)
);
CREATE TABLE login_failures (
    id {id},
    key {text} NOT NULL,
    at {text} NOT NULL
);
CREATE INDEX login_failures_key ON login_failures(key, at);
CREATE TABLE audit_log (
    id {id},
    at {text} NOT NULL,
    actor {text} NOT NULL,
    action {text} NOT NULL,
    company_id {ref} REFERENCES companies(id),
    target {text},
    details {text} NOT NULL DEFAULT '{{}}',
    source {text} NOT NULL DEFAULT 'web' CHECK (source IN ('web', 'cli', 'system'))
);
CREATE INDEX audit_log_company ON audit_log(company_id, id);
CREATE INDEX audit_log_source ON audit_log(source, id);
CREATE TABLE web_secrets (
    name {text} PRIMARY KEY,
    value {text} NOT NULL
)
"""
