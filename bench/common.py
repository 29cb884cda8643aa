"""What every benchmark row needs: the sandbox in its own process, a fresh host, timing helpers."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
CHANNEL = "backmarket_pro"


def median_of(repeats: int, measure: Callable[[int], float]) -> tuple[float, list[float]]:
    """Run ``measure(i)`` ``repeats`` times; the median and every sample."""
    samples = [measure(i) for i in range(repeats)]
    return statistics.median(samples), samples


class SandboxProcess:
    """``python -m bench.sandbox_server`` in a child process, driven through ``/_sandbox/``."""

    def __init__(self, latency: float = 0.0):
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.sandbox_server", "--latency", str(latency)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            env=env,
            text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            self.proc.kill()
            raise RuntimeError("the sandbox process did not start")
        info = json.loads(line)
        self.root_url: str = info["root_url"]
        self.base_url: str = info["base_url"]
        self.api_key: str = info["api_key"]
        self.control = self.root_url + "/_sandbox"
        self.session = requests.Session()
        self.session.trust_env = False
        self._keys = 0

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.session.request(method, self.control + path, json=body, timeout=600)
        response.raise_for_status()
        return response.json()

    def new_account(self, orders: int) -> tuple[str, str]:
        """A fresh seller account holding ``orders`` unfulfilled orders; ``(api_key, seller id)``."""
        self._keys += 1
        key = f"bench-account-{self._keys:06d}-{os.getpid()}"
        seller = self._call("POST", "/accounts", {"api_key": key, "name": f"Bench Seller {self._keys}", "orders": 0})[
            "id"
        ]
        left = orders
        while left > 0:
            n = min(left, 100_000)
            self._call("POST", "/orders", {"n": n, "account": seller})
            left -= n
        return key, seller

    def set_latency(self, seconds: float) -> None:
        self._call("POST", "/faults", {"latency": seconds})

    def clear_requests(self) -> None:
        self._call("DELETE", "/requests")

    def requests_made(self) -> list[dict[str, Any]]:
        return self._call("GET", "/requests")["requests"]

    def cpu_seconds(self) -> float | None:
        """The sandbox process's CPU time so far (user + system), None where /proc cannot say:
        the channel's side of a run that shares the machine's cores with the host."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None


# -- the host, through its own code paths ----------------------------------------------------------


#: requests per window the plugin's client allows itself in the bench: the sandbox enforces no rate
#: limit and the issue's floors are latency floors, so the client's own limiter (180 requests per
#: 10 s per key, to stay under the real API's 200) is lifted; docs/benchmarks.md says what it costs
BENCH_RATE_LIMIT = 1_000_000


def bench_client_options() -> None:
    """The plugin's client as configured (page size 200, timeouts, retries), rate limiter lifted."""
    import dataclasses

    import backmarket_pro.plugin
    from backmarket_pro.client import ClientOptions

    options = ClientOptions.from_env() if hasattr(ClientOptions, "from_env") else ClientOptions()
    if any(f.name == "rate_limit" for f in dataclasses.fields(options)):
        options = dataclasses.replace(options, rate_limit=BENCH_RATE_LIMIT)
    backmarket_pro.plugin.client_options = options


def new_db_path(workdir: Path, name: str) -> Path:
    path = workdir / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return path


def add_company(db: Any, name: str, base_url: str, api_key: str, *, commission: str = "10") -> Any:
    """A company set up the way support staff do it, with Test Settings passed."""
    from host.channel import settings_test
    from host.records import companies

    company = companies.add_company(db, name)
    companies.update_website_settings(
        db, company, store_plugin=CHANNEL, allow_order_download=True, allow_tracking_upload=True
    )
    companies.update_cart_settings(
        db, company, {"website_url": base_url, "x_api_key": api_key, "commission_percent": commission}
    )
    result = settings_test.test_settings(db, company)
    if not result.ok:
        raise RuntimeError(f"Test Settings failed for {name}: {result.message}")
    return companies.get_company(db, company.id)


def run_job(db: Any, company_id: int, kind: str, params: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """Queue a job and run it right here, as ``cartplugin import-orders --wait`` does."""
    from host.jobs import queue as jobs
    from host.jobs import runner

    job, _ = jobs.enqueue(db, company_id, kind, params)
    claimed = jobs.claim(db, runner.worker_id(), job_id=job.id)
    if claimed is None:
        raise RuntimeError(f"could not claim job {job.id}")
    status = runner.execute(db, claimed)
    return status, _summary(db, job.id)


def _summary(db: Any, job_id: int) -> dict[str, Any]:
    row = db.execute("SELECT summary FROM jobs WHERE id = :id", {"id": job_id}).fetchone()
    return json.loads(row[0]) if row and row[0] else {}


def tempdir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="cartplugin-bench-")
