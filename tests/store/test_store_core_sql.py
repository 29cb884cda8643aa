"""The store core's SQL, written once: the same answers on both backends, no rewrite on PostgreSQL."""

from __future__ import annotations

import pytest

from host import clock
from host.jobs import queue as jobs
from host.records import secrets
from host.records.companies import add_company
from host.store import pg
from host.store.db import connect, write


def _secret(db, company_id: int, key: str, value: str) -> None:
    with write(db):
        db.execute(
            "INSERT INTO cart_settings (company_id, channel, key, value, is_secret) "
            "VALUES (:company_id, 'backmarket_pro', :key, :value, 1)",
            {"company_id": company_id, "key": key, "value": value},
        )


def test_a_clear_secret_that_starts_like_the_sealed_prefix_in_another_case_is_sealed(store):
    company = add_company(store, "Acme")
    _secret(store, company.id, "x_api_key", "FERNET:looks-sealed-but-is-clear")
    # the prefix is checked exactly on both backends (LIKE ignored case on SQLite, ILIKE on PostgreSQL)
    assert not secrets._sealed_rows_exist(store)
    with write(store):
        assert secrets.seal_clear_rows(store) == 1
    stored = store.execute("SELECT value FROM cart_settings WHERE key = 'x_api_key'").fetchone()[0]
    assert secrets.is_sealed(stored) and secrets.unseal(store, stored) == "FERNET:looks-sealed-but-is-clear"
    assert secrets._sealed_rows_exist(store)


@pytest.fixture
def rewrites(monkeypatch) -> list[str]:
    """The statements PostgreSQL's adapter had to rewrite (``translate`` changing more than a
    ``%`` doubled), from the moment the fixture's list is cleared."""
    seen: list[str] = []
    original = getattr(pg, "translate", None)
    if original is None:  # no rewriting left in the store at all: positional SQL is refused
        return seen

    def watching(sql: str) -> str:
        out = original(sql)
        if out != sql.replace("%", "%%"):
            seen.append(sql)
        return out

    monkeypatch.setattr(pg, "translate", watching)
    return seen


def test_the_job_queue_and_secrets_sql_runs_on_postgresql_without_a_rewrite(pg_url, rewrites, monkeypatch, tmp_path):
    monkeypatch.setenv(secrets.KEY_FILE_ENV, str(tmp_path / "cart.key"))
    db = connect(pg_url)
    try:
        company = add_company(db, "Acme")
        other = add_company(db, "Beta")
        _secret(db, company.id, "x_api_key", "clear")
        rewrites.clear()  # what the records' functions above sent is theirs to convert

        job, created = jobs.enqueue(db, company.id, "import_orders", {"since": None})
        assert created and jobs.enqueue(db, company.id, "import_orders")[0].id == job.id
        claimed = jobs.claim(db, "me:1:1", company_ids=[other.id])
        assert claimed is None
        claimed = jobs.claim(db, "me:1:1", company_ids=[company.id, other.id])
        assert claimed is not None and claimed.id == job.id
        jobs.heartbeat(db, claimed)
        jobs.set_progress(db, claimed, {"pages": 1, "orders": 2})
        jobs.log(db, claimed.id, "info", "50% done")
        jobs.requeue_now(db, claimed, "stopping")
        assert jobs.get_job(db, job.id).attempts == 0
        claimed = jobs.claim(db, "me:1:1", job_id=job.id)
        assert claimed is not None
        assert jobs.retry_later(db, claimed, "the channel is busy")
        queued, _ = jobs.enqueue(db, other.id, "download_orders")
        jobs.set_priority(db, queued.id, "High")
        jobs.cancel(db, queued.id)
        done, _, mine = jobs.enqueue_and_claim(db, other.id, "test_settings", "me:1:2")
        assert mine is not None
        jobs.finish(db, mine, jobs.COMPLETED, {"ok": True})
        assert jobs.show_job(db, done.id)["status"] == jobs.COMPLETED
        assert len(jobs.list_jobs(db, company_id=other.id, limit=5)) == 2
        assert jobs.recover_orphans(db) == []
        with write(db):
            db.execute("UPDATE jobs SET finished_at = :old", {"old": clock.now_iso(-30 * 86400)})
        assert jobs.purge_finished(db, 10) == 2
        with write(db):
            assert secrets.seal_clear_rows(db) == 1
        assert secrets._sealed_rows_exist(db)
    finally:
        db.close()
    assert rewrites == []
