"""The docs name every hook with its exact signature (datasette's test_docs, for our hooks)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from plugin_spec import hookspecs

DOCS = Path(__file__).resolve().parent.parent / "docs"
HOOKS = {name: fn for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("cartplugin_")}


def signature_text(fn) -> str:
    sig = inspect.signature(fn)
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"{fn.__name__}({params}) -> {sig.return_annotation}"


def test_there_are_hooks_to_document():
    assert {"cartplugin_channel_info", "cartplugin_test_settings", "cartplugin_download_orders",
            "cartplugin_upload_tracking", "cartplugin_register_commands"} <= set(HOOKS)  # fmt: skip


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_each_hook_has_a_heading_with_its_exact_signature(name):
    headings = re.findall(r"^### (.+)$", (DOCS / "plugin-hooks.md").read_text(), flags=re.M)
    assert signature_text(HOOKS[name]) in headings


def test_no_heading_documents_a_hook_that_does_not_exist():
    headings = re.findall(r"^### (cartplugin_\w+)", (DOCS / "plugin-hooks.md").read_text(), flags=re.M)
    assert set(headings) == set(HOOKS)


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_each_hookspec_has_a_docstring(name):
    assert (HOOKS[name].__doc__ or "").strip()


def test_no_doc_shows_a_secret_typed_on_the_command_line():
    # a value on the command line is readable by every user in `ps` and stays in the history
    readme = DOCS.parent / "README.md"
    for path in [readme, *DOCS.glob("*.md")]:
        for line in path.read_text().splitlines():
            if "x_api_key=" in line and "`--set x_api_key=VALUE`" not in line:
                assert re.search(r"x_api_key=(-|PATH|/)", line), f"{path.name}: {line}"
