"""docs/operations.md is followed for real, and the files in deploy/ name real commands."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import site
import sqlite3
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from click.testing import CliRunner

from host.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "operations.md"
UNITS = sorted((ROOT / "deploy").glob("*.service"))


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)


def _venv_seeing_this_environment(env_dir: Path) -> None:
    """A venv with its own pip whose dependencies come from this environment (no download)."""
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    (Path(purelib) / "zz-host-env.pth").write_text(f"import site; site.addsitedir({site.getsitepackages()[0]!r})\n")


def test_an_operator_following_operations_md_gets_a_configured_worker_a_backup_and_an_upgrade(tmp_path):
    checkout = tmp_path / "checkout"
    shutil.copytree(
        ROOT, checkout, ignore=shutil.ignore_patterns(".venv", ".git", "*.db", "*.egg-info", "build", "__pycache__")
    )
    folders = {"VENV": tmp_path / "venv", "STATE": tmp_path / "state", "ETC": tmp_path / "etc"}
    _venv_seeing_this_environment(folders["VENV"])
    script = "set -euo pipefail\n" + "\n".join(_blocks("sh"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTPLUGIN_") and k != "PYTHONPATH"}
    env.update({k: str(v) for k, v in folders.items()})
    env.update({"PIP_NO_DEPS": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    result = subprocess.run(["bash", "-c", script], cwd=checkout, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "backmarket_pro" in out  # cartplugin plugins
    assert str(folders["STATE"] / "cartplugin.db") in out  # config show: the database from the file
    assert "Integrity: ok" in out and out.count("tick: queued") == 2  # worker --once, before and after the upgrade
    backups = sorted(p.name for p in folders["STATE"].glob("*.db") if p.name != "cartplugin.db")
    assert len(backups) == 2 and "before-upgrade.db" in backups
    with sqlite3.connect(folders["STATE"] / "before-upgrade.db") as copy:
        assert copy.execute("SELECT name FROM companies").fetchall() == [("Acme Refurb",)]


def test_the_root_commands_of_operations_md_name_files_that_exist():
    commands = [line.removeprefix("# ") for block in _blocks("console") for line in block.splitlines()]
    assert any(c.startswith("systemctl enable --now cartplugin-worker.service") for c in commands)
    for command in commands:
        for word in shlex.split(command):
            if word.startswith("deploy/"):
                assert (ROOT / word).is_file(), word
            if word.endswith(".service"):
                assert (ROOT / "deploy" / Path(word).name).is_file(), word


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_each_systemd_unit_starts_a_real_cartplugin_command(unit, tmp_path):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(unit)
    assert {"Unit", "Service", "Install"} <= set(parser.sections())
    words = shlex.split(parser["Service"]["ExecStart"])
    assert words[0] == "/opt/cartplugin/venv/bin/cartplugin"  # where operations.md installs it
    assert parser["Service"]["Environment"] == "CARTPLUGIN_CONFIG=/etc/cartplugin/config.toml"
    # the command and its options exist: --help parses everything before it
    result = CliRunner().invoke(cli, [*words[1:], "--help"])
    assert result.exit_code == 0, result.output
    if shutil.which("systemd-analyze"):
        # verify the unit with ExecStart pointing at this environment's cartplugin
        local = tmp_path / unit.name
        local.write_text(
            unit.read_text().replace(
                "/opt/cartplugin/venv/bin/cartplugin", shutil.which("cartplugin") or sys.executable
            )
        )
        check = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True, text=True, timeout=60)
        problems = [line for line in check.stderr.splitlines() if unit.name in line or "Unknown" in line]
        assert check.returncode == 0 or not problems, check.stderr


def test_the_container_file_installs_what_it_runs():
    text = (ROOT / "deploy" / "Containerfile").read_text()
    for source in re.findall(r"^COPY (.+) \S+$", text, flags=re.M):
        for path in source.split():
            assert (ROOT / path).exists(), path
    assert 'ENTRYPOINT ["/opt/cartplugin/venv/bin/cartplugin"]' in text and 'CMD ["worker"]' in text
    assert "CARTPLUGIN_CONFIG=/etc/cartplugin/config.toml" in text


def test_every_setting_is_in_the_table_of_operations_md_with_its_variable():
    from host.config import Settings

    text = DOC.read_text()
    for name in Settings.model_fields:
        assert f"`{name}`" in text and f"`CARTPLUGIN_{name.upper()}`" in text, name


def test_the_shipped_config_file_is_valid_and_serves_behind_https(monkeypatch):
    from host import config

    monkeypatch.setattr(config, "_file_values", {})  # restored after the test: no other test sees this file
    loaded = config.load(str(ROOT / "deploy" / "config.toml")).settings
    assert loaded.web_host == "127.0.0.1" and loaded.web_secure_cookies and loaded.web_trusted_proxy == "127.0.0.1"
