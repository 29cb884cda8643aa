"""The host's settings: one model, read from a TOML file, ``CARTPLUGIN_*`` variables and flags.

Each value comes from the first of: a command-line flag, a ``CARTPLUGIN_<NAME>`` variable,
the config file, the default. The config file is the first that exists of:

1. ``--config PATH`` or ``$CARTPLUGIN_CONFIG`` (then it must exist),
2. ``./cartplugin.toml``,
3. ``$XDG_CONFIG_HOME/cartplugin/config.toml`` (``~/.config/cartplugin/config.toml``),
4. ``/etc/cartplugin/config.toml``.

A relative ``db`` or ``secret_key_file`` in a config file is relative to that file, elsewhere
to the working directory; both are made absolute at once, so a service and a person at the
terminal never open two different databases by starting in two different folders. A ``db``
that is a ``postgresql://`` URL is kept as it is (docs/scale-out.md).

Plugin-loading and debugging switches (``CARTPLUGIN_LOAD_PLUGINS``, ``CARTPLUGIN_TRACE_PLUGINS``,
``CARTPLUGIN_FAILPOINTS``) stay plain variables: they belong to one run, not to an installation.
"""

from __future__ import annotations

import os
import threading
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from host.errors import HostError
from host.store import pg
from host.store.db import display, is_database_url

ENV_PREFIX = "CARTPLUGIN_"
CONFIG_ENV = "CARTPLUGIN_CONFIG"


class Settings(BaseSettings):
    """Host settings (never a channel's: those are each company's Cart General)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)

    db: Path | str = Field(Path("cartplugin.db"), description="SQLite database file, or a postgresql:// URL")
    secret_key_file: Path | None = Field(
        None, description="key that encrypts secrets (default: <database>.key beside it)"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("WARNING", description="log records to stderr")
    log_format: Literal["text", "json"] = Field("text", description="text, or one JSON object a line for collectors")
    download_every: float = Field(300.0, ge=0, le=86400, description="seconds between automatic downloads of a company")
    recent_days: int = Field(30, ge=1, le=3650, description="days Import Orders looks back without --since")
    download_batch: int = Field(200, ge=1, le=100000, description="orders per transaction")
    upload_batch: int = Field(200, ge=1, le=100000, description="shipments per upload hook call")
    retry_base_seconds: float = Field(2.0, ge=0, le=3600, description="first job retry delay (doubles per attempt)")
    job_budget_seconds: float = Field(900.0, gt=0, description="seconds a job runs before it commits and yields")
    job_retention_days: float = Field(
        10.0,
        gt=0,
        le=3650,
        description="days a finished Queued Job and its log are kept before the worker deletes them",
    )
    change_log_retention_days: float = Field(
        730, ge=0, le=36500, description="days Change Log entries are kept (0: for ever); the worker deletes older ones"
    )
    test_settings_seconds: float = Field(
        10.0, gt=0, le=300, description="seconds Test Settings may take in all, retries included"
    )
    stop_grace_seconds: float = Field(5.0, ge=0, le=600, description="seconds a stopping worker waits for its jobs")
    # what the host sets on each of its PostgreSQL connections (host.store.pg.Session)
    pg_lock_timeout_seconds: float = Field(
        60.0, gt=0, le=3600, description="PostgreSQL: seconds a write waits for the write lock, then fails unwritten"
    )
    pg_idle_in_transaction_seconds: float = Field(
        30.0, gt=0, le=3600, description="PostgreSQL: the server ends a session idle this long inside a transaction"
    )
    pg_keepalives_idle: int = Field(30, ge=1, le=7200, description="PostgreSQL: seconds of silence before keepalives")
    pg_keepalives_interval: int = Field(10, ge=1, le=600, description="PostgreSQL: seconds between two keepalives")
    pg_keepalives_count: int = Field(3, ge=1, le=100, description="PostgreSQL: unanswered keepalives that end it")
    pg_tcp_user_timeout_seconds: float = Field(
        60.0, gt=0, le=3600, description="PostgreSQL: seconds sent data may stay unacknowledged"
    )
    debug: bool = Field(False, description="show the traceback behind an internal error")
    # `cartplugin serve` (the web admin); its flags override these
    web_host: str = Field("127.0.0.1", min_length=1, description="address the web admin listens on")
    web_port: int = Field(8000, ge=1, le=65535, description="port of the web admin")
    web_threads: int = Field(8, ge=1, le=256, description="requests the web admin answers at once")
    web_db_pool_size: int = Field(
        4, ge=1, le=100, description="PostgreSQL: connections the web admin keeps open and shares (SQLite: unused)"
    )
    web_timeout: float = Field(30.0, ge=1, le=3600, description="seconds before a silent or slow client is cut off")
    web_secure_cookies: bool = Field(False, description="HTTPS in front: cookies over HTTPS only, and HSTS")
    web_trusted_proxy: str | None = Field(
        None, description="address of the TLS proxy whose X-Forwarded-For / -Proto headers are believed"
    )
    web_trusted_proxy_count: int = Field(1, ge=1, le=10, description="proxies in front, each adding X-Forwarded-For")
    web_session_hours: float = Field(8.0, gt=0, le=720, description="a web session ends this long after sign-in")
    web_idle_minutes: float = Field(60.0, gt=0, le=43200, description="a web session ends after this long idle")
    web_access_log: bool = Field(True, description="one line a request on stderr (text or JSON, as log_format)")

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _any_case(cls, value: Any, info: Any) -> Any:
        """``info``, ``Info`` and ``INFO`` alike, wherever the value comes from (flag, variable, file)."""
        if isinstance(value, str):
            return value.strip().upper() if info.field_name == "log_level" else value.strip().lower()
        return value

    @field_validator("db", mode="before")
    @classmethod
    def _path_or_url(cls, value: Any) -> Any:
        """A postgresql:// URL stays text; anything else is a SQLite file's path."""
        if isinstance(value, str) and not is_database_url(value):
            return Path(value)
        return value

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _FileSource(settings_cls)


