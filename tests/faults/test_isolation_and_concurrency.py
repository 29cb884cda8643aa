"""Two companies never mix; two workers at once never double-import or double-upload."""

from __future__ import annotations

import subprocess
import sys

from fault_harness import UNFULFILLED, Harness, setup_company

from backmarket_pro.sandbox import Sandbox
from host.store.db import connect

KEY_A = "company-a-key-11aa22bb"
KEY_B = "company-b-key-33cc44dd"


def test_two_companies_with_two_keys_never_mix(tmp_path, db_target):
    with Sandbox(api_key=KEY_A, orders=25, seed=1) as channel:
        channel.add_account(KEY_B, name="Zweiter Händler GmbH", orders=25, seed=2)
        a = Harness(tmp_path, channel, company="A GmbH", key=KEY_A, db=db_target)
        db = connect(a.db_target)
        b_id = setup_company(db, "B SARL", channel.base_url, KEY_B)
        db.close()
        a.cli("worker", "--once", "--download-every", "0")
        ids = {
            company_id: {
                sid
                for (sid,) in a.query(
                    "SELECT source_order_id FROM orders WHERE company_id = :company", {"company": company_id}
                )
            }
            for company_id in (a.company_id, b_id)
        }
        for company_id, key in ((a.company_id, KEY_A), (b_id, KEY_B)):
            assert ids[company_id] == {o["id"] for o in channel.orders(key) if o["fulfillment_status"] in UNFULFILLED}
        assert ids[a.company_id] and not ids[a.company_id] & ids[b_id]
        cursors = dict(a.query("SELECT company_id, value FROM cursors WHERE name = 'orders_updated_at'"))
        for company_id, key in ((a.company_id, KEY_A), (b_id, KEY_B)):
            newest = max(o["updated_at"] for o in channel.orders(key) if o["id"] in ids[company_id])
            assert cursors[company_id][:19] == newest[:19]
        # ship one order of each company: each tracking goes to its own account, with its own key
        shipped_a = a.ship(2)
        b_shipped = Harness.__new__(Harness)
        b_shipped.__dict__.update(a.__dict__, company_id=b_id, key=KEY_B)
        shipped_b = b_shipped.ship(2, prefix="BTRK")
        channel.clear_request_log()
        a.cli("worker", "--once", "--download-every", "3600")
        posts = [r for r in channel.request_log() if r["method"] == "POST"]
        assert len(posts) == 4
        accounts = {"seller-1": set(shipped_a), "seller-2": set(shipped_b)}
        for post in posts:
            assert post["key_ok"] and any(sid in post["path"] for sid in accounts[post["account"]]), post
        a.assert_tracking_delivered(shipped_a)
        b_shipped.assert_tracking_delivered(shipped_b)
        kinds = a.query("SELECT company_id, kind, COUNT(*) FROM jobs GROUP BY company_id, kind")
        assert {(c, k) for c, k, _ in kinds} == {(c, k) for c in (a.company_id, b_id) for k in
                                                 ("download_orders", "upload_tracking")}  # fmt: skip


def test_two_workers_started_at_once_do_not_double_import_or_upload(tmp_path, db_target):
    with Sandbox(api_key=KEY_A, orders=30, seed=8) as channel:
        keys = [KEY_A] + [f"worker-race-key-{n:04d}" for n in range(1, 4)]
        for n, key in enumerate(keys[1:], start=2):
            channel.add_account(key, name=f"Seller {n}", orders=30, seed=n * 10)
        h = Harness(tmp_path, channel, company="Company 0", key=KEY_A, db=db_target)
        db = connect(h.db_target)
        company_ids = [h.company_id] + [
            setup_company(db, f"Company {n}", channel.base_url, k) for n, k in enumerate(keys[1:], 1)
        ]
        db.close()
        h.cli("worker", "--once", "--download-every", "3600")  # import everything once
        shipped = {}
        for company_id, key in zip(company_ids, keys, strict=True):
            view = Harness.__new__(Harness)
            view.__dict__.update(h.__dict__, company_id=company_id, key=key)
            shipped[company_id] = (view, view.ship(5, prefix=f"C{company_id}T"))
        for key in keys:
            channel.add_orders(4, api_key=key)
        db = connect(h.db_target)
        db.execute("UPDATE companies SET next_download_at = '2000-01-01T00:00:00.000000Z'")  # all due now
        db.close()
        channel.clear_request_log()
        command = [sys.executable, "-m", "host", "--db", str(h.db_target), "worker", "--once", "--download-every", "0"]
        procs = [subprocess.Popen(command, env=h.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]  # fmt: skip
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err[-2000:]
        statuses = [r["status"] for r in channel.request_log() if r["method"] == "POST"]
        assert statuses.count(201) == 20 and 409 not in statuses  # no shipment sent twice
        for company_id, key in zip(company_ids, keys, strict=True):
            view, sent = shipped[company_id]
            expected = {o["id"] for o in channel.orders(key) if o["fulfillment_status"] in UNFULFILLED} | set(sent)
            view.assert_exactly_once(expected)
            view.assert_tracking_delivered(sent)
