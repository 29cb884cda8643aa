"""``cartplugin new-plugin NAME``: write a ready-to-install channel plugin package.

The package has a pyproject with the ``cartplugin`` entry point, a settings model, hook stubs
that say clearly what is not implemented yet, a tests file that runs the conformance kit, and
a README. docs/writing-a-plugin.md continues from there.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

from .errors import HostError

_NAME = re.compile(r"^[a-z][a-z0-9_]{1,40}$")

TEMPLATES: dict[str, str] = {
    "pyproject.toml": '''\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "$title channel for cartplugin"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["cartplugin", "requests>=2.31", "pydantic>=2.6"]

[project.optional-dependencies]
test = ["pytest>=8"]

[project.entry-points.cartplugin]
$channel = "$package.plugin"

[tool.setuptools]
packages = ["$package"]
''',
    "README.md": '''\
# $dist

The **$title** sales channel for [cartplugin](https://github.com/): download orders, upload tracking.

```sh
pip install -e '.[test]'        # into the same environment as cartplugin
cartplugin plugins              # lists "$channel"
python -m pytest                # the conformance kit (plugin_spec.testing) plus your own tests
```

Where things go (docs/writing-a-plugin.md of cartplugin walks through each):

| file | what |
|---|---|
| `$package/settings.py` | the Cart General fields staff fill in; credentials typed `SecretStr` |
| `$package/plugin.py` | the hooks; each stub says what it must do |
| `tests/test_${channel}_conformance.py` | the kit: fill in the sandbox fixtures, then make it pass |
''',
    "$package/__init__.py": '''\
"""$title channel plugin for cartplugin."""

__version__ = "0.1.0"
''',
    "$package/settings.py": '''\
"""Cart General settings of a $title company: each field is one setting staff fill in."""

from __future__ import annotations

from pydantic import Field, SecretStr

from plugin_spec import CartSettings


class ${model}(CartSettings):
    api_url: str = Field(default="https://api.example.com", title="API URL")
    api_key: SecretStr = Field(title="API key", min_length=8)
''',
    "$package/plugin.py": '''\
"""The hooks of the $title channel (see cartplugin's docs/plugin-hooks.md for each contract)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from plugin_spec import (
    BadOrder,
    ChannelError,
    ChannelInfo,
    ChannelOrder,
    Shipment,
    TestResult,
    UploadResult,
    hookimpl,
)

from . import __version__
from .settings import ${model}

if TYPE_CHECKING:
    import click

NAME = "$channel"


class NotImplementedYet(ChannelError, NotImplementedError):
    """A hook of this plugin has not been written yet (the host shows this message)."""

    def __init__(self, hook: str, what: str):
        super().__init__(
            f"$title: {hook} is not implemented yet ({what}); edit $package/plugin.py "
            "(see docs/writing-a-plugin.md of cartplugin)"
        )


@hookimpl
def cartplugin_channel_info() -> ChannelInfo:
    return ChannelInfo(name=NAME, display_name="$title WebsiteCartPlugin", version=__version__, settings_model=${model})


@hookimpl
def cartplugin_test_settings(settings: ${model}) -> TestResult:
    raise NotImplementedYet("cartplugin_test_settings", "make one cheap authenticated call, return TestResult")


@hookimpl
def cartplugin_download_orders(
    settings: ${model}, since: datetime | None, unfulfilled_only: bool
) -> Iterator[ChannelOrder | BadOrder]:
    raise NotImplementedYet("cartplugin_download_orders", "yield ChannelOrder page by page, updated_at >= since")


@hookimpl
def cartplugin_upload_tracking(settings: ${model}, shipments: list[Shipment]) -> list[UploadResult]:
    raise NotImplementedYet("cartplugin_upload_tracking", "return one UploadResult per shipment")


@hookimpl
def cartplugin_register_commands(cli: click.Group) -> None:
    """Add `cartplugin $command ...` commands here (a sandbox server, for one)."""
''',
    "tests/test_${channel}_conformance.py": '''\
"""The cartplugin conformance kit on this plugin: fill in the sandbox, then make every check pass."""

from __future__ import annotations

import pytest

from $package import plugin
from $package.settings import ${model}
from plugin_spec.testing import ConformanceSuite, KitChannel


class SandboxChannel(KitChannel):
    """What the kit asks your channel's sandbox (read it directly, not through the plugin)."""

    def __init__(self, sandbox):
        self.sandbox = sandbox

    def unfulfilled_order_ids(self) -> set[str]:
        raise NotImplementedError("TODO: ids of the sandbox's orders still to ship")

    def add_order(self) -> str:
        raise NotImplementedError("TODO: add one order newer than every other; return its id")

    def recorded_tracking(self, order_id: str) -> list[str]:
        raise NotImplementedError("TODO: the tracking numbers the sandbox holds for the order")


@pytest.fixture
def sandbox():
    pytest.fail("TODO: start a sandbox of your channel on 127.0.0.1 and yield it "
                "(docs/writing-a-plugin.md, 'A sandbox')", pytrace=False)


class TestConformance(ConformanceSuite):
    @pytest.fixture
    def cartplugin_kit_plugin(self):
        return plugin

    @pytest.fixture
    def cartplugin_kit_channel(self, sandbox):
        return SandboxChannel(sandbox)

    @pytest.fixture
    def cartplugin_kit_settings(self, sandbox):
        return ${model}(api_url=sandbox.base_url, api_key=sandbox.api_key)

    @pytest.fixture
    def cartplugin_kit_bad_key_settings(self, sandbox):
        return ${model}(api_url=sandbox.base_url, api_key="wrong-key-000000")


def test_the_plugin_describes_itself():
    info = plugin.cartplugin_channel_info()
    assert info.name == "$channel" and info.settings_model is ${model}
''',
}


def names(raw: str) -> dict[str, str]:
    """The names a plugin called ``raw`` gets: channel key, package, distribution, title."""
    channel = re.sub(r"[\s-]+", "_", raw.strip().lower())
    channel = channel.removeprefix("cartplugin_")
    if not _NAME.match(channel):
        raise HostError(
            f"a plugin name is a letter then letters, digits, '-' or '_' (2 to 41 characters), not {raw[:50]!r}"
        )
    words = [w for w in channel.split("_") if w]
    return {
        "channel": channel,
        "package": f"cartplugin_{channel}",
        "dist": "cartplugin-" + channel.replace("_", "-"),
        "title": " ".join(w.capitalize() for w in words),
        "model": "".join(w.capitalize() for w in words) + "Settings",
        "command": channel.replace("_", "-"),
    }


def generate(raw_name: str, directory: Path) -> Path:
    """Write the package into ``directory/<distribution name>``; refuses to overwrite anything."""
    values = names(raw_name)
    root = directory / values["dist"]
    if root.exists():
        raise HostError(f"{root} already exists; choose another name or --directory")
    for template_path, text in TEMPLATES.items():
        target = root / Template(template_path).substitute(values)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(Template(text).substitute(values), encoding="utf-8")
    return root
