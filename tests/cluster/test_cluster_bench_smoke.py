"""``python -m bench.scale_out`` keeps running: a tiny run with its fault round (figures mean nothing)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_scale_out_bench_runs_and_its_checks_hold(postgres) -> None:  # postgres: skipped without PostgreSQL
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTPLUGIN_")}
    done = subprocess.run(
        [sys.executable, "-m", "bench.scale_out", "--quick", "--companies", "5", "--workers", "1",
         "--fault-workers", "2"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "faults: SIGKILLed worker 0" in done.stdout and "faults: restarted PostgreSQL" in done.stdout
    assert "sandbox state: 20 orders with exactly one shipment, 0 with another count" in done.stdout
    rows = [line.split() for line in done.stdout.splitlines() if line.strip().endswith(("ok", "FAILED"))]
    assert [row[-1] for row in rows] == ["ok", "ok"], done.stdout
