"""The layers import downwards only: plugins see plugin_spec, the host never imports a plugin."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_PACKAGES = {
    "backmarket_pro": "plugins/backmarket_pro/backmarket_pro",
    "backmarket": "plugins/backmarket/backmarket",
}


def _imports(folder: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = {node.module.split(".")[0]}
            else:
                continue
            found.setdefault(str(path.relative_to(ROOT)), set()).update(names)
    return found


@pytest.mark.parametrize("layer", ["host", "plugin_spec"])
def test_the_host_and_the_toolkit_never_import_a_channel_plugin(layer: str) -> None:
    offenders = {path: names & set(PLUGIN_PACKAGES) for path, names in _imports(ROOT / layer).items()}
    assert {path: names for path, names in offenders.items() if names} == {}


@pytest.mark.parametrize("package", sorted(PLUGIN_PACKAGES))
def test_a_plugin_imports_plugin_spec_but_never_the_host(package: str) -> None:
    offenders = {path: names & {"host"} for path, names in _imports(ROOT / PLUGIN_PACKAGES[package]).items()}
    assert {path: names for path, names in offenders.items() if names} == {}