class _FileSource(PydanticBaseSettingsSource):
    """The values of the config file in use (see ``find_config_file``)."""

    def get_field_value(self, field, field_name):  # pragma: no cover - __call__ does the work
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_file_values)


_file_values: dict[str, Any] = {}
_LOAD_LOCK = threading.Lock()


def find_config_file(explicit: str | os.PathLike | None = None) -> Path | None:
    """The config file in use, or None; a named file that does not exist is an error."""
    named = explicit or os.environ.get(CONFIG_ENV)
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise HostError(f"config file {str(path)!r} does not exist (named by --config or ${CONFIG_ENV})")
        return path.absolute()
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    for candidate in (
        Path("cartplugin.toml"),
        Path(xdg) / "cartplugin" / "config.toml",
        Path("/etc/cartplugin/config.toml"),
    ):
        if candidate.is_file():
            return candidate.absolute()
    return None


def _read_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        with open(path, "rb") as handle:
            values = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise HostError(f"cannot read config file {str(path)!r}: {exc}") from None
    unknown = sorted(set(values) - set(Settings.model_fields))
    if unknown:
        named = ", ".join(repr(name) for name in unknown)
        raise HostError(
            f"config file {str(path)!r}: unknown setting{'s' if len(unknown) > 1 else ''} {named} "
            f"(known: {', '.join(Settings.model_fields)})"
        )
    for key in ("db", "secret_key_file"):
        if isinstance(values.get(key), str) and not is_database_url(values[key]):
            values[key] = str((path.parent / Path(values[key]).expanduser()).absolute())
    return values


class Loaded:
    """Settings with the file they were read from and where each value came from."""

    def __init__(self, settings: Settings, path: Path | None, file_values: dict[str, Any], flags: dict[str, Any]):
        self.settings, self.path, self.file_values, self.flags = settings, path, file_values, flags

    def source(self, name: str) -> str:
        if name in self.flags:
            return "flag"
        if ENV_PREFIX + name.upper() in os.environ:
            return f"${ENV_PREFIX}{name.upper()}"
        if name in self.file_values:
            return str(self.path)
        return "default"

    def key_file_in_use(self) -> str:
        """The key file the host reads when none is named: beside a SQLite database."""
        if isinstance(self.settings.db, str):
            return "(none: required with a PostgreSQL database)"
        from host.records.secrets import key_file_beside

        return str(key_file_beside(self.settings.db))

    def rows(self) -> list[dict[str, Any]]:
        """Every setting as shown to a person: secrets masked, paths absolute."""
        rows = []
        for name, field in Settings.model_fields.items():
            value = getattr(self.settings, name)
            if isinstance(value, SecretStr):
                value = "****" if value.get_secret_value() else ""
            elif isinstance(value, Path):
                value = str(value)
            elif name == "db" and isinstance(value, str):
                value = display(value)  # a password in the URL is masked like every secret
            elif name == "secret_key_file" and value is None:
                value = self.key_file_in_use()
            rows.append({"name": name, "value": value, "source": self.source(name), "description": field.description})
        return rows


