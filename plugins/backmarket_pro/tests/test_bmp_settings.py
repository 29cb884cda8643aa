"""Test Settings against a live sandbox: success, and a distinct actionable message per failure."""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from bmp_helpers import SECRET_KEY

from backmarket_pro import plugin
from backmarket_pro.sandbox import Sandbox
from backmarket_pro.settings import BackMarketProSettings


class _HtmlPage(BaseHTTPRequestHandler):
    """A web server that is not the API: what a mistyped Website URL usually reaches."""

    def do_GET(self) -> None:
        body = b"<html><body>Welcome to our shop</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def html_site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HtmlPage)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/sellers-prod"
    server.shutdown()
    server.server_close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/sellers-prod"


def check(website_url: str, key: str = SECRET_KEY):
    return plugin.cartplugin_test_settings(settings=BackMarketProSettings(website_url=website_url, x_api_key=key))


def test_success_names_the_account(sandbox: Sandbox, settings: BackMarketProSettings) -> None:
    result = plugin.cartplugin_test_settings(settings=settings)
    assert result.ok, result.message
    assert result.account_name == "Atelier Réemploi SAS"
    assert result.message == "Connected to Back Market Pro as Atelier Réemploi SAS"
    assert [(e["path"], e["key_ok"], e["status"]) for e in sandbox.request_log()] == [
        ("/sellers-prod/2024-03/seller-account", True, 200)
    ]


def test_second_account_is_its_own_seller(sandbox: Sandbox) -> None:
    sandbox.add_account("other-key-000000002", name="Nordic Refurb AB", orders=3, seed=5)
    result = check(sandbox.base_url, "other-key-000000002")
    assert result.ok and result.account_name == "Nordic Refurb AB"


def test_failures_have_distinct_actionable_messages_without_the_key(
    sandbox: Sandbox, html_site: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong_key = check(sandbox.base_url, "wrong-" + SECRET_KEY)
    unreachable = check(closed_port_url())
    not_json = check(html_site)
    wrong_path = check(sandbox.base_url.removesuffix("/sellers-prod") + "/elsewhere")

    results = [wrong_key, unreachable, not_json, wrong_path]
    assert not any(r.ok for r in results)
    assert len({r.message for r in results}) == len(results)
    assert "refused the x-api-key" in wrong_key.message
    assert "Could not reach" in unreachable.message and "Website URL" in unreachable.message
    assert "not with JSON" in not_json.message and "Website URL" in not_json.message
    assert "HTTP 404" in wrong_path.message and "Website URL" in wrong_path.message
    for result in results:
        assert SECRET_KEY not in result.message
    assert [e["key_ok"] for e in sandbox.request_log()][0] is False
    for record in caplog.records:
        assert SECRET_KEY not in record.getMessage()


def test_server_errors_after_retries_say_try_later(sandbox: Sandbox, settings: BackMarketProSettings) -> None:
    sandbox.set_faults(fail_5xx=True)
    result = plugin.cartplugin_test_settings(settings=settings)
    assert not result.ok and "server error (HTTP 503)" in result.message
    assert len(sandbox.request_log()) == 1 + plugin.client_options.retries


def test_five_xx_burst_is_retried(sandbox: Sandbox, settings: BackMarketProSettings) -> None:
    sandbox.set_faults(fail_5xx=2)
    result = plugin.cartplugin_test_settings(settings=settings)
    assert result.ok, result.message
    assert [e["status"] for e in sandbox.request_log()] == [503, 503, 200]


def test_dropped_connection_is_retried(sandbox: Sandbox, settings: BackMarketProSettings) -> None:
    sandbox.set_faults(drop_connection=1)
    assert plugin.cartplugin_test_settings(settings=settings).ok
    assert [(e["fault"], e["status"]) for e in sandbox.request_log()] == [("drop_connection", None), (None, 200)]


def test_slow_answer_times_out_and_is_retried(
    sandbox: Sandbox, settings: BackMarketProSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.set_faults(slow=1, slow_seconds=1.5)  # beyond the 0.6 s read timeout of the tests
    started = time.monotonic()
    assert plugin.cartplugin_test_settings(settings=settings).ok
    assert time.monotonic() - started < 1.4  # did not wait for the slow answer
    monkeypatch.setattr(plugin, "client_options", dataclasses.replace(plugin.client_options, retries=1))
    sandbox.set_faults(slow=True)
    result = plugin.cartplugin_test_settings(settings=settings)
    assert not result.ok and "did not answer" in result.message


def test_rate_limit_retry_after_is_waited_out(sandbox: Sandbox, settings: BackMarketProSettings) -> None:
    sandbox.set_faults(rate_limit=1, rate_window=1.0)
    assert plugin.cartplugin_test_settings(settings=settings).ok
    started = time.monotonic()
    result = plugin.cartplugin_test_settings(settings=settings)
    waited = time.monotonic() - started
    assert result.ok, result.message
    assert [e["status"] for e in sandbox.request_log()] == [200, 429, 200]
    assert waited >= 0.9  # Retry-After: 1 was honoured, not the tiny test backoff


def test_malformed_body_is_reported(sandbox: Sandbox, settings: BackMarketProSettings) -> None:
    sandbox.set_faults(malformed_body=1)
    result = plugin.cartplugin_test_settings(settings=settings)
    assert not result.ok and "malformed JSON body" in result.message  # not "wrong URL": it may be cut off
