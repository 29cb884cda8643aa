"""`cartplugin new-plugin` writes a package built on the channel toolkit that installs into a
fresh venv, shows up in `cartplugin plugins`, serves its sandbox and passes the conformance kit
on it, for every way of authenticating (--auth) and paging (--paging) it offers."""

from __future__ import annotations

import ast
import base64
import itertools
import json
import os
import shutil
import site
import subprocess
import sys
import urllib.parse
import urllib.request
import venv
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from host.cli.newplugin import AUTH_CHOICES, PAGING_CHOICES, generate, names
from host.errors import HostError

VARIANTS = list(itertools.product(AUTH_CHOICES, PAGING_CHOICES))
#: what the kit skips on a generated plugin: accepting orders is a capability it does not
#: declare, and a channel with an API key has no access tokens to check
NOT_ACCEPTING = "test_accepted_orders_no_longer_await_acceptance"
#: the generated sandbox cannot cancel one line of an order (KitChannel.cancel_line is the author's to add)
NO_LINE_CANCEL = "test_a_line_cancelled_on_the_channel_comes_back_flagged"
KIT_SKIPS = {
    "api-key": {NOT_ACCEPTING, NO_LINE_CANCEL, "test_an_access_token_is_kept_and_renewed_once_when_it_expires"},
    "oauth2": {NOT_ACCEPTING, NO_LINE_CANCEL},
}
#: the kit's checks (four of them one per fault) and the generated tests file's own two
KIT_TESTS = 24


def variant_name(auth: str, paging: str) -> str:
    return f"shop_{auth.replace('-', '')}_{paging}"


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


@pytest.mark.parametrize("option, value", [("--auth", "basic"), ("--paging", "page-number")])
def test_the_command_refuses_an_auth_or_paging_it_does_not_offer(run, tmp_path, option, value):
    result = run("new-plugin", "acme-shop", "--directory", str(tmp_path), option, value, ok=False)
    assert result.exit_code == 2
    assert f"Invalid value for '{option}'" in result.output and value in result.output
    assert not (tmp_path / "cartplugin-acme-shop").exists()


def test_a_display_name_that_cannot_sit_in_a_string_literal_is_refused(tmp_path):
    for bad in ('Acme "Shop"', "Acme {Shop}", "Acme\\Shop", "", "x" * 41):
        with pytest.raises(HostError, match="display name"):
            generate("acme_shop", tmp_path, display_name=bad)
    assert not (tmp_path / "cartplugin-acme-shop").exists()


@pytest.mark.parametrize("auth, paging", VARIANTS)
def test_each_variant_is_python_that_imports_the_toolkit_and_never_the_host(tmp_path, auth, paging):
    root = generate("acme_shop", tmp_path, auth=auth, paging=paging)
    imported: set[str] = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):  # a syntax error fails here
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
    assert "plugin_spec" in imported and "host" not in imported
    client = (root / "cartplugin_acme_shop" / "client.py").read_text()
    plugin = (root / "cartplugin_acme_shop" / "plugin.py").read_text()
    if auth == "oauth2":
        assert "OAuth2RefreshToken(" in client and "store=credentials" in client and "ApiKeyHeader" not in client
        # every operation hook takes the host's token store and hands it on
        for hook in ("cartplugin_test_settings", "cartplugin_download_orders", "cartplugin_upload_tracking"):
            signature = plugin[plugin.index(f"def {hook}(") : plugin.index(":\n", plugin.index(f"def {hook}("))]
            assert "credentials: CredentialStore" in signature, hook
    else:
        assert "ApiKeyHeader(" in client and "OAuth2" not in client and "credentials" not in plugin
    pagers = {"next": "pager=" not in client, "cursor": "Keyset(\n            PageToken(" in client,
              "offset": "Keyset(\n            Offset(" in client}  # fmt: skip
    assert pagers[paging]


