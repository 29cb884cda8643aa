"""`cartplugin new-plugin` writes a package that installs into a fresh venv and shows up in
`cartplugin plugins`; its stubs say what is not implemented yet."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from host.errors import HostError
from host.newplugin import generate, names


def test_names_follow_one_rule():
    assert names("Acme-Shop") == {
        "channel": "acme_shop", "package": "cartplugin_acme_shop", "dist": "cartplugin-acme-shop",
        "title": "Acme Shop", "model": "AcmeShopSettings", "command": "acme-shop",
    }  # fmt: skip
    for bad in ("", "1shop", "shop!", "x"):
        with pytest.raises(HostError):
            names(bad)


def test_the_command_writes_the_package_and_refuses_to_overwrite(run, tmp_path):
    out = run("new-plugin", "acme-shop", "--directory", str(tmp_path)).output
    root = tmp_path / "cartplugin-acme-shop"
    assert str(root) in out
    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert files == {"pyproject.toml", "README.md", "cartplugin_acme_shop/__init__.py", "cartplugin_acme_shop/settings.py",
                     "cartplugin_acme_shop/plugin.py", "tests/test_acme_shop_conformance.py"}  # fmt: skip
    assert '[project.entry-points.cartplugin]\nacme_shop = "cartplugin_acme_shop.plugin"' in (root / "pyproject.toml").read_text()
    again = run("new-plugin", "acme-shop", "--directory", str(tmp_path), ok=False)
    assert again.exit_code != 0 and "already exists" in again.output


def test_generated_plugin_installs_into_a_fresh_venv_and_is_listed(tmp_path):
    root = generate("acme_shop", tmp_path)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)  # pip comes from this environment (pip --python)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    # the host and its dependencies come from this environment, as --system-site-packages would
    (Path(purelib) / "host-env.pth").write_text(f"import site; site.addsitedir({site.getsitepackages()[0]!r})\n")
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
         "--disable-pip-version-check", "--no-input", "-e", str(root)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stdout + pip.stderr
    environment = {k: v for k, v in os.environ.items() if k not in ("CARTPLUGIN_LOAD_PLUGINS", "PYTHONPATH")}
    listed = subprocess.run([python, "-m", "host", "plugins", "--json"], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path, env=environment)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["acme_shop"]["channel"] == "acme_shop"
    assert rows["acme_shop"]["display_name"] == "Acme Shop WebsiteCartPlugin"
    assert "cartplugin_download_orders" in rows["acme_shop"]["hooks"]
    # the stubs fail with a message that says what to do, through the host's own error path
    stub = subprocess.run(
        [python, "-c", "from cartplugin_acme_shop import plugin\n"
         "try:\n    plugin.cartplugin_test_settings(settings=None)\nexcept Exception as e:\n    print(type(e).__mro__, e)"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert "ChannelError" in stub.stdout and "not implemented yet" in stub.stdout, stub.stdout + stub.stderr
