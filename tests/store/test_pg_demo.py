"""The demo (`cartplugin backmarket-pro demo`, what `make demo` runs) on PostgreSQL, unchanged."""

from __future__ import annotations

import re
import subprocess
import sys

import psycopg


def test_the_demo_runs_on_a_postgresql_database_to_the_same_outcome(pg_url, tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "host", "backmarket-pro", "demo", "--orders", "12", "--db", pg_url],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = result.stdout
    imported = re.search(r"^(\d+) orders imported$", out, re.MULTILINE)
    assert imported and int(imported.group(1)) > 0, out
    assert re.search(r"^  tracking accepted by channel:\s+2 of 2$", out, re.MULTILINE), out
    assert re.search(r"^  Source Updated for Shipping:\s+2$", out, re.MULTILINE), out
    # the orders are in PostgreSQL, not in a file beside it
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT count(*), sum(source_updated_for_shipping) FROM orders").fetchone()
    assert row is not None and row[0] == int(imported.group(1)) and row[1] == 2
    assert not list(tmp_path.glob("*.db"))
