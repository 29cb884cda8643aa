"""``python -m bench.web_server``: the WSGI servers `cartplugin serve` could run, side by side.

For each server installed (Werkzeug's development server, waitress as `cartplugin serve` runs it,
gunicorn's gthread workers if gunicorn is installed): requests a second and p99 of the sign-in
page with 8 keep-alive clients, the same for a bare WSGI app on the same server (its floor: the
ratio is what the web admin adds), and how long one request waits behind 300 half-sent ones
(slow clients). docs/operations.md holds the figures and the choice.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

APP = """
import sys
from host.web import create_app
app = create_app(sys.argv[-1] if sys.argv[-1].endswith('.db') else {db!r})
def bare(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/html"), ("Content-Length", "966")])
    return [b"x" * 966]
"""


def _command(server: str, port: int, app: str) -> list[str]:
    bin_dir = Path(sys.executable).parent
    if server == "werkzeug":
        code = (
            f"from werkzeug.serving import run_simple; from app import {app}; "
            f"run_simple('127.0.0.1', {port}, {app}, threaded=True)"
        )
        return [sys.executable, "-c", code]
    if server == "waitress":
        code = (
            f"from app import {app}; from host.web.server import ServerOptions, build; "
            f"build({app}, ServerOptions(port={port}, access_log=False)).run()"
        )
        return [sys.executable, "-c", code]
    return [
        str(bin_dir / "gunicorn"),
        "-b",
        f"127.0.0.1:{port}",
        "-w",
        "2",
        "-k",
        "gthread",
        "--threads",
        "4",
        f"app:{app}",
    ]


def _start(command: list[str], folder: Path, port: int) -> subprocess.Popen[bytes]:
    environ = {**os.environ, "PYTHONPATH": str(folder)}
    process = subprocess.Popen(command, cwd=folder, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{command[0]} did not start")


def _load(port: int, seconds: float, clients: int = 8) -> tuple[float, float]:
    done: list[float] = []
    stop = time.monotonic() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < stop:
            started = time.perf_counter()
            connection.request("GET", "/login")
            answer = connection.getresponse()
            answer.read()
            if answer.will_close:
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            done.append(time.perf_counter() - started)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.sort()
    return len(done) / seconds, done[int(len(done) * 0.99)] * 1000


def _behind_slow_clients(port: int, count: int = 300) -> str:
    slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
    for client in slow:
        client.sendall(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    started = time.perf_counter()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        connection.request("GET", "/login")
        connection.getresponse().read()
        return f"{(time.perf_counter() - started) * 1000:.0f} ms"
    except OSError as exc:
        return f"not answered ({type(exc).__name__})"
    finally:
        for client in slow:
            client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="load per measurement")
    args = parser.parse_args()
    servers = ["werkzeug", "waitress"] + (["gunicorn"] if importlib.util.find_spec("gunicorn") else [])
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        db = folder / "cart.db"
        subprocess.run([sys.executable, "-m", "host", "--db", str(db), "companies", "add", "Bench"], check=True,
                       capture_output=True)  # fmt: skip
        (folder / "app.py").write_text(APP.format(db=str(db)))
        print(
            f"{'server':10s} {'page req/s':>10s} {'p99 ms':>7s} {'bare req/s':>10s} {'ratio':>6s}  behind 300 half-sent"
        )
        for number, server in enumerate(servers):
            figures = []
            for offset, app in enumerate(("bare", "app")):
                port = 18400 + number * 2 + offset
                process = _start(_command(server, port, app), folder, port)
                try:
                    _load(port, 1)
                    figures.append(_load(port, args.seconds))
                    if app == "app":
                        slow = _behind_slow_clients(port)
                finally:
                    process.terminate()
                    process.wait(10)
            (bare, _), (page, p99) = figures
            print(f"{server:10s} {page:10.0f} {p99:7.1f} {bare:10.0f} {bare / page:6.2f}  {slow}")


if __name__ == "__main__":
    main()
