"""`cartplugin serve` as operators run it: waitress in a subprocess, configured from flags or the
config file; slow clients cut off, no Server banner, plain or JSON access lines, HTTPS rules."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from click.testing import CliRunner

from host.cli.main import cli
from host.web import create_app


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(tmp_path: Path, *args: str, config: str = "") -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`cartplugin serve` on a free port (or the config file's), stopped on leaving."""
    port = _free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CARTPLUGIN_")}
    environ |= {"PYTHONUNBUFFERED": "1", "CARTPLUGIN_DB": str(tmp_path / "cart.db")}
    command = [sys.executable, "-m", "host", "serve", *args]
    if config:
        (tmp_path / "cartplugin.toml").write_text(config.replace("PORT", str(port)))
    else:
        command += ["--port", str(port)]
    server = subprocess.Popen(command, cwd=tmp_path, env=environ, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, server.communicate()
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.terminate()
        server.wait(timeout=10)


def _stderr(server: subprocess.Popen[str], requests_made: int = 1) -> str:
    """What the server wrote to stderr once it logged ``requests_made`` access lines (then stopped)."""
    assert server.stderr is not None
    os.set_blocking(server.stderr.fileno(), False)
    text, deadline = "", time.monotonic() + 15
    while text.count("cartplugin.access") < requests_made and time.monotonic() < deadline:
        text += server.stderr.read() or ""
        time.sleep(0.05)
    server.terminate()
    server.wait(timeout=10)
    return text + (server.stderr.read() or "")


def test_serve_answers_without_a_server_banner_and_logs_one_plain_line_a_request(tmp_path: Path) -> None:
    with serving(tmp_path) as (url, server):
        answer = requests.get(f"{url}/login?next=/orders", timeout=10)
        assert answer.status_code == 200 and "Sign in" in answer.text
        assert "Server" not in answer.headers
        assert "base-uri 'none'" in answer.headers["Content-Security-Policy"]
        assert "Strict-Transport-Security" not in answer.headers  # plain HTTP on loopback: no HSTS
        logged = _stderr(server)
    lines = [line for line in logged.splitlines() if "cartplugin.access" in line]
    assert len(lines) == 1, logged
    assert '127.0.0.1 "GET /login" 200' in lines[0] and "next=" not in lines[0]
    assert "\x1b" not in logged  # no colour codes for journald


def test_the_access_log_is_json_with_log_format_json(tmp_path: Path) -> None:
    with serving(tmp_path, config='log_format = "json"\nweb_port = PORT\n') as (url, server):
        requests.get(f"{url}/login", timeout=10)
        logged = _stderr(server)
    entries = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    access = [entry for entry in entries if entry["logger"] == "cartplugin.access"]
    assert len(access) == 1 and '"GET /login" 200' in access[0]["message"], logged


def test_a_slow_client_holds_no_thread_and_is_cut_off_after_the_timeout(tmp_path: Path) -> None:
    # one thread only: a thread-per-request server would be stuck behind the first half-sent request
    with serving(tmp_path, "--threads", "1", "--timeout", "2") as (url, _server):
        port = int(url.rsplit(":", 1)[1])
        slow = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(50)]
        for client in slow:
            client.sendall(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # the headers never end
        started = time.monotonic()
        assert requests.get(f"{url}/login", timeout=10).status_code == 200
        assert time.monotonic() - started < 5
        for client in slow:
            assert client.recv(100) == b""  # closed by the server
        cut_after = time.monotonic() - started
        for client in slow:
            client.close()
    assert 1 <= cut_after < 15, cut_after


def test_host_port_threads_and_timeout_come_from_the_config_file(tmp_path: Path) -> None:
    config = 'web_host = "127.0.0.1"\nweb_port = PORT\nweb_threads = 3\nweb_timeout = 7\n'
    with serving(tmp_path, config=config) as (url, server):
        assert requests.get(f"{url}/login", timeout=10).status_code == 200
        server.terminate()
        banner = server.communicate(timeout=10)[0]
    assert f"on {url}/" in banner and "3 threads" in banner and "cut off after 7 s" in banner


def test_forwarded_addresses_are_believed_from_the_trusted_proxy_only(tmp_path: Path) -> None:
    forwarded = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    with serving(tmp_path) as (url, server):
        requests.get(f"{url}/login", headers=forwarded, timeout=10)
        untrusted = _stderr(server)
    with serving(tmp_path, "--trusted-proxy", "127.0.0.1", "--secure-cookies") as (url, server):
        answer = requests.get(f"{url}/login", headers=forwarded, timeout=10)
        trusted = _stderr(server)
    assert "203.0.113.9" not in untrusted and '127.0.0.1 "GET /login"' in untrusted
    assert '203.0.113.9 "GET /login" 200' in trusted
    assert answer.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "Secure" in answer.headers["Set-Cookie"]


def test_listening_beyond_loopback_needs_the_flag_and_https_in_front(db_target: Path) -> None:
    runner = CliRunner()
    without_flag = runner.invoke(cli, ["--db", str(db_target), "serve", "--host", "0.0.0.0"])
    assert without_flag.exit_code == 1 and "--allow-remote" in without_flag.output
    in_clear = runner.invoke(cli, ["--db", str(db_target), "serve", "--host", "0.0.0.0", "--allow-remote"])
    assert in_clear.exit_code == 1
    assert in_clear.output.strip().splitlines() == [
        "Error: listening on 0.0.0.0 needs HTTPS in front: put a TLS proxy before it and pass --secure-cookies "
        "(and --trusted-proxy ADDRESS), or passwords and sessions would travel in clear"
    ]


def test_hsts_is_sent_only_when_https_is_in_front(db_target: Path) -> None:
    plain = create_app(db_target).test_client().get("/login")
    secure = create_app(db_target, secure_cookies=True).test_client().get("/login")
    assert "Strict-Transport-Security" not in plain.headers
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"
