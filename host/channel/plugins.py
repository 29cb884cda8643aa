"""The plugin manager: loads channel plugins once and routes each call to one plugin.

Environment variables:

* ``CARTPLUGIN_LOAD_PLUGINS``: comma-separated distribution or channel names to load from the
  ``cartplugin`` entry-point group (empty string: load none). Unset: load all.
* ``CARTPLUGIN_TRACE_PLUGINS``: when set, every hook call and its result is written to stderr.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any

import pluggy

from host.errors import HostError, NotFound
from plugin_spec import PROJECT_NAME, ChannelInfo, hookspecs

ENTRY_POINT_GROUP = PROJECT_NAME

pm = pluggy.PluginManager(PROJECT_NAME)
pm.add_hookspecs(hookspecs)

_loaded = False
_tracing = False
_load_lock = threading.Lock()
_channels: dict[str, tuple[object, ChannelInfo]] = {}
#: installed plugins that failed to load or describe themselves, with the reason
broken: dict[str, str] = {}


class DuplicateChannel(HostError):
    pass


def _allowed() -> set[str] | None:
    value = os.environ.get("CARTPLUGIN_LOAD_PLUGINS")
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _load_entrypoints(allowed: set[str] | None) -> None:
    for dist in metadata.distributions():
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP:
                continue
            if allowed is not None and ep.name not in allowed and dist.metadata["name"] not in allowed:
                continue
            if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
                continue
            try:
                pm.register(ep.load(), name=ep.name)
            except Exception as exc:  # one broken plugin must not take the host (or uninstall) down
                broken[ep.name] = f"{type(exc).__name__}: {exc}"[:300]


def load_plugins() -> None:
    """Load the installed channel plugins, once per process."""
    global _loaded
    with _load_lock:
        if _loaded:
            return
        if not getattr(sys, "_called_from_test", False):
            _load_entrypoints(_allowed())
        if os.environ.get("CARTPLUGIN_TRACE_PLUGINS") and not _tracing:
            _trace()
        while True:  # a plugin implementing a hook that does not exist is set aside, not fatal
            try:
                pm.check_pending()
                break
            except pluggy.PluginValidationError as exc:
                broken[pm.get_name(exc.plugin) or repr(exc.plugin)] = str(exc)[:300]
                pm.unregister(exc.plugin)
        refresh_channels(drop_broken=True)
        _loaded = True


def refresh_channels(*, drop_broken: bool = False) -> None:
    """Rebuild the channel-name index; refuses two plugins that claim one channel name.

    With ``drop_broken`` (start-up) a plugin whose channel info fails is unregistered and
    listed in ``broken`` instead of stopping the host.
    """
    channels: dict[str, tuple[object, ChannelInfo]] = {}
    everyone = pm.get_plugins()
    for impl in pm.hook.cartplugin_channel_info.get_hookimpls():
        plugin = impl.plugin
        try:
            # through the hook (not impl.function) so CARTPLUGIN_TRACE_PLUGINS sees the call
            (info,) = pm.subset_hook_caller(
                "cartplugin_channel_info", remove_plugins=[p for p in everyone if p is not plugin]
            )()
            if not isinstance(info, ChannelInfo):
                raise HostError(f"plugin {pm.get_name(plugin)!r} returned {type(info).__name__}, not ChannelInfo")
        except Exception as exc:
            if not drop_broken:
                raise
            broken[pm.get_name(plugin) or repr(plugin)] = f"{type(exc).__name__}: {exc}"[:300]
            pm.unregister(plugin)
            continue
        if info.name in channels:
            other = pm.get_name(channels[info.name][0])
            raise DuplicateChannel(
                f"two plugins claim the channel name {info.name!r}: {other!r} and {pm.get_name(plugin)!r}; "
                "uninstall one of them"
            )
        channels[info.name] = (plugin, info)
    _channels.clear()
    _channels.update(channels)


def _trace() -> None:
    global _tracing
    _tracing = True

    def before(hook_name: str, hook_impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
        shown = {k: ("<settings>" if k == "settings" else v) for k, v in kwargs.items()}
        print(f"[trace] {hook_name}({shown}) -> {[i.plugin_name for i in hook_impls]}", file=sys.stderr)

    def after(
        outcome: pluggy.Result[Any], hook_name: str, hook_impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]
    ) -> None:
        print(f"[trace] {hook_name} returned {type(outcome.get_result()).__name__}", file=sys.stderr)

    pm.add_hookcall_monitoring(before, after)


def channels() -> dict[str, ChannelInfo]:
    """Every loaded channel, by name."""
    load_plugins()
    return {name: info for name, (_, info) in _channels.items()}


def channel_info(name: str) -> ChannelInfo:
    load_plugins()
    try:
        return _channels[name][1]
    except KeyError:
        known = ", ".join(sorted(_channels)) or "none installed"
        raise NotFound(f"unknown store plugin {name!r} (installed: {known})") from None


def resolve(name: str) -> str:
    """A channel by its name or by its display name (``BackMarketForBusiness WebsiteCartPlugin``),
    case and spaces aside; returns the channel name."""
    load_plugins()
    if name in _channels:
        return name
    wanted = " ".join(name.split()).casefold()
    for channel, (_, info) in _channels.items():
        if wanted in (channel.casefold(), " ".join(info.display_name.split()).casefold()):
            return channel
    channel_info(name)  # raises the usual error naming what is installed
    return name


def hook_for(channel: str, hook_name: str) -> pluggy.HookCaller:
    """The hook ``hook_name`` limited to the plugin of ``channel``: the others are never called."""
    channel_info(channel)
    mine = _channels[channel][0]
    others = [plugin for plugin in pm.get_plugins() if plugin is not mine]
    return pm.subset_hook_caller(hook_name, remove_plugins=others)


def plugin_listing() -> list[dict[str, Any]]:
    """Name, version and implemented hooks of every loaded plugin (for ``cartplugin plugins``)."""
    load_plugins()
    by_plugin = {id(plugin): info for plugin, info in _channels.values()}
    rows = []
    for plugin in pm.get_plugins():
        info = by_plugin.get(id(plugin))
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        rows.append(
            {
                "name": pm.get_name(plugin),
                "channel": info.name if info else None,
                "display_name": info.display_name if info else None,
                "version": info.version if info else None,
                "hooks": hooks,
            }
        )
    rows += [{"name": name, "error": reason} for name, reason in broken.items()]
    return sorted(rows, key=lambda row: row["name"] or "")


def register(plugin: object, name: str | None = None) -> None:
    """Register a plugin object at run time (tests, embedding); refuses a duplicate channel name."""
    load_plugins()
    pm.register(plugin, name=name)
    try:
        pm.check_pending()
        refresh_channels()
    except Exception:
        pm.unregister(plugin)
        refresh_channels()
        raise


def unregister(plugin: object) -> None:
    pm.unregister(plugin)
    refresh_channels()
