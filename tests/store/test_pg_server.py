"""The throwaway PostgreSQL server the store tests and benchmarks run on."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pg_server
import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_each_test_database_is_empty_and_answers_on_loopback(pg_url):
    assert "@127.0.0.1:" in pg_url
    with psycopg.connect(pg_url) as conn:
        tables = conn.execute("SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        assert tables == (0,)
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)


def test_the_server_runs_as_an_unprivileged_user_when_we_are_root(postgres):
    pid = int((postgres.data / "postmaster.pid").read_text().split()[0])
    assert os.stat(f"/proc/{pid}").st_uid != 0


def test_the_command_line_starts_and_stops_a_server_in_a_folder():
    if not pg_server.available():
        pytest.skip("PostgreSQL is not installed")
    folder = tempfile.mkdtemp(prefix="cartpg-cli-")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        started = subprocess.run([sys.executable, "-m", "tests.pg_server", "start", folder], cwd=ROOT, env=env,
                                 capture_output=True, text=True, check=True)  # fmt: skip
        url = started.stdout.strip()
        assert url.startswith("postgresql://cartplugin@127.0.0.1:")
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        subprocess.run([sys.executable, "-m", "tests.pg_server", "stop", folder], cwd=ROOT, env=env, check=True)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=3)
    subprocess.run(["rm", "-rf", folder], check=True)
