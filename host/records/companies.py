"""Companies and their two settings screens: Website General Settings and Cart General.

Every change to what the plugin would be called with (store plugin, any cart setting) marks
the company's connection untested, and nothing automatic runs until Test Settings passes again.
"""

from __future__ import annotations

import hmac
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr, ValidationError

from host import clock
from host.channel import plugins
from host.errors import HostError, InvalidSettings, NotFound
from host.records import audit, credentials, secrets, website_options
from host.records.names import name_key
from host.store.api import Store
from host.store.db import write
from plugin_spec import BadData, CartSettings
from plugin_spec.http import origin
from plugin_spec.wire import mask  # the one masking rule, shared with the plugins

MAX_NAME = 100
#: the cursor row saying from where every order up to the cursor has been read (``host.channel.cursors``)
COVERED_FROM = "orders_covered_from"
#: Cart General fields the host uses itself; changing them says nothing about the account
HOST_FIELDS = set(CartSettings.model_fields)


@dataclass(frozen=True)
class Company:
    id: int
    name: str
    connection_status: str
    connection_message: str | None
    connection_tested_at: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Company:
        return cls(
            id=row["id"],
            name=row["name"],
            connection_status=row["connection_status"],
            connection_message=row["connection_message"],
            connection_tested_at=row["connection_tested_at"],
        )


def add_company(db: Store, name: str, *, actor: str | None = None) -> Company:
    """Add a company; ``actor`` (who adds it) is written to the Change Log with it."""
    name = name.strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise HostError(f"a company name is 1 to {MAX_NAME} printable characters")
    if name.isdecimal():
        raise HostError("a company name cannot be only digits (digits refer to company ids)")
    with write(db):
        key = name_key(name)
        if db.execute(
            "SELECT 1 FROM companies WHERE name_key = :key OR name = :name", {"key": key, "name": name}
        ).fetchone():
            raise HostError(f"company {name!r} already exists")
        now = clock.now_iso()
        company_id = db.execute(
            "INSERT INTO companies (name, name_key, created_at) VALUES (:name, :key, :now) RETURNING id",
            {"name": name, "key": key, "now": now},
        ).fetchone()[0]
        db.execute(
            "INSERT INTO website_settings (company_id, updated_at) VALUES (:company_id, :now)",
            {"company_id": company_id, "now": now},
        )
        if actor is not None:
            audit.record(db, actor, "company added", company_id=company_id, target=name)
    return get_company(db, company_id)


def get_company(db: Store, ref: str | int) -> Company:
    """A company by id or by name (case-insensitive)."""
    if isinstance(ref, int) or str(ref).isdecimal():
        rows = list(db.query("SELECT * FROM companies WHERE id = :id", {"id": int(ref)}))
    else:
        rows = list(db.query("SELECT * FROM companies WHERE name_key = :key", {"key": name_key(str(ref))}))
    if not rows:
        raise NotFound(f"unknown company {str(ref)[:MAX_NAME]!r}")
    return Company.from_row(rows[0])


def list_companies(db: Store) -> list[dict[str, Any]]:
    return [
        {
            "id": row["id"],
            "name": row["name"],
            "store_plugin": row["store_plugin"],
            "allow_order_download": bool(row["allow_order_download"]),
            "allow_tracking_upload": bool(row["allow_tracking_upload"]),
            "connection_status": row["connection_status"],
            "plugin_missing": plugin_missing(row["store_plugin"]),
        }
        for row in db.query(
            "SELECT c.*, w.store_plugin, w.allow_order_download, w.allow_tracking_upload "
            "FROM companies c JOIN website_settings w ON w.company_id = c.id ORDER BY c.id"
        )
    ]


# -- Website General Settings ------------------------------------------------------------------


