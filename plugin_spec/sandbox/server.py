"""The HTTP plumbing of a channel sandbox: a threaded server on 127.0.0.1 that asks
``handle`` for a :class:`Reply` and sends it, including the hostile answers of the fault
switches (a trickle, an endless body, a body cut short, a dropped connection)."""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

#: the largest request body a sandbox reads
MAX_REQUEST_BODY = 1_000_000
#: the most requests a request log keeps (the oldest are forgotten)
REQUEST_LOG_MAX = 100_000


@dataclass
class Reply:
    """One answer: JSON ``body``, or ``raw`` bytes as they are, or ``chunks`` streamed."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    drop: bool = False
    #: streamed instead of ``body``: each item is written and flushed as it comes
    chunks: Iterator[bytes] | None = None
    #: with ``chunks``: the Content-Length to announce (None = chunked transfer encoding)
    length: int | None = None

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.body is None:
            return b""
        return encode_json(self.body)


def encode_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class SandboxServer:
    """Lifecycle of a sandbox: ``start`` serves in a background thread, ``stop`` ends it."""

    thread_name = "channel-sandbox"
    server_version = "ChannelSandbox/1.0"

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host, self.port = host, port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._log_lock = threading.Lock()
        self._requests: collections.deque[dict[str, Any]] = collections.deque(maxlen=REQUEST_LOG_MAX)
        self._in_flight = 0
        self._peak_in_flight = 0
        self._arrivals: collections.deque[float] = collections.deque(maxlen=REQUEST_LOG_MAX)

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes, host: str) -> Reply:
        raise NotImplementedError

    @property
    def root_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        host, port = self._server.server_address[:2]
        assert isinstance(host, str)  # an AF_INET server's address is (host text, port)
        return f"http://{host}:{port}"

    @property
    def control_url(self) -> str:
        """Where the ``/_sandbox/`` inspection and control endpoints are (no key needed)."""
        return self.root_url + "/_sandbox"

    def start(self) -> Any:
        """Bind and serve in a background thread; returns self."""
        if self._server is None:
            self._stopping.clear()
            server = _Server((self.host, self.port), _Handler)
            server.sandbox = self
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever, args=(0.05,), name=self.thread_name, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (answers in flight are abandoned)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes the sleeps of latency, slow and trickle faults
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the sandbox stops."""
        if seconds > 0:
            self._stopping.wait(seconds)

    def request_log(self) -> list[dict[str, Any]]:
        """The API requests answered so far, oldest first (what each sandbox records; never a secret)."""
        with self._log_lock:
            return [dict(entry) for entry in self._requests]

    def clear_request_log(self) -> None:
        with self._log_lock:
            self._requests.clear()

    def log_request(self, entry: dict[str, Any]) -> None:
        with self._log_lock:
            self._requests.append(entry)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def traffic(self) -> dict[str, Any]:
        """``peak_in_flight``: the most requests being answered at once; ``arrivals``: when each
        request arrived (``time.monotonic()``, oldest first), since the start or ``clear_traffic``."""
        with self._log_lock:
            return {"peak_in_flight": self._peak_in_flight, "arrivals": list(self._arrivals)}

    def clear_traffic(self) -> None:
        with self._log_lock:
            self._peak_in_flight = self._in_flight
            self._arrivals.clear()

    def _arrive(self) -> None:
        with self._log_lock:
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
            self._arrivals.append(time.monotonic())

    def _leave(self) -> None:
        with self._log_lock:
            self._in_flight -= 1


def run_in_foreground(server: SandboxServer, lines: list[str], echo: Callable[[str], None]) -> None:
    """Serve until Ctrl-C, after printing ``lines`` (the URL and the masked key)."""
    for line in lines:
        echo(line)
    echo("Press Ctrl-C to stop.")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        echo("Stopping.")
    finally:
        server.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # benchmarks open many connections at once
    sandbox: SandboxServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # clients that hang up mid-answer are normal here (timeouts, refused huge bodies)
        log.debug("sandbox connection from %s ended abruptly", client_address, exc_info=True)


class _HeaderMap(Mapping[str, str]):
    """A request's headers as the read-only mapping ``handle`` takes, looked up case-insensitively."""

    def __init__(self, message: Message) -> None:
        self._message = message

    def __getitem__(self, name: str) -> str:
        value = self._message.get(name)
        if value is None:
            raise KeyError(name)
        return str(value)

    def __iter__(self) -> Iterator[str]:
        return iter(self._message.keys())

    def __len__(self) -> int:
        return len(self._message)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a client's session reuses its connection
    timeout = 30  # an idle keep-alive connection frees its thread after this
    # Status line, headers and a small body leave in one write, and TCP_NODELAY sends it at
    # once; unbuffered, Nagle held the body until the client's delayed ACK of the headers.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    server: _Server

    @property
    def server_version(self) -> str:  # type: ignore[override]
        return self.server.sandbox.server_version

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_REQUEST_BODY:
            self._send(Reply(413, {"error": {"code": "body_too_large", "message": "Request body too large."}}))
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        sandbox = self.server.sandbox
        sandbox._arrive()
        try:
            reply = sandbox.handle(method, self.path, _HeaderMap(self.headers), body, host)
        except Exception:  # a sandbox bug must answer 500, not hang the client
            log.exception("sandbox failed on %s %s", method, urlsplit(self.path).path)
            reply = Reply(500, {"error": {"code": "internal_error", "message": "The sandbox failed; see its log."}})
        finally:
            sandbox._leave()  # counted until its answer is ready (latency included)
        if reply.drop:
            self.close_connection = True  # close the socket without a single byte of answer
            return
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        payload = b"" if reply.chunks is not None else reply.encode()
        self.send_response(reply.status)
        if (payload or reply.chunks is not None) and "Content-Type" not in reply.headers:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        if reply.chunks is None:
            self.send_header("Content-Length", str(len(payload)))
        elif reply.length is not None:
            self.send_header("Content-Length", str(reply.length))
        else:
            self.send_header("Transfer-Encoding", "chunked")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            if reply.chunks is None:
                self.wfile.write(payload)
                return
            self.wfile.flush()
            for chunk in reply.chunks:
                if self.server.sandbox.stopping:
                    break
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if reply.length is None else chunk)
                self.wfile.flush()
            self.close_connection = True  # a streamed fault never leaves a connection to reuse
        except (BrokenPipeError, ConnectionResetError):
            # the client gave up (a timeout, a refused body): nothing to tell it
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        # the stdlib writes every request to stderr; the request log is the place for that
        log.debug("sandbox: " + format, *args)
