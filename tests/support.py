"""Small helpers shared by the host tests (a module of its own: two conftest.py files exist)."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from plugin_spec.http import ApiProfile, HttpOptions, JsonApi

API_KEY = "bmp-test-key-7f3a9c2e51d4"


def db_digest(target: Path | str) -> str:
    """What the database holds, to prove a refused command wrote nothing: a SQLite file's bytes,
    or every row of every table of a PostgreSQL database (sequences included)."""
    if isinstance(target, Path):
        return hashlib.sha256(target.read_bytes()).hexdigest()
    import psycopg

    digest = hashlib.sha256()
    with psycopg.connect(target) as conn:
        relations = conn.execute(
            "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S') ORDER BY c.relname"
        ).fetchall()
        for name, kind in relations:
            query = f'SELECT last_value, is_called FROM "{name}"' if kind == "S" else f'SELECT * FROM "{name}"'
            rows = sorted(repr(row) for row in conn.execute(query).fetchall())
            digest.update(f"{name}:{rows!r}".encode())
    return digest.hexdigest()


class Held:
    """A sandbox whose answers after the first ``passes`` wait until ``release()``; every answer
    then takes at least ``latency``, so a job is still running when the test acts.

    ``arrived`` is set once a request is being held. A hold never released ends after 20 s with
    ``timed_out`` set: a test asserts ``not held.timed_out`` rather than passing slowly.
    """

    def __init__(self, sandbox: Any, *, passes: int = 1, latency: float = 0.15):
        self._answers = itertools.count()
        self._passes, self._latency = passes, latency
        self._released = threading.Event()
        self.arrived = threading.Event()
        self.timed_out = False
        self._sandbox = sandbox
        self._sleep = sandbox.sleep  # the sandbox's own: it wakes when the sandbox stops
        sandbox.sleep = self._answer

    def _answer(self, seconds: float) -> None:
        if next(self._answers) >= self._passes:
            self.arrived.set()
            if not self._released.wait(20):
                self.timed_out = True
        self._sleep(max(seconds, self._latency))  # a fault's own delay (slow, trickle) still holds

    def release(self) -> None:
        self._released.set()

    def remove(self) -> None:
        """The sandbox answers as it did before (and at once)."""
        self.release()
        del self._sandbox.sleep


def record_grants(limiter: Any, grants: Any) -> Any:
    """``limiter``, appending ``(before, after)`` to ``grants`` for each slot it takes: the
    ``time.time()`` around the one ``try_take`` that took it (the instant the slot was taken lies
    between the two, however late the thread runs afterwards)."""
    take = limiter.try_take

    def recorded() -> float | None:
        before = time.time()
        pause = take()
        if pause is None:
            grants.append((before, time.time()))
        return pause

    limiter.try_take = recorded
    return limiter


def assert_window_held(grants: list[tuple[float, float]], limit: int, window: float) -> None:
    """No ``limit + 1`` of the ``grants`` (see ``record_grants``) fall within one ``window``.

    For each grant's ``before`` as the start, the ``limit + 1`` grants that end soonest after it
    must not all have ended within ``window``: they would be ``limit + 1`` slots in less than one
    window. A correct limiter never fails this, whatever the scheduler does.
    """
    for start, _ in grants:
        ends = sorted(after for before, after in grants if before >= start)
        if len(ends) > limit:
            assert ends[limit] - start >= window, f"{limit + 1} slots within {ends[limit] - start:.3f} s of {start}"


def wait_until(predicate: Any, timeout: float = 30.0, step: float = 0.05) -> bool:
    """Ask ``predicate()`` until it is true (True) or ``timeout`` seconds pass (its last answer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def in_threads(action: Any, count: int, timeout: float = 30.0) -> None:
    """``action()`` on ``count`` threads at once; returns when all have ended (``timeout`` each)."""
    threads = [threading.Thread(target=action) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)


def assert_a_waiting_request_stops_with_its_job(limiter: Any, within: float) -> None:
    """A request waiting for ``limiter``'s next slot (30 s away) is not sent once its job stops
    (0.2 s later): it raises ``Stopped`` within ``within`` seconds instead of waiting for it."""
    import pytest

    from plugin_spec import stopping

    limiter.acquire()
    flag = threading.Event()
    threading.Timer(0.2, flag.set).start()
    started = time.monotonic()
    with stopping.stop_when(flag.is_set), pytest.raises(stopping.Stopped):
        limiter.acquire()  # the next slot is 30 s away
    assert time.monotonic() - started < within  # long before the slot 30 s away: it did not wait for it


def assert_bucket_held(grants: list[tuple[float, float]], per_second: float, burst: int) -> None:
    """No more of the ``grants`` (see ``record_grants``) in any span than a token bucket allows:
    ``n`` slots taken within ``s`` seconds need ``n <= burst + s * per_second``.

    As ``assert_window_held``: for each grant's ``before`` as the start, the ``n`` grants that
    end soonest after it must span at least ``(n - burst) / per_second``.
    """
    for start, _ in grants:
        ends = sorted(after for before, after in grants if before >= start)
        for n in range(burst + 1, len(ends) + 1):
            needed = (n - burst) / per_second
            assert ends[n - 1] - start >= needed - 1e-3, f"{n} slots within {ends[n - 1] - start:.3f} s of {start}"


class Cli:
    """The real ``cartplugin`` CLI on one database, in this process (click's CliRunner)."""

    def __init__(self, db_target: Path | str):
        self.db_target = db_target
        self.runner = CliRunner()

    def __call__(self, *args: str, ok: bool = True):
        from host.cli.main import cli  # the real `cartplugin` CLI

        result = self.runner.invoke(cli, ["--db", str(self.db_target), *args], catch_exceptions=False)
        if ok and result.exit_code != 0:
            raise AssertionError(f"cartplugin {' '.join(args)} exited {result.exit_code}: {result.output}")
        return result

    def json(self, *args: str):
        return json.loads(self(*args, "--json").stdout)


@contextlib.contextmanager
def registered(plugin: Any, name: str) -> Iterator[Any]:
    """``plugin`` registered with the host's plugin manager for the ``with`` block only."""
    from host.channel import plugins

    plugins.register(plugin, name=name)
    try:
        yield plugin
    finally:
        plugins.unregister(plugin)


#: a JSON API client for the toy sandboxes of the toolkit's tests: quick to give up, no retries
TOY_FAST = HttpOptions(connect_timeout=0.5, read_timeout=0.5, deadline=1.5, retries=0)
TOY_PROFILE = ApiProfile(name="Toy", check_url="Check the URL.", key_name="API key", auth_hint="Check the key.")


def toy_api(server: Any, key: str, options: HttpOptions = TOY_FAST, **more: Any) -> JsonApi:
    """A ``JsonApi`` on a toy sandbox, sending ``key`` as ``x-api-key`` and counting by it."""
    return JsonApi(server.base_url, TOY_PROFILE, options, headers={"x-api-key": key}, limit_key=key, **more)


def ups_tracking(n: int) -> str:
    """A UPS tracking number as UPS issues them (``1Z``, 15 characters, its check digit), one per ``n``."""
    from plugin_spec.tracking import ups_check_digit

    body = f"999AA1{n:09d}"
    return f"1Z{body}{ups_check_digit(body)}"


def fetch_rows(target: Path | str, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
    """The rows of one query on the host database of either backend (named parameters), as tuples."""
    from host.store.db import connect

    db = connect(target, migrate=False, create=False)
    try:
        return [tuple(row) for row in db.execute(sql, params or {}).fetchall()]
    finally:
        db.close()
