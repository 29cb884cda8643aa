"""The host and the plugins as users install them: each built into an sdist and a wheel (the wheel
from the sdist, as ``python -m build`` does), installed non-editable into a fresh venv, and run.

Every other test runs on editable installs, which see the whole source tree; only this one sees
what a wheel really ships (issue: ``plugin_spec.sandbox`` and ``host.jobs.cluster`` were left out).
No network: the dependencies come from this environment through a folder of links that leaves
out the cartplugin distributions themselves, so the fresh venv imports the host only from its wheel.
"""

from __future__ import annotations

import os
import shutil
import site
import socket
import subprocess
import sys
import time
import urllib.request
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECTS = {".": "cartplugin", "plugins/backmarket_pro": "cartplugin_backmarket_pro",
            "plugins/backmarket": "cartplugin_backmarket", "plugins/amazon_sp": "cartplugin_amazon_sp"}  # fmt: skip
#: what the editable installs put in site-packages: never seen by the fresh venv
OURS = ("cartplugin", "__editable__", "host", "plugin_spec", "backmarket", "amazon_sp")


def _tracked_copy(destination: Path) -> None:
    """The files git tracks or would track, as they are in the working tree (uncommitted changes too)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


def _dependencies_only(folder: Path) -> Path:
    """Links to this environment's installed packages, except the cartplugin ones."""
    folder.mkdir()
    for entry in Path(site.getsitepackages()[0]).iterdir():
        if not entry.name.startswith(OURS) and not entry.name.endswith(".pth"):
            (folder / entry.name).symlink_to(entry)
    return folder


class Installed:
    def __init__(self, env: Path, dist: Path, work: Path) -> None:
        self.env, self.dist, self.work = env, dist, work
        self.environ = {k: v for k, v in os.environ.items() if not k.startswith("CARTPLUGIN_") and k != "PYTHONPATH"}
        self.environ |= {"XDG_CONFIG_HOME": str(work / "xdg"), "CARTPLUGIN_DB": str(work / "cart.db")}

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.env / "bin" / args[0]), *args[1:]], cwd=self.work, env=self.environ,
                              capture_output=True, text=True, timeout=timeout)  # fmt: skip


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheels")
    source, dist, env, work = base / "src", base / "dist", base / "venv", base / "work"
    source.mkdir()
    work.mkdir()
    _tracked_copy(source)
    for project in PROJECTS:
        built = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), project],
                               cwd=source, capture_output=True, text=True)  # fmt: skip
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    (Path(purelib) / "dependencies.pth").write_text(str(_dependencies_only(base / "dependencies")) + "\n")
    wheels = sorted(str(path) for path in dist.glob("*.whl"))
    pip = [sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check"]
    done = subprocess.run([*pip, "install", "--no-index", "--no-deps", *wheels], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return Installed(env, dist, work)


def test_each_project_builds_an_sdist_and_a_wheel_that_hold_every_package(installed: Installed) -> None:
    for name in PROJECTS.values():
        assert len(list(installed.dist.glob(f"{name}-*.tar.gz"))) == 1, name
    with zipfile.ZipFile(next(installed.dist.glob("cartplugin-*.whl"))) as wheel:
        shipped = set(wheel.namelist())
    # every package of the source tree, and the files the web admin and `new-plugin` read
    packages = {str(p.parent.relative_to(ROOT)) for p in (ROOT / "host").rglob("__init__.py")}
    packages |= {str(p.parent.relative_to(ROOT)) for p in (ROOT / "plugin_spec").rglob("__init__.py")}
    assert {"host/jobs/cluster", "plugin_spec/sandbox", "host/web/routes"} <= packages
    missing = {package for package in packages if f"{package}/__init__.py" not in shipped}
    assert not missing, f"packages left out of the wheel: {sorted(missing)}"
    assert {
        "host/web/templates/base.html",
        "host/web/static/style.css",
        "host/cli/plugin_template/README.md.j2",
    } <= shipped


def test_the_installed_dependencies_are_complete_and_the_host_comes_from_its_wheel(installed: Installed) -> None:
    checked = installed.run("python", "-m", "pip", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    where = installed.run("python", "-c", "import host, plugin_spec.sandbox, backmarket_pro; print(host.__file__)")
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(str(installed.env)), where.stdout


def test_the_installed_cli_lists_the_plugins_and_runs_the_demo_and_a_worker_round(installed: Installed) -> None:
    plugins = installed.run("cartplugin", "plugins")
    assert plugins.returncode == 0, plugins.stderr
    for channel in ("backmarket_pro", "backmarket", "amazon_sp"):
        assert channel in plugins.stdout
    demo = installed.run(
        "cartplugin", "backmarket-pro", "demo", "--orders", "5", "--db", str(installed.work / "demo.db")
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "Source Updated for Shipping:" in demo.stdout and "internal error" not in demo.stdout + demo.stderr
    added = installed.run("cartplugin", "companies", "add", "Wheel Co")
    assert added.returncode == 0, added.stderr
    round_ = installed.run("cartplugin", "worker", "--once", "--processes", "2")
    assert round_.returncode == 0, round_.stdout + round_.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_installed_web_admin_serves_its_sign_in_page(installed: Installed) -> None:
    assert installed.run("cartplugin", "companies", "add", "Web Co").returncode in (0, 1)
    port = _free_port()
    server = subprocess.Popen([str(installed.env / "bin" / "cartplugin"), "serve", "--port", str(port)],
                              cwd=installed.work, env=installed.environ,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline, page = time.monotonic() + 30, ""
        while time.monotonic() < deadline and not page:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as answer:
                    page = answer.read().decode()
            except OSError:
                assert server.poll() is None, server.communicate()[0]
                time.sleep(0.2)
        assert "Sign in" in page and "/static/style.css" in page, page[:500]
    finally:
        server.terminate()
        server.wait(timeout=10)
