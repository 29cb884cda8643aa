"""Queued Job priority from the CLI (with its Change Log entry) and the worker's removal of old
jobs, kept ``job_retention_days`` (10 by default, or as the config file says)."""

from __future__ import annotations

import pytest
from support import db_digest

from host import clock, config
from host.jobs import queue as jobs
from host.jobs import scheduler
from host.records import audit
from host.store.db import connect, write


def test_staff_raise_a_queued_job_to_high_and_it_is_written_to_the_change_log(run, company, db_target):
    queued = run.json("import-orders", company, "--no-wait")
    assert queued["status"] == "Queued" and queued["priority_name"] == "Normal"
    result = run("jobs", "priority", str(queued["id"]), "high")
    assert result.stdout.strip() == f"Job {queued['id']} Import Orders: priority High (was Normal)"
    shown = run.json("jobs", "show", str(queued["id"]))
    assert shown["priority_name"] == "High" and shown["priority"] > jobs.PRIORITY["test_settings"]
    assert "priority changed from Normal to High by staff" in [line["message"] for line in shown["log"]]
    entry = audit.entries(connect(db_target))[0]
    assert entry["action"] == "Queued Job priority changed" and entry["actor"].startswith("cli:")
    assert entry["target"] == f"job {queued['id']} (Import Orders)"
    assert entry["details"] == {"priority": {"from": "Normal", "to": "High"}}
    assert run.json("jobs", "list")[0]["priority_name"] == "High"


@pytest.mark.parametrize(
    ("level", "words", "code"),
    [("urgent", "'urgent' is not one of 'normal', 'high', 'critical'", 2), ("critical", "only a Queued", 1)],
)
def test_a_bad_priority_or_a_finished_job_is_one_line_and_changes_nothing(run, company, db_target, level, words, code):
    done = run.json("import-orders", company)
    assert done["status"] == "Completed"
    before = db_digest(db_target)
    result = run("jobs", "priority", str(done["id"]), level, ok=False)
    assert result.exit_code == code and words in result.output and result.output.strip().count("\n") == 0
    assert db_digest(db_target) == before


def _age(db_target, job_id: int, days: float, status: str | None = None) -> None:
    db = connect(db_target)
    with write(db):
        if status:
            db.execute("UPDATE jobs SET status = :status WHERE id = :id", {"status": status, "id": job_id})
        db.execute("UPDATE jobs SET finished_at = :at, created_at = :at WHERE id = :id",
                   {"at": clock.now_iso(-days * 86400), "id": job_id})  # fmt: skip
    db.close()


def test_the_worker_deletes_finished_jobs_after_10_days_by_default_never_a_processing_one(
    run, company, db_target, monkeypatch
):
    monkeypatch.delenv("CARTPLUGIN_JOB_RETENTION_DAYS", raising=False)
    assert config.Settings.model_fields["job_retention_days"].default == 10
    ids = [run.json("import-orders", company)["id"] for _ in range(3)]
    _age(db_target, ids[0], 11)
    _age(db_target, ids[1], 9)
    _age(db_target, ids[2], 30, status="Processing")  # a long job, still heart-beating
    db = connect(db_target)
    with write(db):
        db.execute("UPDATE jobs SET heartbeat_at = :at WHERE id = :id", {"at": clock.now_iso(), "id": ids[2]})
    db.close()
    monkeypatch.setattr(scheduler, "_next_purge_at", 0.0)
    run("worker", "--once")
    left = {j["id"] for j in run.json("jobs", "list")}
    assert ids[0] not in left and {ids[1], ids[2]} <= left
    assert (
        connect(db_target).execute("SELECT COUNT(*) FROM job_logs WHERE job_id = :id", {"id": ids[0]}).fetchone()[0]
        == 0
    )


def test_the_retention_is_read_from_the_config_file(run, company, db_target, tmp_path, monkeypatch):
    (tmp_path / "cartplugin.toml").write_text("job_retention_days = 2\n")
    monkeypatch.setenv("CARTPLUGIN_CONFIG", str(tmp_path / "cartplugin.toml"))
    monkeypatch.delenv("CARTPLUGIN_JOB_RETENTION_DAYS", raising=False)
    rows = {r["name"]: r for r in run.json("config", "show")["settings"]}
    assert rows["job_retention_days"]["value"] == 2
    job = run.json("import-orders", company)
    _age(db_target, job["id"], 3)
    monkeypatch.setattr(scheduler, "_next_purge_at", 0.0)
    run("worker", "--once")
    # (the worker's own download job may take the freed id: the job is known by its kind)
    assert "import_orders" not in {j["kind"] for j in run.json("jobs", "list")}
    # once an hour per worker process, not every round
    again = run.json("import-orders", company)
    _age(db_target, again["id"], 3)
    run("worker", "--once")
    assert "import_orders" in {j["kind"] for j in run.json("jobs", "list")}
