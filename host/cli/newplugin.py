"""``cartplugin new-plugin NAME``: write a ready-to-install channel plugin package.

The package is a working plugin built on the channel toolkit (``plugin_spec.http``,
``plugin_spec.auth``, ``plugin_spec.paging``, ``plugin_spec.wire``, ``plugin_spec.sandbox``):
a settings model, a client that holds only paths and parameters, a mapping, thin hooks, a
sandbox on ``ApiSandbox`` and a tests file that runs the conformance kit against it (and
passes). The files are Jinja templates in ``plugin_template/``; how the channel authenticates
(``auth``) and pages (``paging``) are conditionals inside them. The author changes paths and
mapping to the channel's; docs/writing-a-plugin.md continues from there.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from host.errors import HostError

if TYPE_CHECKING:
    import jinja2

_NAME = re.compile(r"^[a-z][a-z0-9_]{1,40}$")
#: a display name lands inside Python and TOML string literals: no quotes, braces or backslashes
_DISPLAY_NAME = re.compile(r"^\w[\w .&+'-]{0,39}$")
TEMPLATE_DIR = Path(__file__).resolve().parent / "plugin_template"
AUTH_CHOICES = ("api-key", "oauth2")
PAGING_CHOICES = ("next", "cursor", "offset")


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
        "upper": channel.upper(),
    }


def template_values(
    raw_name: str, *, auth: str = "api-key", paging: str = "next", display_name: str | None = None
) -> dict[str, object]:
    """What the templates are rendered with: the names, the choices, and what follows from them."""
    if auth not in AUTH_CHOICES:
        raise HostError(f"--auth is one of {', '.join(AUTH_CHOICES)}, not {auth[:30]!r}")
    if paging not in PAGING_CHOICES:
        raise HostError(f"--paging is one of {', '.join(PAGING_CHOICES)}, not {paging[:30]!r}")
    values: dict[str, object] = dict(names(raw_name))
    shown = values["title"] if display_name is None else display_name.strip()
    if not _DISPLAY_NAME.match(str(shown)) or "__" in str(shown):
        raise HostError(
            "a display name is letters, digits, spaces and . & + ' - (up to 40 characters), "
            f"not {str(display_name)[:60]!r}"
        )
    oauth = auth == "oauth2"
    values.update(
        display_name=shown, auth=auth, paging=paging, oauth=oauth, api_key=not oauth,
        # the host's token store reaches an OAuth client through each operation hook
        credentials_arg=", credentials" if oauth else "",
    )  # fmt: skip
    return values


def _environment() -> jinja2.Environment:
    import jinja2  # the CLI imports this module for its choices at every start; only generating needs Jinja

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,  # a misspelt variable fails here, not in the author's package
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701 - the output is Python, TOML and Markdown, never HTML
    )


def _target(template: str, values: dict[str, object]) -> str:
    """``PACKAGE/client.py.j2`` -> ``cartplugin_acme/client.py``; ``CHANNEL`` names the tests file."""
    path = template.removesuffix(".j2").replace("PACKAGE", str(values["package"]))
    return path.replace("CHANNEL", str(values["channel"]))


def generate(
    raw_name: str,
    directory: Path,
    *,
    auth: str = "api-key",
    paging: str = "next",
    display_name: str | None = None,
) -> Path:
    """Write the package into ``directory/<distribution name>``; refuses to overwrite anything."""
    values = template_values(raw_name, auth=auth, paging=paging, display_name=display_name)
    root = directory / str(values["dist"])
    if root.exists():
        raise HostError(f"{root} already exists; choose another name or --directory")
    env = _environment()
    for template in sorted(env.list_templates(extensions=["j2"])):
        target = root / _target(template, values)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(env.get_template(template).render(values), encoding="utf-8")
    return root
