"""A PostgreSQL host database with the engine installed, a sandbox company, and cluster workers
started as staff start them (``python -m host --db postgresql://... worker``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backmarket_pro.sandbox import Sandbox
from host.jobs.cluster import schema
from host.store.db import connect

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "faults"))
from fault_harness import FAST_ENV, setup_company  # noqa: E402

KEY = "bmp-cluster-key-51d47f3a9c2e"
#: a dead worker is noticed after this many seconds in these tests (30 in production)
STALLED = "3"


@pytest.fixture
def cluster_url(pg_url: str, tmp_path: Path, monkeypatch) -> str:
    """A migrated PostgreSQL host database with procrastinate's schema and the bridge."""
    monkeypatch.setenv("CARTPLUGIN_SECRET_KEY_FILE", str(tmp_path / "cluster.key"))
    connect(pg_url).close()
    schema.ensure(pg_url)
    return pg_url


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(api_key=KEY, orders=12, seed=3) as server:
        yield server


@pytest.fixture
def company_id(cluster_url: str, sandbox: Sandbox) -> int:
    db = connect(cluster_url)
    try:
        return setup_company(db, "Cluster GmbH", sandbox.base_url, KEY)
    finally:
        db.close()


class Worker:
    """One ``cartplugin worker`` process; its output is collected as it comes."""

    def __init__(self, url: str, *, interval: float = 0.3, env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "host", "--db", url, "worker", "--interval", str(interval), "--download-every",
             "3600", "--workers", "2"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
            env={**os.environ, **FAST_ENV, "CARTPLUGIN_CLUSTER_STALLED_SECONDS": STALLED, **(env or {})},
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self._reader.join(5)
        return code


@pytest.fixture
def start_worker(cluster_url: str) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(**kwargs) -> Worker:
        worker = Worker(cluster_url, **kwargs)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            worker.stop(signal.SIGKILL)
