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


# -- the host's own layers -------------------------------------------------------------------------

#: the host's layers, lowest first; a module belongs to the layer of its longest matching prefix and
#: imports only from its own layer and those below (docs/architecture.md draws them)
HOST_LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("host", "host.errors", "host.clock", "host.jobs.failpoints", "host.jobs.bounded")),
    ("store", ("host.store",)),
    # the rows of the domain and what they consult: the settings (where the database and its key
    # file are), the plugin manager (a channel's settings model), the tracking-number check, the
    # jobs table
    ("records", ("host.records", "host.config", "host.channel.plugins", "host.channel.tracking", "host.jobs.queue")),
    ("channel", ("host.channel",)),
    ("jobs", ("host.jobs",)),
    ("edge", ("host.cli", "host.web", "host.logs", "host.__main__")),
]
#: records the schema's steps use today (name keys, the order search's index, the secrets' sealing,
#: for steps that rewrite rows): a module of host/store/schema/ importing one of them is the one
#: upward import known
SCHEMA_USES_TODAY = {"host.records.names", "host.records.order_search", "host.records.secrets"}


def _known_upward(module: str, target: str) -> bool:
    return module.startswith("host.store.schema.") and target in SCHEMA_USES_TODAY


def _host_modules() -> dict[str, Path]:
    modules = {}
    for path in (ROOT / "host").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _host_import_graph() -> dict[str, set[str]]:
    """Which host modules each host module imports, anywhere in it (inside functions too)."""
    modules = _host_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([node.module] if node.module else []))
                found = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            else:
                continue
            for target in found:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def _circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _layer(module: str) -> int:
    best, depth = -1, -1
    for number, (_, prefixes) in enumerate(HOST_LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and prefix.count(".") > depth:
                best, depth = number, prefix.count(".")
    return best


def test_no_module_of_the_host_imports_itself_back_through_others() -> None:
    assert _circles(_host_import_graph()) == []


def test_every_host_module_belongs_to_a_layer() -> None:
    assert [module for module in _host_modules() if _layer(module) < 0] == []


def test_each_layer_of_the_host_imports_only_its_own_and_those_below() -> None:
    upward = sorted(
        f"{module} ({HOST_LAYERS[_layer(module)][0]}) imports {target} ({HOST_LAYERS[_layer(target)][0]})"
        for module, targets in _host_import_graph().items()
        for target in targets
        if _layer(target) > _layer(module) and not _known_upward(module, target)
    )
    assert upward == []
