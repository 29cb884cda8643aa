"""A company on a real sandbox, and the CLI as a subprocess, for the reliability suites.

Settings are made in-process (fast); the work that may crash or meet faults runs in a child
process started exactly as staff would start it (``python -m host ...``), with short timeouts
and retries so a fault costs milliseconds, not minutes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import support

import backmarket_pro.plugin
from backmarket_pro.sandbox import Sandbox
from host.channel import plugins
from host.records import companies, orders
from host.store.api import backend
from host.store.db import connect

FAST_ENV = {
    "CARTPLUGIN_BMP_CONNECT_TIMEOUT": "0.5",
    "CARTPLUGIN_BMP_READ_TIMEOUT": "0.8",
    "CARTPLUGIN_BMP_RETRIES": "4",
    "CARTPLUGIN_BMP_BACKOFF_FACTOR": "0.02",
    "CARTPLUGIN_BMP_BACKOFF_JITTER": "0.02",
    "CARTPLUGIN_BMP_BACKOFF_MAX": "0.2",
    "CARTPLUGIN_BMP_RETRY_AFTER_MAX": "1",
    "CARTPLUGIN_BMP_PAGE_SIZE": "10",
    "CARTPLUGIN_DOWNLOAD_BATCH": "10",
    "CARTPLUGIN_UPLOAD_BATCH": "4",
    "CARTPLUGIN_RETRY_BASE_SECONDS": "0.1",
}
UNFULFILLED = ("unfulfilled", "partial")


class Harness:
    def __init__(
        self,
        tmp_path: Path,
        sandbox: Sandbox,
        *,
        company: str = "Reliable GmbH",
        key: str | None = None,
        db: Path | str | None = None,
    ):
        # ``db``: the conftest's db_target (a SQLite file or a PostgreSQL URL); a SQLite file by default
        self.db_target = db if db is not None else tmp_path / "faults.db"
        self.tmp_path = tmp_path
        self.sandbox = sandbox
        self.company = company
        self.key = key or sandbox.api_key
        self.logs: list[str] = []
        db = connect(self.db_target)
        try:
            self.company_id = setup_company(db, company, sandbox.base_url, self.key)
        finally:
            db.close()

    # -- running the CLI ----------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, **FAST_ENV, "CARTPLUGIN_LOG_LEVEL": "DEBUG", **extra}

    def cli(
        self, *args: str, failpoints: str | None = None, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        env = self.env(**({"CARTPLUGIN_FAILPOINTS": failpoints} if failpoints else {}), **(env or {}))
        result = subprocess.run(
            [sys.executable, "-m", "host", "--db", str(self.db_target), *args],
            capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        self.logs += [result.stdout, result.stderr]
        if check and result.returncode != 0:
            raise AssertionError(
                f"cartplugin {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr[-3000:]}"
            )
        return result

    def start_worker(self, interval: float = 0.2, **env: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "host", "--db", str(self.db_target), "worker", "--interval", str(interval),
             "--download-every", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env(**env), stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def stop_worker(self, proc: subprocess.Popen) -> int:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        self.logs += [out, err]
        return proc.returncode

    # -- looking at the outcome ---------------------------------------------------------------

    def host_orders(self) -> list[dict]:
        db = connect(self.db_target)
        try:
            return list(orders.list_orders(db, self.company_id))
        finally:
            db.close()

    def query(self, sql: str, params: dict | None = None) -> list[tuple]:
        """One statement with named parameters (``:name``), on a connection of its own."""
        db = connect(self.db_target)
        try:
            return db.execute(sql, params or {}).fetchall()
        finally:
            db.close()

    def refuse_order(self, source_order_id: str) -> None:
        """A trigger ``refuse_one`` that makes the database refuse this order's insert as a broken
        constraint (SQLite's RAISE(ABORT) is one; PostgreSQL's check_violation), in each backend's SQL."""
        db = connect(self.db_target)
        try:
            if backend(db) == "sqlite":
                db.execute(
                    f"CREATE TRIGGER refuse_one BEFORE INSERT ON orders WHEN NEW.source_order_id = '{source_order_id}' "
                    "BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
                )
                return
            db.execute(
                "CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'disk says no' USING ERRCODE = 'check_violation'; END $$"
            )
            db.execute(
                "CREATE TRIGGER refuse_one BEFORE INSERT ON orders FOR EACH ROW "
                f"WHEN (NEW.source_order_id = '{source_order_id}') EXECUTE FUNCTION refuse_one()"
            )
        finally:
            db.close()

    def channel_unfulfilled_ids(self) -> set[str]:
        return {o["id"] for o in self.sandbox.orders(self.key) if o["fulfillment_status"] in UNFULFILLED}

    def ship(self, count: int, prefix: str = "TRK") -> dict[str, str]:
        """Ship ``count`` imported, not cancelled orders; returns {source order id: tracking}."""
        db = connect(self.db_target)
        shipped = {}
        try:
            candidates = [
                o for o in orders.list_orders(db, self.company_id)
                if o["shipping_status"] == "Unshipped" and not o["channel_cancelled"]
            ]  # fmt: skip
            for order in candidates[:count]:
                tracking = f"{prefix}{order['id']:06d}"
                # a courier with no known number format: the harness's numbers say which round shipped them
                orders.ship_order(db, order["id"], carrier="Private Transporter", tracking_number=tracking)
                shipped[order["source_order_id"]] = tracking
        finally:
            db.close()
        return shipped

    def wait_until(self, predicate, timeout: float = 30.0, step: float = 0.2) -> bool:
        return support.wait_until(predicate, timeout, step)

    # -- the end state every suite checks -----------------------------------------------------

    def assert_exactly_once(self, expected_ids: set[str]) -> None:
        rows = self.query(
            "SELECT source_order_id, COUNT(*) FROM orders WHERE company_id = :company GROUP BY source_order_id",
            {"company": self.company_id},
        )
        assert all(count == 1 for _, count in rows)
        have = {sid for sid, _ in rows}
        assert have == expected_ids, (
            f"missing {sorted(expected_ids - have)[:5]}, extra {sorted(have - expected_ids)[:5]}"
        )
        lines = self.query(
            "SELECT o.source_order_id, COUNT(l.id) FROM orders o JOIN order_lines l ON l.order_id = o.id "
            "WHERE o.company_id = :company GROUP BY o.id", {"company": self.company_id},
        )  # fmt: skip
        by_id = {o["id"]: o for o in self.sandbox.orders(self.key)}
        for sid, count in lines:
            assert count == len(by_id[sid]["line_items"]), f"order {sid} has {count} lines"

    def assert_tracking_delivered(self, shipped: dict[str, str]) -> None:
        by_id = {o["id"]: o for o in self.sandbox.orders(self.key)}
        for sid, tracking in shipped.items():
            numbers = [s["tracking_number"] for s in by_id[sid]["shipments"]]
            assert numbers.count(tracking) == 1, f"order {sid}: {numbers}"
        rows = self.query(
            "SELECT o.source_order_id, o.source_updated_for_shipping, s.upload_state FROM orders o "
            "JOIN shipments s ON s.order_id = o.id WHERE o.company_id = :company", {"company": self.company_id},
        )  # fmt: skip
        assert {sid for sid, _, _ in rows} == set(shipped)
        assert all(flag == 1 and state == "accepted" for _, flag, state in rows), rows

    def assert_jobs_settled(self) -> None:
        rows = self.query("SELECT id, kind, status FROM jobs WHERE company_id = :company", {"company": self.company_id})
        bad = [r for r in rows if r[2] not in ("Completed", "Partial Success", "Queued", "Cancelled")]
        assert not bad, f"jobs not settled: {bad}"
        for job_id, status in self.query(
            "SELECT id, status FROM jobs WHERE attempts > 1 OR status = 'Partial Success'"
        ):
            messages = [
                m
                for (m,) in self.query(
                    "SELECT message FROM job_logs WHERE job_id = :job AND level != 'info'", {"job": job_id}
                )
            ]
            assert messages and all(len(m) > 15 for m in messages), (job_id, status, messages)


def setup_company(db, name: str, base_url: str, key: str) -> int:
    """Website General Settings, Cart General and a passed Test Settings, done in-process."""
    plugins.load_plugins()
    registered = plugins.pm.get_plugin("backmarket_pro") is None
    if registered:
        plugins.register(backmarket_pro.plugin, name="backmarket_pro")
    try:
        company = companies.add_company(db, name)
        companies.update_website_settings(
            db, company, store_plugin="backmarket_pro", allow_order_download=True, allow_tracking_upload=True
        )
        companies.update_cart_settings(
            db, company, {"website_url": base_url, "x_api_key": key, "commission_percent": "5"}
        )
        from host.channel import settings_test

        assert settings_test.test_settings(db, company).ok
        return company.id
    finally:
        if registered:
            plugins.unregister(backmarket_pro.plugin)
