"""The HTTP server behind ``cartplugin serve``: waitress, for production as for tests.

Why waitress (measured, docs/operations.md): it reads each request whole in its event loop
before a thread runs the app, so slow or half-sent clients hold no thread and are cut off after
``timeout`` seconds of silence; a page is served at once behind 300 half-sent requests, where a
thread-per-request server (gunicorn's sync and gthread workers) needs a buffering proxy in front.
It runs on any platform in one process, which is what SQLite wants.

It sends no ``Server`` banner, writes one access line a request without colour codes, as text or
JSON (``host.logs``), and believes ``X-Forwarded-*`` headers only from a named trusted proxy.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from waitress import wasyncore
from waitress.server import BaseWSGIServer, MultiSocketServer, create_server

#: one line a request: client, method, path, status, bytes, milliseconds
access = logging.getLogger("cartplugin.access")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    threads: int = 8
    timeout: float = 30.0
    connection_limit: int = 1000
    trusted_proxy: str | None = None
    trusted_proxy_count: int = 1
    access_log: bool = True


def with_access_log(app: WsgiApp) -> WsgiApp:
    """Log each answered request once, after its body is sent (never a query string: it may hold
    a search term a person typed, and a password reset token one day)."""

    def logged(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        status: list[str] = ["-"]

        def recording(code: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            status[0] = code.split(" ", 1)[0]
            return start_response(code, headers, *exc)

        sent = 0
        try:
            for chunk in app(environ, recording):
                sent += len(chunk)
                yield chunk
        finally:
            access.info(
                '%s "%s %s" %s %d %.1fms',
                environ.get("REMOTE_ADDR", "-"),
                environ.get("REQUEST_METHOD", "-"),
                environ.get("PATH_INFO", "-"),
                status[0],
                sent,
                (time.perf_counter() - started) * 1000,
            )

    return logged


def build(app: WsgiApp, options: ServerOptions) -> BaseWSGIServer | MultiSocketServer:
    """A bound waitress server (``effective_port`` is the port in use, also for port 0)."""
    proxy: dict[str, Any] = {}
    if options.trusted_proxy:
        proxy = {
            "trusted_proxy": options.trusted_proxy,
            "trusted_proxy_count": options.trusted_proxy_count,
            "trusted_proxy_headers": {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"},
            "clear_untrusted_proxy_headers": True,
        }
    return create_server(
        with_access_log(app) if options.access_log else app,
        host=options.host,
        port=options.port,
        threads=options.threads,
        channel_timeout=options.timeout,
        cleanup_interval=max(1, min(30, int(options.timeout / 2))),
        connection_limit=options.connection_limit,
        ident="",  # no Server header
        expose_tracebacks=False,
        **proxy,
    )


def port_of(server: BaseWSGIServer | MultiSocketServer) -> int:
    """The port in use (chosen by the system for port 0), also when a name gave several sockets."""
    found: Any = server
    if isinstance(server, MultiSocketServer):
        return int(found.effective_listen[0][1])
    return int(found.effective_port)


class Running:
    """A server on a thread of this process, stopped on leaving the ``with`` block (tests, demos)."""

    def __init__(self, app: WsgiApp, options: ServerOptions) -> None:
        self.server = build(app, options)
        self.port = port_of(self.server)
        self.thread = threading.Thread(target=self.server.run, name="web-admin", daemon=True)

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        server: Any = self.server
        server.task_dispatcher.shutdown()
        sockets = getattr(server, "_map", None) or server.map
        # closed by the loop's own thread (woken by its trigger): closing them from here while it
        # waits on them gave "Bad file descriptor"; the loop ends once it has no socket left
        try:
            server.trigger.pull_trigger(lambda: wasyncore.close_all(sockets))
        except OSError:  # the trigger is closed already (the loop ended): nothing waits on the sockets
            wasyncore.close_all(sockets)
        self.thread.join(10)
