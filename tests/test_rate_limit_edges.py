"""Edges of the toolkit's rate limits (plugin_spec/ratelimit.py) that no download shows: a
channel's figures written wrong, a wait's end in words wherever the host runs, and a bucket
in a shared file after a failure inside its transaction."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from plugin_spec import stopping
from plugin_spec.errors import RateLimitWait
from plugin_spec.ratelimit import Rate, RateLimiter, SharedTokenBucket, TokenBucket, wall_time


@pytest.mark.parametrize("burst", [0, -1, 2.5, "3"])
def test_a_burst_written_wrong_is_refused_with_the_value(burst):
    with pytest.raises(ValueError, match=rf"^a burst must be a whole number of at least 1, not {burst!r}$"):
        Rate(Decimal("0.5"), burst)


def test_a_rate_of_zero_is_refused_with_the_value():
    with pytest.raises(ValueError, match=r"^a rate must be above 0 requests per second, not 0$"):
        Rate(0)


def test_the_end_of_a_wait_is_told_in_utc_whatever_the_hosts_time_zone(monkeypatch):
    # 20:00 UTC is already tomorrow at UTC+14: the words must not depend on where the host runs
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    try:
        now = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)
        assert wall_time(datetime(2026, 12, 6, 21, 30, 5, tzinfo=UTC), now) == "21:30:05 UTC"
        assert wall_time(datetime(2026, 12, 7, 0, 0, 1, tzinfo=UTC), now) == "2026-12-07 00:00:01 UTC"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_failure_inside_a_shared_bucket_leaves_the_file_usable_by_the_next(tmp_path, monkeypatch):
    path = str(tmp_path / "cart.db-ratelimit")
    broken = SharedTokenBucket(path, "api|key", Rate(1, 5))

    def fail(*args):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(broken, "_decide", fail)
    with pytest.raises(RuntimeError, match="interrupted"):  # the failure itself, not a SQL error
        broken.try_take()
    # its transaction was rolled back: another process's bucket takes at once, no "database is locked"
    other = SharedTokenBucket(path, "api|key", Rate(1, 5))
    started = time.monotonic()
    assert other.try_take() is None
    assert time.monotonic() - started < 1


def test_a_slot_later_than_the_job_may_wait_is_refused_with_its_time_in_words():
    bucket = TokenBucket(Rate(Decimal("0.01"), 1))  # one now, the next in about 100 s
    bucket.name = "the listing rate limit"
    assert bucket.acquire() == 0
    deadline = datetime.now(UTC) + timedelta(seconds=30)
    with stopping.stop_when(None, wait_until=deadline), pytest.raises(RateLimitWait) as refused:
        bucket.acquire()
    until = refused.value.until
    assert deadline < until <= datetime.now(UTC) + timedelta(seconds=105)  # 100 s and the pacing margin
    assert str(refused.value) == (
        f"The listing rate limit allows the next request at {wall_time(until)}, later than this job may wait; not sent."
    )


def test_a_window_waits_its_own_length_and_a_margin_of_5_percent_at_most_a_quarter_second():
    # the margin absorbs the gap between our departures and the channel's arrivals; a bigger one
    # would slow every listing for nothing
    short = RateLimiter(limit=2, window=1.0)
    assert short.try_take() is None and short.try_take() is None
    assert 1.0 < short.try_take() <= 1.05
    long = RateLimiter(limit=1, window=60.0)
    assert long.try_take() is None
    assert 60.0 < long.try_take() <= 60.25


def test_the_shared_limiter_file_is_private_and_holds_no_digest_that_can_be_matched_to_a_key(tmp_path, monkeypatch):
    import hashlib
    import sqlite3

    from plugin_spec import ratelimit

    key, api = "bmp-live-key-0001", "https://api.example"
    idents = []
    for name in ("one", "two"):
        path = tmp_path / f"{name}-ratelimit"
        if name == "two":  # a file an older version left readable by everyone is made private
            path.touch(mode=0o644)
            path.chmod(0o644)
        monkeypatch.setenv(ratelimit.ENV_VAR, str(path))
        ratelimit.limiter_for(api, key, 5, 1.0).acquire()
        ratelimit.group_limiter(api, key, "orders", ratelimit.Rate(per_second=2, burst=1)).acquire()
        assert path.stat().st_mode & 0o077 == 0, oct(path.stat().st_mode)
        with sqlite3.connect(path) as stored:
            keys = {row[0] for row in stored.execute("SELECT key FROM rate_hits UNION SELECT key FROM rate_buckets")}
        assert len(keys) == 2
        plain = {hashlib.sha256(f"{api}\0{key}".encode()).hexdigest(),
                 hashlib.sha256(f"{api}\0{key}\0orders".encode()).hexdigest()}  # fmt: skip
        assert not keys & plain and not any(key in stored_key for stored_key in keys)
        idents.append(keys)
    assert not idents[0] & idents[1]  # each file its own salt: no digest is the same across installations
