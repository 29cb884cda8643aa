"""Hook specifications of cartplugin: the functions a channel plugin implements.

A plugin is a module (or object) with functions decorated ``@hookimpl`` whose names are the
hooks below, registered in the ``cartplugin`` entry-point group. The host calls the three
operations (test settings, download, upload) only on the one plugin a company selected, and
only when that company's toggles allow it, so an implementation needs no "is this mine?"
guard and no permission checks of its own.

Every operation also receives ``credentials``: the company's :class:`CredentialStore`, where
``plugin_spec.auth`` keeps OAuth 2.0 access tokens and rotated refresh tokens, shared by every
process of the host. An implementation that needs none leaves the argument out (pluggy passes
each implementation only the arguments it names).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

import pluggy

from .credentials import CredentialStore
from .models import (
    AcceptRequest,
    AcceptResult,
    BadOrder,
    CartSettings,
    ChannelInfo,
    ChannelOrder,
    Shipment,
    TestResult,
    UploadResult,
)

if TYPE_CHECKING:
    import click

PROJECT_NAME = "cartplugin"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def cartplugin_channel_info() -> ChannelInfo:
    """Describe the channel this plugin connects: name, display name, version, settings model.

    Called once per plugin when the host loads plugins; every plugin answers (a collector
    hook). The ``name`` must be unique among installed plugins: the host refuses to start
    with two plugins claiming the same one.
    """


@hookspec(firstresult=True)
def cartplugin_test_settings(settings: CartSettings, credentials: CredentialStore) -> TestResult:
    """Check the company's Cart General settings with one cheap authenticated call.

    :param settings: an instance of the plugin's own ``settings_model``, already validated.
    :param credentials: the company's store of tokens obtained at run time (``plugin_spec.auth``).
    :return: ``TestResult(ok=True, account_name=...)`` on success; ``ok=False`` with a message a
        person can act on (wrong key, unreachable URL, unexpected answer) otherwise. The
        message must never contain a secret.

    The host bounds the whole call, retries included (10 s by default): it runs inside a
    ``plugin_spec.stopping`` scope with a deadline, which ``plugin_spec.http`` keeps to.

    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def cartplugin_download_orders(
    settings: CartSettings, since: datetime | None, unfulfilled_only: bool, credentials: CredentialStore
) -> Iterator[ChannelOrder | BadOrder]:
    """Stream the channel's orders, page by page, as a generator.

    :param settings: an instance of the plugin's own ``settings_model``.
    :param credentials: the company's store of tokens obtained at run time (``plugin_spec.auth``).
    :param since: only orders whose channel ``updated_at`` is at or after this instant
        (inclusive, so a repeat is harmless: the host upserts); ``None`` for no lower bound.
    :param unfulfilled_only: only orders the channel still expects the seller to ship.
    :return: a generator of ``ChannelOrder``; an order that cannot be mapped is yielded as a
        ``BadOrder`` so the rest still import. Raise ``AuthError``, ``RateLimited``,
        ``TransientError`` or ``BadData`` when the listing itself fails.

    Orders should come in ascending ``updated_at`` order; the host saves the cursor only
    after the orders before it are committed. Stops at first non-None result.
    """


@hookspec(firstresult=True)
def cartplugin_upload_tracking(
    settings: CartSettings, shipments: list[Shipment], credentials: CredentialStore
) -> list[UploadResult]:
    """Send tracking number and carrier of shipped packages to the channel.

    :param settings: an instance of the plugin's own ``settings_model``.
    :param credentials: the company's store of tokens obtained at run time (``plugin_spec.auth``).
    :param shipments: the shipments to send, one or more per order.
    :return: exactly one ``UploadResult`` per shipment, echoing its ``shipment_id``; a
        channel answer that the tracking is already recorded is a success
        (``ok=True, already_recorded=True``). One failing shipment never fails the others.

    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def cartplugin_accept_orders(
    settings: CartSettings, orders: list[AcceptRequest], credentials: CredentialStore
) -> list[AcceptResult]:
    """Accept new orders on a channel that wants them accepted before they are shipped.

    Only for plugins whose ``ChannelInfo.capabilities`` include ``accept_orders``. The host
    calls it for orders downloaded with ``awaiting_acceptance=True``: right after the download
    when the company's ``accept_on_download`` setting is on, otherwise when staff accept them.

    :param settings: an instance of the plugin's own ``settings_model``.
    :param credentials: the company's store of tokens obtained at run time (``plugin_spec.auth``).
    :param orders: one request per order; ``cancel_line_ids`` are lines to cancel on the
        channel (the seller cannot serve them) instead of accepting them.
    :return: exactly one ``AcceptResult`` per request, echoing its ``source_order_id``; an
        order the channel has already accepted is a success. One failing order never fails
        the others.

    Stops at first non-None result.
    """


@hookspec
def cartplugin_register_commands(cli: click.Group) -> None:
    """Add commands to the ``cartplugin`` CLI (a sandbox server, a diagnostic, ...).

    :param cli: the root click group; add a group named after your channel to it.
    """