@pytest.mark.parametrize("auth, paging", VARIANTS)
def test_each_variant_is_lint_clean_as_generated_under_its_own_ruff_settings(tmp_path, auth, paging):
    # an author's first `ruff check` should find their own changes, not the template's
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (the lint extra)")
    root = generate("acme_marketplace_europe", tmp_path, auth=auth, paging=paging, display_name="A" * 40)
    for command in (["check", "--no-cache", "."], ["format", "--no-cache", "--check", "."]):
        done = subprocess.run([ruff, *command], capture_output=True, text=True, cwd=root, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr


def _fresh_venv(env_dir: Path) -> Path:
    venv.create(env_dir, with_pip=False)  # pip comes from this environment (pip --python)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    # the host and its dependencies come from this environment, as --system-site-packages would
    (Path(purelib) / "host-env.pth").write_text(f"import site; site.addsitedir({site.getsitepackages()[0]!r})\n")
    return python


def _kit_results(report: Path) -> dict[str, dict[str, set[str]]]:
    """channel -> {"passed": test names, "skipped": ..., "failed": ...}, from pytest's JUnit XML."""
    results: dict[str, dict[str, set[str]]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").split(".TestConformance")[0].rsplit(".", 1)[-1]
        channel = module.removeprefix("test_").removesuffix("_conformance")
        outcome = next((c.tag for c in case if c.tag in ("skipped", "failure", "error")), "passed")
        name = case.get("name", "").split("[")[0]
        results.setdefault(channel, {"passed": set(), "skipped": set(), "failure": set(), "error": set()})
        results[channel][outcome].add(name if outcome == "skipped" else case.get("name", ""))
    return results


def _sandbox_answers(python: Path, cwd: Path, environment: dict[str, str], auth: str, command: str) -> None:
    """The author's sandbox starts from the CLI, prints what Cart General needs and answers on it."""
    server = subprocess.Popen([python, "-m", "host", command, "sandbox", "--port", "0"], stdout=subprocess.PIPE,
                              text=True, cwd=cwd, env={**environment, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    try:
        printed = {}
        assert server.stdout is not None
        for line in server.stdout:
            key, _, value = line.partition(": ")
            printed[key] = value.strip()
            if key == "Inspect":
                break
        if auth == "oauth2":
            # the printed client and refresh token obtain an access token, which opens the API
            form = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": printed["Refresh token"]})
            basic = base64.b64encode(f"{printed['Client id']}:{printed['Client secret']}".encode()).decode()
            minting = urllib.request.Request(printed["Token URL"], data=form.encode(),
                                             headers={"Authorization": f"Basic {basic}"})  # fmt: skip
            with urllib.request.urlopen(minting, timeout=10) as answer:
                headers = {"Authorization": "Bearer " + json.load(answer)["access_token"]}
        else:
            assert printed["API key"] == "sandbox-key-0001", printed
            headers = {"x-api-key": printed["API key"]}
        account = urllib.request.Request(printed["API URL"] + "/v1/account", headers=headers)
        with urllib.request.urlopen(account, timeout=10) as answer:
            assert answer.status == 200
        with urllib.request.urlopen(printed["Inspect"], timeout=10) as answer:
            assert answer.status == 200
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_every_variant_installs_into_a_fresh_venv_is_listed_serves_its_sandbox_and_passes_the_kit(tmp_path):
    # all six in one venv and one kit run: the names differ, so nothing collides, and the
    # interpreter, pytest and the host start once instead of six times
    roots = {(auth, paging): generate(variant_name(auth, paging), tmp_path, auth=auth, paging=paging,
                                      display_name="Acme & Co." if auth == "oauth2" else None)
             for auth, paging in VARIANTS}  # fmt: skip
    python = _fresh_venv(tmp_path / "venv")
    editable = [arg for root in roots.values() for arg in ("-e", str(root))]
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
         "--disable-pip-version-check", "--no-input", *editable],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stdout + pip.stderr
    environment = {k: v for k, v in os.environ.items() if k not in ("CARTPLUGIN_LOAD_PLUGINS", "PYTHONPATH")}

    listed = subprocess.run([python, "-m", "host", "plugins", "--json"], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path, env=environment)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    for auth, paging in VARIANTS:
        row = rows[variant_name(auth, paging)]
        assert row["channel"] == variant_name(auth, paging)
        assert "cartplugin_download_orders" in row["hooks"]
        title = "Acme & Co." if auth == "oauth2" else f"Shop {auth.replace('-', '').capitalize()} {paging.capitalize()}"
        assert row["display_name"] == f"{title} WebsiteCartPlugin"

    # the generated plugins, built on the channel toolkit, pass the whole conformance kit
    # against their generated sandboxes (a 429, a 5xx, a timeout, a cut-off answer, a lost
    # answer, a cancelled order, orders changed mid-download, every amount, and for OAuth 2.0
    # a token kept and renewed once): an author changes only paths and mapping from there
    report = tmp_path / "kit.xml"
    kit = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
         *(str(root / "tests") for root in roots.values())],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env=environment,
    )  # fmt: skip
    assert kit.returncode == 0, kit.stdout[-6000:] + kit.stderr[-2000:]
    results = _kit_results(report)
    for auth, paging in VARIANTS:
        outcome = results[variant_name(auth, paging)]
        assert outcome["skipped"] == KIT_SKIPS[auth], (auth, paging, outcome["skipped"])
        assert len(outcome["passed"]) == KIT_TESTS - len(KIT_SKIPS[auth]), (auth, paging, outcome)

    for auth, paging in VARIANTS:
        _sandbox_answers(python, tmp_path, environment, auth, variant_name(auth, paging).replace("_", "-"))


def test_the_wheel_carries_every_template_file():
    # package data is listed by pattern: a template in a folder no pattern reaches would be
    # missing from an installed cartplugin, and new-plugin would write a package without it
    import tomllib

    root = Path(__file__).resolve().parent.parent
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["host.cli"]
    carried = {path for pattern in patterns for path in (root / "host" / "cli").glob(pattern)}
    templates = {path for path in (root / "host" / "cli" / "plugin_template").rglob("*") if path.is_file()}
    assert templates and templates <= carried
