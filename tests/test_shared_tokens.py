"""OAuth 2.0 tokens in the host: one token per company shared by every process (counted at the
channel's token endpoint), a refresh token the channel rotates kept across jobs, the tokens
encrypted at rest, and staff shown when a token was renewed, never the token.

The channel is ``oauth_channel`` over the ``oauth_shop`` sandbox; worker processes load it
through an entry point written for the test (a ``.dist-info`` folder on PYTHONPATH), as they
load any installed plugin.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import oauth_channel
import pytest
import support
from oauth_shop import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, OAuthShop
from spy_plugin import SpySettings
from support import Cli

from host.store.db import connect
from plugin_spec import ChannelInfo, TestResult, TransientError, hookimpl

TESTS = Path(__file__).resolve().parent
COMPANY = "Token Traders"


@pytest.fixture
def registered():
    with support.registered(oauth_channel, "oauth_shop") as plugin:
        yield plugin


def _entry_point(tmp_path: Path) -> str:
    """A folder on PYTHONPATH that makes ``oauth_channel`` an installed cartplugin plugin."""
    site = tmp_path / "site"
    info = site / "cartplugin_oauth_shop-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cartplugin-oauth-shop\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[cartplugin]\noauth_shop = oauth_channel\n")
    return os.pathsep.join([str(site), str(TESTS)])


def _set_up(run, shop: OAuthShop, tmp_path: Path) -> None:
    run("companies", "add", COMPANY)
    run("website-settings", COMPANY, "--store-plugin", "oauth_shop", "--allow-order-download",
        "--allow-tracking-upload")  # fmt: skip
    (tmp_path / "secret").write_text(CLIENT_SECRET)
    (tmp_path / "refresh").write_text(REFRESH_TOKEN)
    run("cart-settings", COMPANY, "--set", f"api_url={shop.base_url}", "--set", f"token_url={shop.token_url}",
        "--set", f"client_id={CLIENT_ID}", "--set-file", f"client_secret={tmp_path / 'secret'}",
        "--set-file", f"refresh_token={tmp_path / 'refresh'}")  # fmt: skip
    assert "Connection established" in run("test-settings", COMPANY).output


class Processes:
    def __init__(self, db, tmp_path: Path):
        self.db = str(db)
        self.env = {**os.environ, "PYTHONPATH": _entry_point(tmp_path), "CARTPLUGIN_LOG_LEVEL": "DEBUG",
                    "CARTPLUGIN_RETRY_BASE_SECONDS": "0.1"}  # fmt: skip
        self.outputs: list[str] = []

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "host", "--db", self.db, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, env=self.env, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def finish(self, proc: subprocess.Popen, *, stop: bool = False) -> int:
        if stop:
            proc.terminate()
        out, _ = proc.communicate(timeout=60)
        self.outputs.append(out)
        return proc.returncode


def _stored(db_target) -> list[tuple]:
    db = connect(db_target)
    try:
        return db.execute("SELECT name, value, version FROM channel_credentials").fetchall()
    finally:
        db.close()


def _order_count(db_target) -> int:
    db = connect(db_target)
    try:
        return db.execute("SELECT count(*) FROM orders").fetchone()[0]
    finally:
        db.close()


def test_two_workers_and_an_import_renewing_at_once_share_one_new_token(
    db_target, run_on, registered, tmp_path: Path
) -> None:
    with OAuthShop(orders=12) as shop:
        _set_up(run_on, shop, tmp_path)
        assert shop.tokens.mints() == 1  # Test Settings
        shop.tokens.revoke_access_tokens()
        # no token is issued until the import and a worker's download have both been refused the
        # stored one: both then need a new token at once
        shop.tokens.hold()
        procs = Processes(db_target, tmp_path)
        workers = [procs.start("worker", "--interval", "0.2", "--download-every", "0") for _ in range(2)]
        importer = procs.start("import-orders", COMPANY)
        try:
            both_refused = support.wait_until(lambda: shop.tokens.stats.expired_refusals >= 2, 30)
            shop.tokens.release()
            assert both_refused, shop.tokens.describe()
            assert procs.finish(importer) == 0, procs.outputs[-1]
            assert support.wait_until(lambda: _order_count(db_target) == 12, 30), (
                _order_count(db_target),
                procs.outputs,
            )
        finally:
            shop.tokens.release()
            for worker in workers:
                procs.finish(worker, stop=True)
        # one of them minted, the other waited for its token
        assert shop.tokens.mints() == 2, shop.tokens.describe()
        assert shop.tokens.stats.refused == 0
        [(name, value, version)] = _stored(db_target)
        assert (name, version) == ("oauth2", 2)
        assert value.startswith("fernet:")
        for text in [value, *procs.outputs]:
            for secret in (CLIENT_SECRET, REFRESH_TOKEN, *shop.tokens._issued):
                assert secret not in text


def test_a_refresh_token_the_channel_rotates_is_kept_from_one_job_to_the_next(
    db_target, run_on, registered, tmp_path: Path
) -> None:
    with OAuthShop(rotate=True, orders=6) as shop:
        _set_up(run_on, shop, tmp_path)
        procs = Processes(db_target, tmp_path)
        for _ in range(3):
            shop.tokens.revoke_access_tokens()
            assert procs.finish(procs.start("import-orders", COMPANY)) == 0, procs.outputs[-1]
        assert shop.tokens.mints() == 4
        assert REFRESH_TOKEN not in shop.tokens.refresh_tokens  # spent by the first refresh
        assert len(shop.tokens.refresh_tokens) == 1  # the live one: the host holds it, encrypted
        shown = run_on("cart-settings", COMPANY).output
        assert "Access token (oauth2): renewed " in shown and "valid until" in shown
        for secret in (REFRESH_TOKEN, *shop.tokens.refresh_tokens, *shop.tokens._issued):
            assert secret not in shown
        assert _order_count(db_target) == 6


def test_a_revoked_refresh_token_fails_test_settings_with_what_to_do_and_no_secret(
    run, registered, tmp_path: Path
) -> None:
    with OAuthShop() as shop:
        shop.tokens.refresh_tokens.clear()  # the seller revoked the app's authorisation
        run("companies", "add", COMPANY)
        run("website-settings", COMPANY, "--store-plugin", "oauth_shop")
        (tmp_path / "secret").write_text(CLIENT_SECRET)
        (tmp_path / "refresh").write_text(REFRESH_TOKEN)
        run("cart-settings", COMPANY, "--set", f"api_url={shop.base_url}", "--set", f"token_url={shop.token_url}",
            "--set", f"client_id={CLIENT_ID}", "--set-file", f"client_secret={tmp_path / 'secret'}",
            "--set-file", f"refresh_token={tmp_path / 'refresh'}")  # fmt: skip
        result = run("test-settings", COMPANY, ok=False)
        assert result.exit_code == 1
        assert "refused the refresh token (invalid_grant" in result.output
        assert "Authorise the app again" in result.output
        assert REFRESH_TOKEN not in result.output and CLIENT_SECRET not in result.output


@pytest.fixture
def run_on(db_target):
    return Cli(db_target)


class _LeakyChannel:
    """Stores a token in the host's credential store, then fails the download naming it."""

    TOKEN = "at-leaky-token-0123456789"

    @hookimpl
    def cartplugin_channel_info(self):
        return ChannelInfo(name="leaky", display_name="Leaky", version="1", settings_model=SpySettings)

    @hookimpl
    def cartplugin_test_settings(self, settings):
        return TestResult(ok=True, message="ok")

    @hookimpl
    def cartplugin_download_orders(self, settings, since, unfulfilled_only, credentials):
        credentials.begin_refresh("oauth2", 0, 30)
        credentials.finish_refresh("oauth2", 0, {"access_token": self.TOKEN}, None, "o")
        raise TransientError(f"the channel refused {self.TOKEN}; try again later")


def test_a_job_message_never_shows_a_token_the_channel_s_auth_stored(run, db_target, tmp_path) -> None:
    with support.registered(_LeakyChannel(), "leaky"):
        run("companies", "add", "Leaky Co")
        run("website-settings", "Leaky Co", "--store-plugin", "leaky", "--allow-order-download")
        (tmp_path / "token").write_text("spy-token-00001")
        run("cart-settings", "Leaky Co", "--set-file", f"token={tmp_path / 'token'}")
        run("test-settings", "Leaky Co")
        result = run("import-orders", "Leaky Co", ok=False)
        db = connect(db_target)
        try:
            stored = [m for (m,) in db.execute("SELECT message FROM job_logs").fetchall()]
            summaries = [s for (s,) in db.execute("SELECT summary FROM jobs").fetchall() if s]
        finally:
            db.close()
        assert any("the channel refused ****6789" in m for m in stored), stored
        for text in [result.output, *stored, *summaries]:
            assert _LeakyChannel.TOKEN not in text
