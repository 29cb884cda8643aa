"""A deadline for everything a request does, retries and their pauses included
(``stopping.stop_when(..., deadline=...)``, set by Test Settings): the toolkit's HTTP session cuts
its timeouts to it, sleeps no backoff or Retry-After past it, and stops retrying there. Outside
such a scope the session retries as it always did. A real sandbox on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
from support import TOY_FAST, toy_api

from plugin_spec import TransientError, stopping
from plugin_spec.errors import RateLimited
from plugin_spec.sandbox import Reply
from plugin_spec.sandbox.api import ApiSandbox, Request

KEY = "deadline-key-4f5e6d7c"
#: the session's own patience: five retries, a real backoff, a Retry-After believed up to 60 s
PATIENT = dataclasses.replace(TOY_FAST, read_timeout=30.0, deadline=120.0, retries=5, backoff_factor=0.5)


class Slow(ApiSandbox):
    prefix = "/api"
    routes = [("GET", "/limited", "limited"), ("GET", "/busy", "busy"), ("GET", "/silent", "silent")]

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.released = threading.Event()

    def limited(self, request: Request) -> Reply:
        return Reply(429, {"request_id": "req-429"}, headers={"Retry-After": "30"})

    def busy(self, request: Request) -> Reply:
        return Reply(503, {"request_id": "req-503"})

    def silent(self, request: Request) -> Reply:
        self.released.wait(5)
        return Reply(200, {"ok": True})


@pytest.fixture
def slow():
    with Slow(api_key=KEY) as server:
        try:
            yield server
        finally:
            server.released.set()


def _within(seconds: float, call) -> tuple[BaseException, float]:
    started = time.monotonic()
    with stopping.stop_when(None, deadline=started + seconds), pytest.raises(Exception) as raised:
        call()
    return raised.value, time.monotonic() - started


def test_a_retry_after_longer_than_the_deadline_is_not_slept(slow):
    with toy_api(slow, KEY, PATIENT) as client:
        error, took = _within(1.0, lambda: client.request("GET", "/limited"))
    assert isinstance(error, RateLimited) and took < 1.5  # not 30 s, five times over
    assert len(slow.request_log()) <= 2


def test_the_backoff_stops_retrying_before_the_deadline(slow):
    with toy_api(slow, KEY, PATIENT) as client:
        error, took = _within(1.0, lambda: client.request("GET", "/busy"))
    assert isinstance(error, TransientError) and "HTTP 503" in str(error) and took < 1.5
    assert len(slow.request_log()) < 1 + PATIENT.retries  # the last retries would have ended past it


def test_a_silent_channel_is_cut_off_at_the_deadline_not_at_the_read_timeout(slow):
    with toy_api(slow, KEY, PATIENT) as client:
        error, took = _within(0.8, lambda: client.request("GET", "/silent"))
    assert isinstance(error, TransientError) and took < 1.3  # the read timeout is 30 s


def test_outside_a_deadline_every_retry_is_made(slow):
    quick = dataclasses.replace(PATIENT, backoff_factor=0.01, backoff_max=0.05)
    with toy_api(slow, KEY, quick) as client, pytest.raises(TransientError):
        client.request("GET", "/busy")
    assert len(slow.request_log()) == 1 + quick.retries