def load(config_file: str | os.PathLike | None = None, **flags: Any) -> Loaded:
    """Read the settings now; flags given as None are left to the other sources."""
    global _file_values
    flags = {k: v for k, v in flags.items() if v is not None}
    path = find_config_file(config_file)
    file_values = _read_file(path)
    # the file's values reach the settings source through a module global: one load at a time
    # (job threads read the settings too)
    with _LOAD_LOCK:
        _file_values = file_values
        try:
            settings = Settings(**flags)
        except ValidationError as exc:
            problems = []
            for error in exc.errors():  # every bad setting at once, not one a try
                name = ".".join(str(p) for p in error["loc"]) or "?"
                problems.append(f"setting {name!r} ({_where(name, flags, path, file_values)}): {error['msg']}")
            raise HostError("; ".join(problems)) from None
        finally:
            _file_values = {}
    updates: dict[str, Any] = {
        "db": settings.db if isinstance(settings.db, str) else settings.db.expanduser().absolute()
    }
    if settings.secret_key_file is not None:
        updates["secret_key_file"] = settings.secret_key_file.expanduser().absolute()
    settings = settings.model_copy(update=updates)
    return Loaded(settings, path, file_values, flags)


def _where(name: str, flags: dict[str, Any], path: Path | None, file_values: dict[str, Any]) -> str:
    if name in flags:
        return "from a flag"
    if ENV_PREFIX + name.upper() in os.environ:
        return f"from ${ENV_PREFIX}{name.upper()}"
    if name in file_values:
        return f"from {path}"
    return "default"


#: the settings a command loaded (flags and ``--config`` included); None outside a command
_in_use: Settings | None = None


def use(settings: Settings | None) -> Settings | None:
    """Make ``settings`` what ``current()`` answers in this process (and in the job processes
    forked from it) until ``use`` is called again; returns the settings in use before, so a
    caller that runs inside another (a test's CliRunner) can put them back."""
    global _in_use
    previous, _in_use = _in_use, settings
    if settings is not None and settings.secret_key_file is not None:
        # the key file is also named to the processes the host starts (and read by host.records.secrets)
        os.environ["CARTPLUGIN_SECRET_KEY_FILE"] = str(settings.secret_key_file)
    return previous


def current() -> Settings:
    """The settings in force, read where a value is used (never copied into module globals, which
    would keep the value of the moment they were imported): the ones a command loaded, else read
    now from the same sources. A bad value falls back to the default here; the CLI, which loads
    the same sources, reports it as an error."""
    global _read_now
    if _in_use is not None:
        return _in_use
    try:
        sources = _sources()
    except (HostError, OSError):
        return Settings.model_construct()
    cached = _read_now
    if cached is not None and cached[0] == sources:
        return cached[1]
    try:
        settings = load().settings
    except HostError:
        settings = Settings.model_construct()
    _read_now = (sources, settings)
    return settings


#: what ``current()`` read outside a command, with the state of the sources it read it from:
#: reading the settings costs a few milliseconds (pydantic-settings), a job asks several times
_read_now: tuple[tuple[Any, ...], Settings] | None = None


def _sources() -> tuple[Any, ...]:
    """What the settings read now depend on, cheap to compare: the variables, the config file
    in use and its bytes (a few hundred; a modification time can miss two writes in one clock
    tick), and the directory relative paths start from."""
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.upper().startswith(ENV_PREFIX)))
    path = find_config_file()
    file = (str(path), path.read_bytes()) if path is not None else None
    return env, file, os.getcwd(), os.environ.get("HOME")


def postgresql_session() -> pg.Session:
    """The settings of each PostgreSQL connection the host opens, as now configured."""
    settings = current()
    return pg.Session(
        lock_timeout=settings.pg_lock_timeout_seconds,
        idle_in_transaction=settings.pg_idle_in_transaction_seconds,
        keepalives_idle=settings.pg_keepalives_idle,
        keepalives_interval=settings.pg_keepalives_interval,
        keepalives_count=settings.pg_keepalives_count,
        tcp_user_timeout=settings.pg_tcp_user_timeout_seconds,
    )


# the store sits below the settings (it cannot import them): it asks this function at each connection
pg.use_session(postgresql_session)
