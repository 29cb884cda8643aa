"""The web admin's bench row keeps running and its pages keep going through indexes (small sizes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_quick_web_row_runs_and_every_page_query_uses_an_index() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTPLUGIN_")}
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--rows", "web"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    row = next(line for line in done.stdout.splitlines() if line.startswith("| 8 "))
    assert row.rstrip().endswith("| pass   |"), done.stdout
    assert "EXPLAIN QUERY PLAN /orders?company=7 page: " in done.stdout
    assert "NOT INDEXED" not in done.stdout
    # a search on part of a channel order id goes through the trigram index, not a scan
    part = next(line for line in done.stdout.splitlines() if "EXPLAIN QUERY PLAN /orders?q=7-123 page: " in line)
    assert "orders_id_search VIRTUAL TABLE INDEX" in part, part
    company_part = next(line for line in done.stdout.splitlines() if "/orders?company=7&q=123 COUNT: " in line)
    assert "orders_id_search VIRTUAL TABLE INDEX" in company_part, company_part
