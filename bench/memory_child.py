"""One import in a fresh process, reporting its peak RSS (used by the memory row).

    python -m bench.memory_child BASE_URL API_KEY EXPECTED_ORDERS

Prints one JSON line: peak RSS before and after the import (KiB), the import's seconds, its status.

Peak RSS is ``VmHWM`` of /proc/self/status where there is one: Linux carries ``ru_maxrss`` over
from the forked copy of the parent into the exec'ed child, so a large bench process would show
through it; ``VmHWM`` belongs to this process image alone. Elsewhere, ``ru_maxrss``.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from bench.common import add_company, bench_client_options, new_db_path, run_job, tempdir


def peak_rss_kib() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def main() -> None:
    base_url, api_key, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
    from host.store import db as host_db

    bench_client_options()
    with tempdir() as work:
        db = host_db.connect(new_db_path(Path(work), "memory"))
        company = add_company(db, "Memory Bench", base_url, api_key)
        before = peak_rss_kib()
        started = time.perf_counter()
        status, summary = run_job(db, company.id, "import_orders")
        seconds = time.perf_counter() - started
        peak = peak_rss_kib()
        db.close()
    if summary.get("inserted") != expected:
        raise SystemExit(f"expected {expected} orders imported, got {summary}")
    print(json.dumps({"before_kib": before, "peak_kib": peak, "seconds": seconds, "status": status}))


if __name__ == "__main__":
    main()
