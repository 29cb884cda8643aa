"""The gate every channel operation passes: whether the company's settings allow the work now,
the plugin and settings it goes to, and the secrets kept out of what comes back.

Gating lives here and only here: with Allow Order Download off the download hook is never
called, with Allow Tracking Upload off the upload hook is never called, and neither runs
before Test Settings has passed for the settings as they are now.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import SecretStr

from host.errors import HostError
from host.records import companies
from host.records.companies import Company
from host.records.credentials import DbCredentialStore
from host.store.api import Store
from plugin_spec import CartSettings
from plugin_spec.wire import without_secrets


class NotAllowed(HostError):
    """The company's settings do not allow this work now (a toggle is off, or untested)."""


class Interrupted(HostError):
    """The worker is stopping: the job stopped at an order boundary with its work committed."""


def check_allowed(db: Store, company: Company, kind: str) -> None:
    """Refuse work the company's Website General Settings do not allow right now."""
    ws = companies.website_settings(db, company)
    if not ws["store_plugin"]:
        raise NotAllowed(
            f"company {company.name!r} has no store plugin; choose a Store Plugin in Website General Settings",
            cli_hint=f"cartplugin website-settings {company.name!r} --store-plugin NAME",
        )
    if ws["plugin_missing"]:
        raise NotAllowed(
            f"plugin missing: the store plugin {ws['store_plugin']!r} of company {company.name!r} is not installed; "
            "ask an operator to install it again, or choose another Store Plugin in Website General Settings",
            cli_hint=f"cartplugin install it again, or choose another: cartplugin website-settings "
            f"{company.name!r} --store-plugin NAME",
        )
    if kind in ("import_orders", "download_orders") and not ws["allow_order_download"]:
        raise NotAllowed(f"Allow Order Download is off for company {company.name!r}")
    if kind == "upload_tracking" and not ws["allow_tracking_upload"]:
        raise NotAllowed(f"Allow Tracking Upload is off for company {company.name!r}")
    if kind != "test_settings" and ws["connection_status"] != "established":
        raise NotAllowed(
            f"the connection of company {company.name!r} is not established; run Test Settings first, in Cart General",
            cli_hint=f"cartplugin test-settings {company.name!r}",
        )


def channel_settings(db: Store, company: Company) -> tuple[str, CartSettings]:
    """The company's store plugin and its Cart General settings as that plugin's model."""
    channel = companies.store_plugin(db, company)
    return channel, companies.cart_settings_model(db, company)


def redact(
    text: str,
    settings: CartSettings | None,
    credentials: DbCredentialStore | None = None,
    tokens: Iterable[str] = (),
) -> str:
    """Remove every secret value of ``settings`` from ``text`` (defence in depth for messages),
    and every token the channel's auth obtained (seen through ``credentials``, or ``tokens``)."""
    secrets: list[str] = list(tokens)
    if settings is not None:
        for name in type(settings).model_fields:
            value = getattr(settings, name)
            if isinstance(value, SecretStr):
                secrets.append(value.get_secret_value())
    if credentials is not None:
        secrets += credentials.secret_values()
    return without_secrets(text, secrets, companies.mask)
