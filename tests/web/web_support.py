"""The web admin on a free loopback port in a thread of the test process, a signed-in HTTP
client for the tests that need no browser, and a browser tab that takes screenshots (module
name unique on purpose)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import requests

from host.records import users
from host.store.db import connect
from host.web import create_app
from host.web.server import Running, ServerOptions

PASSWORD = "correct horse battery staple"
#: the x-api-key of the web tests' Back Market Pro sandbox
WEB_KEY = "bmp-web-key-5e8d1c0a77b3"
ROOT = Path(__file__).resolve().parents[2]
#: where the browser tests leave their screenshots (``make screenshots``: docs/screenshots)
SHOTS = ROOT / os.environ.get("CARTPLUGIN_SCREENSHOTS", "build/screenshots")
ROLES = {"ann": "admin", "sue": "support", "walt": "warehouse", "rita": "read-only"}


class WebServer:
    def __init__(self, db_target: Path):
        db = connect(db_target)
        for name, role in ROLES.items():
            users.add_user(db, name, role, PASSWORD)
        db.close()
        self.app = create_app(db_target)
        # the server `cartplugin serve` runs (waitress), on a free port, in this process
        self.running = Running(self.app, ServerOptions(port=0, access_log=False))
        self.url = f"http://127.0.0.1:{self.running.port}"

    def __enter__(self) -> WebServer:
        self.running.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.running.__exit__(*exc)


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


class Walk:
    """One browser tab that records every answer the server sent and takes the screenshots."""

    def __init__(self, browser, web):
        self.web = web
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.page = self.context.new_page()
        self.page.set_default_timeout(15000)
        self.bodies: list[str] = []
        self.urls: list[str] = []
        self.page.on("response", self._keep)

    def _keep(self, response) -> None:
        self.urls.append(response.url)
        if 300 <= response.status < 400:
            return
        try:
            self.bodies.append(response.text())
        except Exception:  # a body already discarded by a navigation: nothing was shown of it
            pass

    def go(self, path: str) -> None:
        self.page.goto(self.web.url + path)

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"))

    def sign_in(self, name: str) -> None:
        self.go("/login")
        self.page.fill("#name", name)
        self.page.fill("#password", PASSWORD)
        self.page.click("button:has-text('Sign in')")
        self.page.wait_for_url("**/companies")

    def sign_out(self) -> None:
        self.page.click("button:has-text('Sign out')")
        self.page.wait_for_url("**/login")

    def text(self, selector: str) -> str:
        return self.page.inner_text(selector).strip()


def after_test_settings(http: requests.Session, web: WebServer, company_id: int = 1, timeout: float = 20.0) -> str:
    """Cart General once its last Test Settings has answered (the job runs in the background)."""
    import time

    deadline = time.monotonic() + timeout
    while 'data-pending="yes"' in http.get(f"{web.url}/companies/{company_id}/test-settings", timeout=10).text:
        assert time.monotonic() < deadline, f"Test Settings still running after {timeout:g} s"
        time.sleep(0.05)
    return http.get(f"{web.url}/companies/{company_id}/cart-general", timeout=10).text
