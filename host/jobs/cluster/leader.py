"""The scheduler of a cluster: one leader among the worker processes, chosen by PostgreSQL.

Every cluster worker runs a :class:`Scheduler` thread; each asks for the session advisory lock
``pg_try_advisory_lock(SCHEDULER_LOCK)`` and only the holder ticks (queues the downloads and
uploads that are due, then :func:`engine.sweep` and :func:`engine.prune`). The lock belongs to
the holder's connection, so when that process dies, or its connection drops (database restart),
PostgreSQL releases it and another worker takes over at its next try, within one ``interval``.
A process frozen while it leads (SIGSTOP, a stuck VM) keeps its connection open, and its kernel
answers the TCP keepalives: so the leader's session carries ``idle_session_timeout``
(:meth:`Scheduler.lead_lost_after`), and the server ends it, lock and all, once the leader has
said nothing for that long; the next leader takes over at its next try.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg

from host.jobs import scheduler
from host.jobs.cluster import ORPHAN_AFTER_SECONDS, engine
from host.store import pg
from host.store.db import connect
from plugin_spec import pgurl

log = logging.getLogger("cartplugin.cluster")

#: pg_try_advisory_lock key of the cluster's scheduler
SCHEDULER_LOCK = 0x63617274_0002


class Scheduler:
    """Ticks the schedule every ``interval`` seconds while this process holds the lock."""

    def __init__(
        self,
        url: str,
        *,
        interval: float,
        download_every: float,
        echo: Callable[[str], Any] | None = None,
        lead_lost_after: float | None = None,
    ):
        self.url, self.interval, self.download_every, self.echo = url, interval, download_every, echo
        #: seconds of silence after which the server ends this leader's session (and its lock)
        self.lead_lost_after = lead_lost_after or max(3 * interval, 2 * ORPHAN_AFTER_SECONDS, 10.0)
        self.leading = False
        self.rounds = 0
        self._conn: psycopg.Connection | None = None

    def _say(self, text: str) -> None:
        log.info(text)
        if self.echo:
            self.echo(text)

    def try_lead(self) -> bool:
        """Hold the scheduler lock (kept until this connection ends); True while we hold it."""
        if self._conn is None or self._conn.closed:
            self.leading = False
            self._conn = pgurl.connect(self.url, autocommit=True, connect_timeout=5, **pg.connect_kwargs(self.url))
            # a round speaks on this session at least once an interval; a frozen leader does not
            self._conn.execute(f"SET idle_session_timeout = {round(self.lead_lost_after * 1000)}")
        if self.leading:  # the lock lives as long as this connection: make sure it still does
            self._conn.execute("SELECT 1")
        else:
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", [SCHEDULER_LOCK]).fetchone()
            self.leading = bool(row and row[0])
            if self.leading:
                self._say("scheduler: this worker leads the cluster's schedule")
                db = connect(self.url, create=False)
                try:
                    scheduler.pull_schedule_forward(db, self.download_every)
                finally:
                    db.close()
        return self.leading

    def round(self) -> dict[str, int]:
        """One round if we lead: queue what is due, then sweep; {} when another worker leads."""
        if not self.try_lead():
            return {}
        assert self._conn is not None
        db = connect(self.url, create=False)
        try:
            queued = scheduler.tick(db, download_every=self.download_every)
        finally:
            db.close()
        swept = engine.sweep(self._conn)
        pruned = engine.prune(self._conn)
        self.rounds += 1
        if any(queued.values()):
            self._say(f"tick: queued {queued['download_orders']} download(s), {queued['upload_tracking']} upload(s)")
        if swept["requeued"] or swept["failed"] or swept["deferred"]:
            self._say(
                f"sweep: {swept['requeued']} job(s) of stopped workers queued again, {swept['failed']} failed, "
                f"{swept['deferred']} given to the engine"
            )
        if pruned:
            log.info("removed %d finished procrastinate task(s) past their window", pruned)
        return {**queued, **swept, "pruned": pruned}

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()  # releases the lock at once for the next leader
            except psycopg.Error:
                pass
        self._conn, self.leading = None, False

    def serve(self, stop: threading.Event) -> None:
        """Rounds until ``stop``; a lost database connection is reopened at the next round."""
        try:
            while not stop.is_set():
                try:
                    self.round()
                except (psycopg.Error, OSError) as exc:
                    if self.leading:
                        self._say(f"scheduler: lost the database ({type(exc).__name__}); trying again")
                    self.close()
                except Exception:  # a round that failed must not end the schedule
                    log.exception("scheduler round failed; next round in %s s", self.interval)
                stop.wait(self.interval)
        finally:
            self.close()
