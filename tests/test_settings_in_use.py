"""Settings are read where they are used: a value from ``--config FILE`` reaches the scheduler, the
job runner and the queue during the command, and stops applying when the command ends."""

from __future__ import annotations

from host import clock, config
from host.jobs import scheduler
from host.store.db import connect, write


def _age(db_target, job_id: int, days: float) -> None:
    db = connect(db_target)
    with write(db):
        db.execute("UPDATE jobs SET finished_at = :at, created_at = :at WHERE id = :id",
                   {"at": clock.now_iso(-days * 86400), "id": job_id})  # fmt: skip
    db.close()


def test_the_retention_in_a_config_file_named_by_the_flag_is_what_the_worker_purges_by(
    run, company, db_target, tmp_path, monkeypatch
):
    (tmp_path / "short.toml").write_text("job_retention_days = 2\n")
    monkeypatch.delenv("CARTPLUGIN_CONFIG", raising=False)
    monkeypatch.delenv("CARTPLUGIN_JOB_RETENTION_DAYS", raising=False)
    job = run.json("import-orders", company)
    _age(db_target, job["id"], 3)
    monkeypatch.setattr(scheduler, "_next_purge_at", 0.0)
    run("--config", str(tmp_path / "short.toml"), "worker", "--once")
    # (the worker's own download job may take the freed id: the job is known by its kind)
    assert "import_orders" not in {j["kind"] for j in run.json("jobs", "list")}


def test_the_settings_a_command_used_are_not_left_in_force_after_it(run, company, tmp_path, monkeypatch):
    (tmp_path / "seven.toml").write_text("recent_days = 7\n")
    monkeypatch.delenv("CARTPLUGIN_CONFIG", raising=False)
    monkeypatch.delenv("CARTPLUGIN_RECENT_DAYS", raising=False)
    run("--config", str(tmp_path / "seven.toml"), "jobs", "list")
    assert config.current().recent_days == 30
    previous = config.use(config.Settings(recent_days=12))
    try:
        assert config.current().recent_days == 12
    finally:
        config.use(previous)


def test_settings_loaded_on_several_threads_at_once_each_keep_their_own_config_file(tmp_path, monkeypatch):
    """Job threads read the settings too: one thread's load must not clear another's file values."""
    import sys
    import threading

    from host import config

    monkeypatch.delenv("CARTPLUGIN_CONFIG", raising=False)
    named = tmp_path / "named.toml"
    named.write_text("job_retention_days = 5\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # no config file where the unnamed loads look
    seen: list[int] = []
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, so a race shows

    def with_file() -> None:
        for _ in range(150):
            seen.append(config.load(named).settings.job_retention_days)

    def without_file() -> None:
        for _ in range(150):
            config.load(None)

    try:
        threads = [threading.Thread(target=f) for f in (with_file, without_file) * 3]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(previous)
    assert len(seen) == 450 and set(seen) == {5}


def test_outside_a_command_the_settings_are_read_again_only_when_a_source_changed(tmp_path, monkeypatch):
    """A job asks for settings several times; outside a command (a job process of a program that
    embeds the host, the bench) each ask read the sources with pydantic-settings, a few
    milliseconds each. The answer is kept until a variable, the config file or the directory
    changes."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CARTPLUGIN_RECENT_DAYS", raising=False)
    monkeypatch.setenv("CARTPLUGIN_CONFIG", str(tmp_path / "cartplugin.toml"))
    (tmp_path / "cartplugin.toml").write_text("recent_days = 7\n")
    first = config.current()
    assert first.recent_days == 7 and config.current() is first  # nothing changed: not read again
    (tmp_path / "cartplugin.toml").write_text("recent_days = 8\n")  # same size, same clock tick likely
    assert config.current().recent_days == 8
    monkeypatch.setenv("CARTPLUGIN_RECENT_DAYS", "9")
    assert config.current().recent_days == 9
    monkeypatch.setenv("CARTPLUGIN_DB", "relative.db")
    here = config.current().db
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert config.current().db != here and config.current().db.parent == tmp_path / "elsewhere"
