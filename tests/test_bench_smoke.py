"""The benchmarks must keep running: ``python -m bench --quick`` end to end, every row, small sizes.

The figures of a quick run mean nothing (too small, too noisy); this only proves that each
row's code path (sandbox process, import job, pool, upload, memory child, tick) still works.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_quick_prints_every_row() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTPLUGIN_")}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    numbers = [*range(1, 8), 9]  # 8 (web pages) runs only when asked for
    assert len(table) == 1 + len(numbers), done.stdout  # header + one row per benchmark
    for number in numbers:
        assert any(line.startswith(f"| {number} ") for line in table), done.stdout
    assert "EXPLAIN QUERY PLAN" in done.stdout
    # row 1's floor writes into the host's own schema; row 2's CPU part is row 1's host CPU;
    # row 9's floor is the listing's pages at its latency, one request at a time (next links)
    assert "into the host's own schema" in done.stdout
    assert "row 1's host CPU" in done.stdout
    # row 2 says whether the CPU it spent leaves its target within reach (with the sandbox's CPU,
    # read from /proc where there is one)
    if "the sandbox's CPU during the drain" in done.stdout:
        assert "lower bound of this run: the CPU it spent (host + sandbox)" in done.stdout
    assert "pages (the bare loop's, page size 200) x 20 ms / 1 at once" in done.stdout