def website_settings(db: Store, company: Company) -> dict[str, Any]:
    # the connection's state as it is now (not as ``company`` was read), in the same statement
    row = db.execute(
        "SELECT w.store_type, w.store_plugin, w.allow_order_download, w.allow_tracking_upload, "
        f"{', '.join('w.' + label for label in website_options.LABELS)}, c.connection_status "
        "FROM website_settings w JOIN companies c ON c.id = w.company_id WHERE w.company_id = :company_id",
        {"company_id": company.id},
    ).fetchone()
    if row is None:
        raise NotFound(f"unknown company {company.name[:MAX_NAME]!r}")
    options = dict(zip(website_options.LABELS, row[4:-1], strict=True))
    for key in website_options.FLAGS:
        options[key] = bool(options[key])
    return {
        "company": company.name,
        "store_type": row[0],
        "store_plugin": row[1],
        "allow_order_download": bool(row[2]),
        "allow_tracking_upload": bool(row[3]),
        **options,
        "connection_status": row[-1],
        "plugin_missing": plugin_missing(row[1]),
    }


def plugin_missing(store_plugin: str | None) -> bool:
    """True when the company's store plugin is not installed (uninstalled, or failed to load)."""
    return bool(store_plugin) and store_plugin not in plugins.channels()


def update_website_settings(
    db: Store,
    company: Company,
    *,
    store_plugin: str | None = None,
    allow_order_download: bool | None = None,
    allow_tracking_upload: bool | None = None,
    options: dict[str, Any] | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """Change the settings given (None: left as they are); ``options``: Website General's other
    options by column (``host.records.website_options``), checked before anything is written. What
    changed is written to the Change Log under ``actor`` (when given)."""
    changes: dict[str, Any] = website_options.clean(options or {})
    if store_plugin is not None:
        store_plugin = plugins.resolve(store_plugin)  # refuses an unknown plugin before anything is written
        changes["store_plugin"] = store_plugin
    if allow_order_download is not None:
        changes["allow_order_download"] = int(allow_order_download)
    if allow_tracking_upload is not None:
        changes["allow_tracking_upload"] = int(allow_tracking_upload)
    if changes:
        with write(db):
            current = website_settings(db, company)
            after = {**current, **changes}
            website_options.check(after)
            if website_options.widens(current, after):
                # the orders skipped so far lie behind the cursor: Import Orders reads its window again
                db.execute(
                    "DELETE FROM cursors WHERE company_id = :company_id AND name = :name",
                    {"company_id": company.id, "name": COVERED_FROM},
                )
            # column names come from website_options.LABELS and this function, never from a request
            sets = ", ".join(f"{column} = :{column}" for column in changes)
            db.execute(
                f"UPDATE website_settings SET {sets}, updated_at = :updated_at WHERE company_id = :company_id",
                {**changes, "updated_at": clock.now_iso(), "company_id": company.id},
            )
            if store_plugin is not None and store_plugin != current["store_plugin"]:
                _reset_connection(db, company.id, "store plugin changed")
            if allow_order_download and not current["allow_order_download"]:
                db.execute(
                    "UPDATE companies SET next_download_at = :now WHERE id = :id",
                    {"now": clock.now_iso(), "id": company.id},
                )
            if actor is not None:
                now = website_settings(db, company)
                changed = {k: {"from": current[k], "to": now[k]} for k in changes if now[k] != current[k]}
                if changed:
                    audit.record(db, actor, "Website General Settings saved", company_id=company.id, details=changed)
    return website_settings(db, company)


def _reset_connection(db: Store, company_id: int, why: str) -> None:
    db.execute(
        "UPDATE companies SET connection_status = 'untested', connection_message = :message, "
        "settings_version = settings_version + 1 WHERE id = :id",
        {"message": f"Test Settings needed: {why}", "id": company_id},
    )


def chosen_plugin(db: Store, company: Company) -> str | None:
    """The company's Store Plugin, None while none is chosen (one column: no settings read)."""
    row = db.execute(
        "SELECT store_plugin FROM website_settings WHERE company_id = :company_id", {"company_id": company.id}
    ).fetchone()
    if row is None:
        raise NotFound(f"unknown company {company.name[:MAX_NAME]!r}")
    return row[0]


def store_plugin(db: Store, company: Company) -> str:
    plugin = chosen_plugin(db, company)
    if not plugin:
        raise HostError(
            f"company {company.name!r} has no store plugin; choose a Store Plugin in Website General Settings",
            cli_hint=f"cartplugin website-settings {company.name!r} --store-plugin NAME",
        )
    return plugin


# -- Cart General ----------------------------------------------------------------------------


def _stored_values(db: Store, company_id: int, channel: str) -> dict[str, str]:
    """The company's Cart General values, secrets decrypted."""
    return {
        key: secrets.unseal(db, value) if is_secret and value is not None else value
        for key, value, is_secret in db.execute(
            "SELECT key, value, is_secret FROM cart_settings WHERE company_id = :company_id AND channel = :channel",
            {"company_id": company_id, "channel": channel},
        ).fetchall()
    }


def _origin(value: str | None) -> tuple[str, str, int | None] | None:
    """Where a URL sends requests (``plugin_spec.http.origin``); None when unset."""
    if not value:
        return None
    try:
        return origin(value.strip())
    except BadData:  # an unreadable port: compared as typed
        return ("", value, None)


def _destinations(model: type[CartSettings], values: dict[str, str]) -> set[Any]:
    """The origins a plugin's requests go to with these settings: every ``*url`` field and a
    ``base_url`` property, defaults included (an empty URL still sends to the platform's host)."""
    try:
        settings: Any = model.model_validate(values)
    except ValidationError:  # incomplete settings: compare what was typed
        return {(key, _origin(value)) for key, value in values.items() if key.endswith("url")}
    names = [name for name in type(settings).model_fields if name.endswith("url")]
    if isinstance(getattr(type(settings), "base_url", None), property):
        names.append("base_url")
    return {(name, _origin(str(getattr(settings, name) or ""))) for name in names}


def _secret_fields(model: type[CartSettings]) -> set[str]:
    """Fields typed ``SecretStr``, optional ones (``SecretStr | None``) included."""
    return {
        name
        for name, field in model.model_fields.items()
        if field.annotation is SecretStr or SecretStr in typing.get_args(field.annotation)
    }


def describe_validation_error(exc: ValidationError, model: type[CartSettings]) -> str:
    """One line naming each bad field by its label; never echoes the value (it may be a secret)."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        key = str(error["loc"][0]) if error["loc"] else "settings"
        field = model.model_fields.get(key)
        label = f"{key} ({field.title})" if field is not None and field.title else key
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{label}: {message}")
    return "invalid Cart General settings: " + "; ".join(parts)


def cart_settings_model(db: Store, company: Company) -> CartSettings:
    """The company's Cart General values as an instance of its plugin's settings model."""
    channel = store_plugin(db, company)
    model = plugins.channel_info(channel).settings_model
    try:
        return model.model_validate(_stored_values(db, company.id, channel))
    except ValidationError as exc:
        raise InvalidSettings(describe_validation_error(exc, model)) from None


def show_cart_settings(db: Store, company: Company) -> dict[str, Any]:
    """Every field of the plugin's form with its label; secrets masked to their last 4 characters."""
    channel = store_plugin(db, company)
    model = plugins.channel_info(channel).settings_model
    stored = _stored_values(db, company.id, channel)
    secret_names = _secret_fields(model)
    fields = []
    for key, field in model.model_fields.items():
        value = stored.get(key)
        shown: Any = value
        if key in secret_names and value is not None:
            shown = mask(value)
        elif value is None and not field.is_required() and field.default is not None:
            shown = str(field.default)
        fields.append(
            {
                "key": key,
                "label": field.title or key,
                "value": shown,
                "secret": key in secret_names,
                "required": field.is_required(),
            }
        )
    # what staff may know of the tokens the channel's auth obtained: when, never what
    tokens = credentials.status(db, company.id, channel)
    return {"company": company.name, "store_plugin": channel, "fields": fields, "tokens": tokens}


def shared_account(db: Store, company: Company) -> list[str]:
    """Other companies that reach the same channel account: same store plugin, same Website URL
    and the same secret values. Compared decrypted, in memory; nothing of a key is shown."""
    channel = chosen_plugin(db, company)
    if not channel or plugin_missing(channel):
        return []
    secret_names = _secret_fields(plugins.channel_info(channel).settings_model)
    mine = _stored_values(db, company.id, channel)
    if not any(mine.get(k) for k in secret_names):
        return []

    def same(other: dict[str, str]) -> bool:
        return _origin(other.get("website_url")) == _origin(mine.get("website_url")) and all(
            hmac.compare_digest((other.get(k) or "").encode(), (mine.get(k) or "").encode()) for k in secret_names
        )

    names = []
    for other_id, other_name in db.execute(
        "SELECT c.id, c.name FROM companies c JOIN website_settings w ON w.company_id = c.id "
        "WHERE w.store_plugin = :channel AND c.id != :id ORDER BY c.id",
        {"channel": channel, "id": company.id},
    ).fetchall():
        if same(_stored_values(db, other_id, channel)):
            names.append(other_name)
    return names


def update_cart_settings(
    db: Store, company: Company, pairs: dict[str, str], *, actor: str | None = None
) -> dict[str, Any]:
    """Validate the stored values merged with ``pairs`` as a whole; save all or nothing.

    An empty value clears an optional field. The Change Log (under ``actor``, when given) names
    the fields set and their values, a secret only as ``replaced``.
    """
    channel = store_plugin(db, company)
    model = plugins.channel_info(channel).settings_model
    unknown = sorted(set(pairs) - set(model.model_fields))
    if unknown:
        known = ", ".join(model.model_fields)
        raise InvalidSettings(f"unknown Cart General setting {', '.join(map(repr, unknown))} (known: {known})")
    merged = _stored_values(db, company.id, channel)
    secrets_fields = _secret_fields(model)
    before = dict(merged)
    for key, value in pairs.items():
        if value.strip() == "":
            merged.pop(key, None)
        else:
            merged[key] = value.strip()
    try:
        validated = model.model_validate(merged)
    except ValidationError as exc:
        raise InvalidSettings(describe_validation_error(exc, model)) from None
    # a stored secret would follow the requests to another host: whoever changes where they go
    # (a URL, or a setting such as a region that picks the host) gives the secret again
    kept = sorted(name for name in secrets_fields if before.get(name) and name not in pairs)
    if kept and _destinations(model, before) != _destinations(model, merged):
        titles = ", ".join(model.model_fields[name].title or name for name in kept)
        raise InvalidSettings(
            f"this change sends {titles} to another host: type it again with the change",
            cli_hint=f"--set {kept[0]}=- asks for it at a hidden prompt, "
            f"--set-file {kept[0]}=PATH reads it from a file",
        )
    secret_keys = secrets_fields
    normalised = {
        key: (value.get_secret_value() if isinstance(value, SecretStr) else str(value))
        for key, value in validated.model_dump().items()
        if key in merged and value is not None
    }
    with write(db):
        where = {"company_id": company.id, "channel": channel}
        db.execute("DELETE FROM cart_settings WHERE company_id = :company_id AND channel = :channel", where)
        for key, value in normalised.items():
            stored = secrets.seal(db, value) if key in secret_keys else value
            db.execute(
                "INSERT INTO cart_settings (company_id, channel, key, value, is_secret) "
                "VALUES (:company_id, :channel, :key, :value, :is_secret)",
                {**where, "key": key, "value": stored, "is_secret": int(key in secret_keys)},
            )
        if pairs:
            _reset_connection(db, company.id, "Cart General settings changed")
        if set(pairs) - HOST_FIELDS:
            # another URL or key may be another account: its orders are read from the start
            db.execute("DELETE FROM cursors WHERE company_id = :company_id AND channel = :channel", where)
        if actor is not None and pairs:
            details = {k: ("replaced" if k in secret_keys else normalised.get(k, "")) for k in pairs}
            audit.record(db, actor, "Cart General saved", company_id=company.id, details=details)
    return show_cart_settings(db, company)


def settings_version(db: Store, company: Company) -> int:
    return db.execute("SELECT settings_version FROM companies WHERE id = :id", {"id": company.id}).fetchone()[0]


def record_test_result(db: Store, company: Company, version: int, ok: bool, message: str) -> bool:
    """Record the outcome of Test Settings run on settings ``version``.

    Returns False (and records nothing) when the settings changed while the test ran: the
    result speaks of settings that are no longer there.
    """
    with write(db):
        cursor = db.execute(
            "UPDATE companies SET connection_status = :status, connection_message = :message, "
            "connection_tested_at = :now, next_download_at = COALESCE(next_download_at, :now) "
            "WHERE id = :id AND settings_version = :version",
            {
                "status": "established" if ok else "failed",
                "message": message,
                "now": clock.now_iso(),
                "id": company.id,
                "version": version,
            },
        )
        return cursor.rowcount == 1
