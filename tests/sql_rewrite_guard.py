"""A pytest plugin that fails the run when any statement had to be rewritten for PostgreSQL.

``host.store.pg.translate`` rewrites SQL still written with ``?`` (placeholders, ``IS ?``, scalar
``MAX``/``MIN``, ``LIKE`` into ``ILIKE``, ``INDEXED BY``). Once every module writes its SQL once,
with named parameters, nothing reaches it; this proves it over a whole run, in this process
(CliRunner commands included; forked job processes and subprocesses are not watched):

    CARTPLUGIN_TEST_DB_BACKEND=postgresql .venv/bin/python -m pytest -p tests.sql_rewrite_guard tests/store

Each rewritten statement is listed with the first test that sent it.
"""

from __future__ import annotations

from typing import Any

import pytest

from host.store import pg

#: each rewritten statement and the first test that sent it
REWRITTEN: dict[str, str] = {}
_current = {"test": "(outside a test)"}


def pytest_configure(config: Any) -> None:
    original = pg.translate

    def watching(sql: str) -> str:
        out = original(sql)
        if out != sql.replace("%", "%%"):  # more than psycopg's doubled percent sign
            REWRITTEN.setdefault(sql, _current["test"])
        return out

    pg.translate = watching  # type: ignore[assignment]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: Any, nextitem: Any) -> Any:
    _current["test"] = item.nodeid
    yield


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REWRITTEN:
        terminalreporter.section(f"{len(REWRITTEN)} statement(s) rewritten for PostgreSQL")
        for sql, test in sorted(REWRITTEN.items(), key=lambda item: item[1]):
            terminalreporter.write_line(f"{test}: {' '.join(sql.split())[:160]}")


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    if REWRITTEN and exitstatus == 0:
        session.exitstatus = 1
