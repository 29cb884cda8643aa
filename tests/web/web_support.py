"""The web admin on a free loopback port in a thread of the test process, and a signed-in
HTTP client for the tests that need no browser (module name unique on purpose)."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import requests
from werkzeug.serving import make_server

from host import users
from host.db import connect
from host.web import create_app

PASSWORD = "correct horse battery staple"
ROLES = {"ann": "admin", "sue": "support", "walt": "warehouse", "rita": "read-only"}


class WebServer:
    def __init__(self, db_path: Path):
        db = connect(db_path)
        for name, role in ROLES.items():
            users.add_user(db, name, role, PASSWORD)
        db.close()
        self.app = create_app(db_path)
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="web-admin", daemon=True)

    def __enter__(self) -> WebServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def signed_in(web: WebServer, name: str) -> tuple[requests.Session, str]:
    """A session signed in as ``name`` and a valid CSRF token of that session."""
    http = requests.Session()
    page = http.get(f"{web.url}/login", timeout=10)
    answer = http.post(
        f"{web.url}/login",
        data={"csrf_token": csrf_token(page.text), "name": name, "password": PASSWORD},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text
    return http, csrf_token(http.get(f"{web.url}/companies", timeout=10).text)
