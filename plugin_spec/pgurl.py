"""A PostgreSQL URL's password kept out of what people and logs see.

libpq quotes the part of a URL it cannot read in its error messages, password included, and a
URL may carry the password in its user part (``postgresql://user:pw@host/db``) or as a
parameter (``?password=pw``). :func:`connect` opens a connection with psycopg and raises its
errors (same class) with every spelling of the password replaced by ``****``; :func:`display`
masks a URL for messages. Used by the host's PostgreSQL store and engine, and the limiter.
:func:`session_kwargs` are the arguments that keep a frozen or vanished process from holding
locks (lock and idle-in-transaction timeouts, TCP keepalives).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeGuard
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow

MASK = "****"
#: what names a PostgreSQL database rather than a SQLite file
SCHEMES = ("postgresql://", "postgres://")


def is_url(target: object) -> TypeGuard[str]:
    """True for a ``postgresql://`` (or ``postgres://``) URL; anything else is a SQLite path."""
    return isinstance(target, str) and target.startswith(SCHEMES)


def _passwords(url: str) -> list[str]:
    found: list[str] = []
    try:
        parts = urlsplit(url)
        raw_netloc = parts.netloc.rpartition("@")[0]
        if ":" in raw_netloc:
            raw = raw_netloc.partition(":")[2]
            found += [raw, unquote(raw)]
        found += [value for key, value in parse_qsl(parts.query, keep_blank_values=True) if key == "password"]
        found += [raw for raw in parts.query.split("&") if raw.startswith("password=")]
    except ValueError:
        pass
    return sorted({p.removeprefix("password=") for p in found if p}, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """``text`` with the password of ``url`` (raw, decoded or as a parameter) masked."""
    for secret in _passwords(url):
        text = text.replace(secret, MASK)
    return text


def display(url: str) -> str:
    """The URL as shown to a person: its password masked, wherever it is written."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return scrub(url, url)
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.partition(':')[0]}:{MASK}@{hostport}"
    query = parts.query
    if "password=" in query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if k == "password" else v) for k, v in pairs], safe="*")
    return scrub(urlunsplit(parts._replace(netloc=netloc, query=query)), url)


def connect(url: str, **kwargs: Any) -> psycopg.Connection[TupleRow]:
    """``psycopg.connect(url, **kwargs)``; an error is raised again, same class, password masked."""
    import psycopg

    try:
        return psycopg.connect(url, **kwargs)
    except psycopg.Error as exc:
        raise type(exc)(scrub(str(exc), url)) from None


def session_kwargs(
    url: str,
    *,
    lock_timeout: float = 60.0,
    idle_in_transaction: float = 30.0,
    keepalives_idle: int = 30,
    keepalives_interval: int = 10,
    keepalives_count: int = 3,
    tcp_user_timeout: float = 60.0,
) -> dict[str, Any]:
    """psycopg's connection arguments that bound how long a session holds or waits for a lock.

    ``lock_timeout``: a statement waits that long for a lock, then fails (its transaction with it);
    ``idle_in_transaction``: the server ends a session that sits inside a transaction without a
    statement that long (a process frozen or stuck there), releasing its locks; keepalives and
    ``tcp_user_timeout``: a machine that died or was cut off is noticed within about a minute.
    Seconds throughout; options the URL already carries (``options=-c ...``) are kept.
    """
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    options = (
        f"-c lock_timeout={round(lock_timeout * 1000)} "
        f"-c idle_in_transaction_session_timeout={round(idle_in_transaction * 1000)}"
    )
    try:
        own = conninfo_to_dict(url).get("options")
    except psycopg.Error:  # a URL libpq cannot read: connect() says so, the password masked
        own = None
    return {
        "options": f"{own} {options}" if own else options,
        "keepalives": 1,
        "keepalives_idle": keepalives_idle,
        "keepalives_interval": keepalives_interval,
        "keepalives_count": keepalives_count,
        "tcp_user_timeout": round(tcp_user_timeout * 1000),
    }
