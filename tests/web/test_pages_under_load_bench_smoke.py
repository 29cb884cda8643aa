"""The pages-under-load bench row keeps running (small sizes): `cartplugin serve` and a
`cartplugin worker` process on SQLite and PostgreSQL, signed-in clients, no page error.

Its times at these sizes mean nothing (the verdict is not checked); only that every part of the
row still works and that no page saw a 5xx, "database is locked" or a lost session meanwhile.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pg_server

ROOT = Path(__file__).resolve().parents[2]


def test_bench_quick_pages_row_runs_on_both_backends_and_no_page_sees_an_error() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTPLUGIN_")}
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--rows", "pages"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    row = next(line for line in done.stdout.splitlines() if "Pages while the worker writes" in line)
    measured = row.split("|")[3]  # per backend: "<backend> orders N ms, jobs N ms, E errors"
    backends = ["SQLite", "PostgreSQL"] if pg_server.available() else ["SQLite"]
    assert [part.split()[0] for part in measured.split(";")] == backends, done.stdout
    assert all(part.strip().endswith(" 0 errors") for part in measured.split(";")), done.stdout
    assert "import of 600 orders took" in done.stdout, done.stdout
