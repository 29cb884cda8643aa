"""`cartplugin new-plugin` writes a package built on the channel toolkit that installs into a
fresh venv, shows up in `cartplugin plugins` and passes the conformance kit on its sandbox."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import urllib.request
import venv
from pathlib import Path

import pytest

from host.errors import HostError
from host.newplugin import generate, names


def test_names_follow_one_rule():
    assert names("Acme-Shop") == {
        "channel": "acme_shop", "package": "cartplugin_acme_shop", "dist": "cartplugin-acme-shop",
        "title": "Acme Shop", "model": "AcmeShopSettings", "command": "acme-shop", "upper": "ACME_SHOP",
    }  # fmt: skip
    for bad in ("", "1shop", "shop!", "x"):
        with pytest.raises(HostError):
            names(bad)


def test_the_command_writes_the_package_and_refuses_to_overwrite(run, tmp_path):
    out = run("new-plugin", "acme-shop", "--directory", str(tmp_path)).output
    root = tmp_path / "cartplugin-acme-shop"
    assert str(root) in out
    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    package = {
        f"cartplugin_acme_shop/{name}.py" for name in ("__init__", "settings", "client", "mapping", "plugin", "sandbox")
    }
    assert files == {"pyproject.toml", "README.md", "tests/test_acme_shop_conformance.py", *package}
    assert (
        '[project.entry-points.cartplugin]\nacme_shop = "cartplugin_acme_shop.plugin"'
        in (root / "pyproject.toml").read_text()
    )
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
    # the generated plugin, built on the channel toolkit, passes the whole conformance kit
    # (including the checks that 429, 5xx, timeouts and cut-off answers are retryable) against
    # its generated sandbox: an author changes only paths and mapping from there
    kit = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], capture_output=True,
                         text=True, timeout=300, cwd=root, env=environment)  # fmt: skip
    assert kit.returncode == 0, kit.stdout[-4000:] + kit.stderr[-2000:]
    assert "16 passed" in kit.stdout, kit.stdout[-2000:]
    # the author's sandbox starts from the CLI, prints what Cart General needs and answers on it
    server = subprocess.Popen([python, "-m", "host", "acme-shop", "sandbox", "--port", "0"], stdout=subprocess.PIPE,
                              text=True, cwd=tmp_path, env={**environment, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    try:
        printed = {}
        for line in server.stdout:
            key, _, value = line.partition(": ")
            printed[key] = value.strip()
            if key == "Inspect":
                break
        assert printed["API key"] == "sandbox-key-0001", printed
        account = urllib.request.Request(printed["API URL"] + "/v1/account", headers={"x-api-key": "sandbox-key-0001"})
        with urllib.request.urlopen(account, timeout=10) as answer:
            assert answer.status == 200
        with urllib.request.urlopen(printed["Inspect"], timeout=10) as answer:
            assert answer.status == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
