"""The worker: runs the queue, ticking the scheduler (``host.jobs.scheduler``) between rounds.

Which job engine runs the jobs follows the database's backend (``ENGINES``): on SQLite the
local pool of threads or forked processes (``host.jobs.pool``), on PostgreSQL procrastinate
(``host.jobs.cluster``), so workers on several machines share the queue.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from host import clock, config
from host.errors import HostError
from host.jobs import scheduler
from host.jobs.pool import make_pool
from host.store.api import Error as StoreError
from host.store.db import backend_of, connect, file_identity

log = logging.getLogger("cartplugin.worker")


def run(
    db_path: str | Path,
    *,
    once: bool = False,
    interval: float = 30.0,
    max_workers: int = 4,
    processes: int = 1,
    download_every: float | None = None,
    echo: Any = None,
) -> None:
    """Tick and run the queue; with ``once`` a single round, else until SIGINT/SIGTERM.

    ``download_every`` (default: the setting) is the seconds between two automatic downloads
    of a company. The engine is the one ``ENGINES`` names for the database's backend.
    """
    if download_every is None:
        download_every = config.current().download_every
    engine = ENGINES[backend_of(db_path)]  # each engine opens (and checks) the database itself
    engine(db_path, once=once, interval=interval, max_workers=max_workers, processes=processes,
           download_every=download_every, echo=echo)  # fmt: skip


def run_cluster(
    db_path: str | Path,
    *,
    once: bool,
    interval: float,
    max_workers: int,
    processes: int,
    download_every: float,
    echo: Any,
) -> None:
    """Workers on several machines: procrastinate, each worker a process of its own (``processes``
    does not apply)."""
    try:
        from host.jobs.cluster.worker import run as run_procrastinate
    except ImportError as exc:
        raise HostError(
            f"a worker on PostgreSQL needs the postgresql extra ({exc.name} is missing): "
            "pip install 'cartplugin[postgresql]'"
        ) from None
    run_procrastinate(str(db_path), once=once, interval=interval, max_workers=max_workers,
                      download_every=download_every, echo=echo)  # fmt: skip


def run_local(
    db_path: str | Path,
    *,
    once: bool,
    interval: float,
    max_workers: int,
    processes: int,
    download_every: float,
    echo: Any,
) -> None:
    """The local engine: jobs run on ``max_workers`` background threads (in each of ``processes``
    job processes when more than 1, see ``host.jobs.pool``) while this thread ticks every
    ``interval`` seconds, so a long job of one company never holds up the schedule of the others.
    On SIGTERM running jobs stop at their next order or batch, commit and go back to the queue.
    A database deleted or replaced under the worker stops it with an error instead of a new empty one.
    """
    stop = threading.Event()
    if not once and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    if echo and not once:  # a service's output is read later, in a journal: each line says when
        plain_echo = echo
        echo = lambda text: plain_echo(f"{clock.now_iso()} {text}")  # noqa: E731
    pool = make_pool(db_path, max_workers=max_workers, processes=processes)
    on_finish = (lambda job, status: echo(f"job {job.id} {job.kind}: {status}")) if echo else None
    db = connect(db_path, create=False)
    identity = file_identity(db_path)
    scheduler.pull_schedule_forward(db, download_every)
    try:
        if once:
            queued = scheduler.tick(db, download_every=download_every)
            db.close()  # job processes are forked with no connection open (see host.jobs.pool)
            ran = pool.drain(on_finish=on_finish)
            if echo:
                echo(
                    f"tick: queued {queued['download_orders']} download(s), "
                    f"{queued['upload_tracking']} upload(s); ran {ran} job(s)"
                )
            return
        db.close()
        pool.start(stop, poll_seconds=min(interval, 1.0), on_finish=on_finish)
        db = connect(db_path, create=False)
        while not stop.is_set():
            pool.replace_dead()  # a job process that was killed: its job is requeued by this round's tick
            if file_identity(db_path) != identity:
                stop.set()
                raise HostError(
                    f"the database {str(db_path)!r} was deleted or replaced while the worker ran; stopped "
                    "(restore it, or start the worker again to use the new one)"
                )
            try:
                queued = scheduler.tick(db, download_every=download_every)
            except StoreError as exc:  # e.g. locked past the busy timeout: try again next round
                log.error("worker round failed: %s; next round in %s s", exc, interval)
            else:
                if echo and any(queued.values()):
                    echo(f"tick: queued {queued['download_orders']} download(s), {queued['upload_tracking']} upload(s)")
            stop.wait(interval)
    finally:
        stop.set()
        grace = config.current().stop_grace_seconds
        if not once and not pool.join(grace):
            log.warning("jobs still in a network call after %s s are left to the next worker", grace)
        db.close()


#: the job engine for each backend (``host.store.db.backend_of``)
ENGINES: dict[str, Callable[..., None]] = {"sqlite": run_local, "postgresql": run_cluster}
