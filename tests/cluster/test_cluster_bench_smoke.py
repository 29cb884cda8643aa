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
    # issue 26, item 6: the CPU floor beside the latency floor, and the re-sent POSTs against their target
    assert "latency floor CPU floor" in done.stdout, done.stdout
    # workers ("2 +F": two words), seconds, requests, req/s, x 1 worker, latency floor, CPU floor, ratio,
    # re-sent, checks
    assert all(len(row) == 10 + row[1:2].count("+F") for row in rows), done.stdout
    assert "kill + restart round: " in done.stdout and " tracking POSTs re-sent, target <= upload concurrency 8 x " in (
        done.stdout
    ), done.stdout
