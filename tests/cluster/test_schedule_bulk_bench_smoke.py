"""``python -m bench.schedule_bulk`` keeps running: a tiny run, both ways of queuing (figures mean nothing)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_schedule_bulk_bench_runs_and_both_ways_queue_every_due_download(postgres) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTPLUGIN_")}
    done = subprocess.run(
        [sys.executable, "-m", "bench.schedule_bulk", "--companies", "20", "--workers", "0,1", "--threads", "2",
         "--repeats", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "0 busy worker(s): one by one" in done.stdout and "1 busy worker(s): one by one" in done.stdout
