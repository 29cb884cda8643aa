"""`cartplugin install` / `uninstall` in a throwaway venv, and `cartplugin db backup` / `status`."""

from __future__ import annotations

import json
import os
import site
import sqlite3
import subprocess
import venv
from pathlib import Path

import pytest

from host.cli.newplugin import generate


def _throwaway_venv(tmp_path: Path) -> Path:
    """A venv that sees this environment's packages (the host, pip, setuptools) but installs into itself."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    (Path(purelib) / "host-env.pth").write_text(f"import site; site.addsitedir({site.getsitepackages()[0]!r})\n")
    return python


def _env(tmp_path: Path) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CARTPLUGIN_") and k != "PYTHONPATH"}
    # no dependencies fetched: the host and its packages come from this environment
    return {**environment, "PIP_NO_DEPS": "1", "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
            "CARTPLUGIN_DB": str(tmp_path / "cart.db")}  # fmt: skip


def test_install_takes_several_editable_paths_and_uninstall_refuses_a_plugin_in_use(tmp_path):
    first, second = generate("acme_shop", tmp_path), generate("zeta_mart", tmp_path)
    python = _throwaway_venv(tmp_path)
    env = _env(tmp_path)

    def cartplugin(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([python, "-m", "host", *args], capture_output=True, text=True, timeout=300,
                              cwd=tmp_path, env=env, input=stdin if stdin is not None else "")  # fmt: skip

    installed = cartplugin("install", "-e", str(first), "-e", str(second))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    names = {row["name"] for row in json.loads(cartplugin("plugins", "--json").stdout)}
    assert {"acme_shop", "zeta_mart"} <= names

    assert cartplugin("companies", "add", "Acme").returncode == 0
    assert cartplugin("website-settings", "Acme", "--store-plugin", "acme_shop").returncode == 0
    refused = cartplugin("uninstall", "-y", "cartplugin-acme-shop")
    assert refused.returncode == 1 and refused.stderr.startswith("Error: companies sell through this plugin: 'Acme'")
    assert "Traceback" not in refused.stderr
    assert "acme_shop" in {row["name"] for row in json.loads(cartplugin("plugins", "--json").stdout)}

    no_terminal = cartplugin("uninstall", "--force", "cartplugin-acme-shop")  # stdin is not a terminal
    assert no_terminal.returncode == 1 and "Traceback" not in no_terminal.stderr
    assert no_terminal.stderr.splitlines()[-1].startswith("Error: uninstall asks before it removes anything")

    forced = cartplugin("uninstall", "--force", "-y", "cartplugin-acme-shop", "cartplugin-zeta-mart")
    assert forced.returncode == 0, forced.stderr
    assert "'Acme' (acme_shop) will show 'plugin missing'" in forced.stderr
    assert not {"acme_shop", "zeta_mart"} & {row["name"] for row in json.loads(cartplugin("plugins", "--json").stdout)}
    listed = cartplugin("companies", "list")
    assert "plugin missing" in listed.stdout, listed.stdout + listed.stderr


def test_install_without_a_package_or_with_a_missing_folder_is_one_error_line(run):
    for args, expected in ((["install"], "name a package"), (["install", "-e", "/no/such/dir"], "no such folder")):
        result = run(*args, ok=False)
        assert result.exit_code == 1 and result.stderr.startswith("Error: ") and expected in result.stderr


@pytest.mark.sqlite_only("db backup copies a SQLite file; PostgreSQL's points to pg_dump: tests/store/test_db_copy.py")
def test_db_backup_copies_a_database_in_use_and_status_checks_it(company, run, db_target, tmp_path):
    run("import-orders", company)
    reader = sqlite3.connect(db_target)  # another process holding the database open
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM orders").fetchone()
    try:
        result = run("db", "backup", str(tmp_path / "backup.db"))
    finally:
        reader.close()
    assert "Backed up" in result.stdout
    copy = sqlite3.connect(tmp_path / "backup.db")
    assert copy.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == len(run.json("orders", "list"))
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    copy.close()
    assert (tmp_path / "backup.db").stat().st_mode & 0o077 == 0  # it holds the same secrets
    again = run("db", "backup", str(tmp_path / "backup.db"), ok=False)
    assert again.exit_code == 1 and "pass --force" in again.stderr
    # the x-api-key in the copy is sealed with the key file: the backup says so, and names it
    key_file = db_target.with_name(db_target.stem + ".key")
    assert f"encrypted with {key_file}: back that file up too" in result.stdout

    status = run.json("db", "status")
    assert status["schema_version"] == status["schema_expected"] and status["integrity"] == "ok"
    assert status["path"] == str(db_target) and status["size_bytes"] > 0 and status["companies"] == 1
    text = run("db", "status").stdout
    assert "Schema version:" in text and "Integrity: ok" in text


@pytest.mark.sqlite_only("db backup copies a SQLite file; PostgreSQL's points to pg_dump: tests/store/test_db_copy.py")
def test_db_backup_with_key_to_gives_a_copy_whose_secrets_can_be_read(company, run, db_target, tmp_path, monkeypatch):
    from support import Cli

    saved = tmp_path / "saved"
    saved.mkdir()
    result = run("db", "backup", str(saved / "backup.db"), "--key-to", str(saved / "backup.key"))
    assert f"Copied the key file {db_target.with_name(db_target.stem + '.key')}" in result.stdout
    assert (saved / "backup.key").read_bytes() == db_target.with_name(db_target.stem + ".key").read_bytes()
    assert (saved / "backup.key").stat().st_mode & 0o077 == 0
    db_target.unlink()
    db_target.with_name(db_target.stem + ".key").unlink()  # the original is lost: the copy and its key remain
    restored = Cli(saved / "backup.db")
    assert "Connection established" in restored("test-settings", company).stdout  # the key was read back
    refused = run("db", "backup", str(saved / "other.db"), "--key-to", str(saved / "backup.key"), ok=False)
    assert refused.exit_code == 1 and "pass --force" in refused.stderr and not (saved / "other.db").exists()
