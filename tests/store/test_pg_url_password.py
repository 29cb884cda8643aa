"""A PostgreSQL URL's password never reaches a message, whatever way it is written."""

from __future__ import annotations

import psycopg
import pytest

from host.errors import HostError
from host.store.db import display
from host.store.pg import PgDatabase
from plugin_spec import pgurl

SECRET = "s3%ZZcret"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:hunter2@db.internal:5432/cartplugin",
        "postgresql://db.internal/cartplugin?password=hunter2&sslmode=require",
        "postgresql://app:hunter%32@db.internal/cartplugin",  # hunter2, percent-encoded
    ],
)
def test_a_url_is_shown_with_its_password_masked(url):
    shown = display(url)
    assert "hunter" not in shown and "****" in shown
    assert "db.internal" in shown


def test_libpq_quoting_an_unreadable_password_is_masked_in_the_error():
    url = f"postgresql://app:{SECRET}@127.0.0.1:1/cartplugin"
    with pytest.raises(psycopg.Error) as caught:
        pgurl.connect(url, connect_timeout=2)
    assert SECRET not in str(caught.value) and "ZZ" not in str(caught.value)
    with pytest.raises(HostError) as opened:
        PgDatabase(url)
    assert SECRET not in str(opened.value) and "ZZ" not in str(opened.value)


def test_a_refused_connection_names_the_server_not_the_password():
    url = "postgresql://app:hunter2@127.0.0.1:1/cartplugin?password=hunter2"
    with pytest.raises(HostError) as opened:
        PgDatabase(url)
    assert "hunter2" not in str(opened.value)
