"""``cartplugin worker`` when the database is PostgreSQL: a procrastinate worker plus the
cluster's scheduler (led by one worker at a time, see :mod:`.leader`).

Start as many as needed, on as many machines: each runs up to ``max_workers`` jobs at once
(procrastinate's concurrency, sync tasks on threads). SIGINT/SIGTERM: running jobs stop at
their next order or batch, commit and go back to the queue; the worker then unregisters. A lost
database connection (restart, failover) is retried: the job pool checks each connection before
use, and the worker loop itself starts again after a pause.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from host import clock, config
from host.jobs.cluster import engine, schema
from host.jobs.cluster.leader import Scheduler
from host.store.db import connect

log = logging.getLogger("cartplugin.cluster")

#: pause before a worker whose database went away starts its loop again
RESTART_PAUSE_SECONDS = 2.0


def _run_to_end(work: Coroutine[Any, Any, int]) -> int:
    """``asyncio.run(work)``; from a thread that already runs an event loop (an async caller, a
    browser driven by Playwright's sync API), on a thread of its own, waited for."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cartplugin-once") as pool:
        return pool.submit(asyncio.run, work).result()


def prepare(url: str) -> None:
    """The host schema (migrations) and the engine's schema and bridge, both up to date."""
    connect(url).close()
    schema.ensure(url)


def run(
    url: str,
    *,
    once: bool = False,
    interval: float = 30.0,
    max_workers: int = 4,
    download_every: float = 300.0,
    echo: Callable[[str], Any] | None = None,
    stop_grace: float | None = None,
) -> None:
    prepare(url)
    engine.stopping.clear()
    if echo and not once:
        plain_echo = echo
        echo = lambda text: plain_echo(f"{clock.now_iso()} {text}")  # noqa: E731
    engine.report_to((lambda job, status: echo(f"job {job.id} {job.kind}: {status}")) if echo else None)
    try:
        scheduler = Scheduler(url, interval=interval, download_every=download_every, echo=None if once else echo)
        grace = config.current().stop_grace_seconds if stop_grace is None else stop_grace
        if once:
            queued = scheduler.round()
            scheduler.close()
            ran = _run_to_end(_work(url, max_workers=max_workers, wait=False, grace=grace))
            if echo:
                echo(
                    f"tick: queued {queued.get('download_orders', 0)} download(s), "
                    f"{queued.get('upload_tracking', 0)} upload(s); ran {ran} job(s)"
                )
            return
        stop = threading.Event()
        thread = threading.Thread(target=scheduler.serve, args=(stop,), name="cartplugin-scheduler", daemon=True)
        thread.start()
        try:
            asyncio.run(_work(url, max_workers=max_workers, wait=True, grace=grace, stop=stop, echo=echo))
        finally:
            stop.set()
            thread.join(10)
    finally:
        engine.report_to(None)


async def _work(
    url: str,
    *,
    max_workers: int,
    wait: bool,
    grace: float,
    stop: threading.Event | None = None,
    echo: Callable[[str], Any] | None = None,
) -> int:
    """Run procrastinate's worker until stopped (or, without ``wait``, until the queue is empty
    now); returns how many tasks it ran."""
    app = engine.make_app(url, pool_size=max_workers + 2)
    ran = 0
    loop = asyncio.get_running_loop()
    current: asyncio.Task[None] | None = None

    def on_signal() -> None:
        engine.stopping.set()
        if stop is not None:
            stop.set()
        if current is not None:
            current.cancel()

    if wait:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
    loop.set_exception_handler(_task_errors)
    async with app.open_async():
        while True:
            before = engine.runs()
            current = asyncio.create_task(
                app.run_worker_async(
                    queues=[schema.QUEUE],
                    concurrency=max_workers,
                    wait=wait,
                    name="cartplugin",
                    install_signal_handlers=False,
                    shutdown_graceful_timeout=grace,
                    fetch_job_polling_interval=1.0,
                    update_heartbeat_interval=engine.HEARTBEAT_SECONDS,
                    stalled_worker_timeout=engine.STALLED_WORKER_SECONDS,
                )
            )
            try:
                await current
            except asyncio.CancelledError:
                if engine.stopping.is_set():
                    break
                raise
            except Exception as exc:  # the database went away under the worker: start again
                if not wait:
                    raise
                log.warning("worker lost the database (%s: %s); starting again", type(exc).__name__, exc)
                if echo:
                    echo(f"worker: lost the database ({type(exc).__name__}); starting again")
                await asyncio.sleep(RESTART_PAUSE_SECONDS)
                continue
            ran += engine.runs() - before
            if not wait or engine.stopping.is_set():
                break
    return ran


#: procrastinate's answer when a task's end is recorded after the sweep ended the task
_GIVEN_BACK = 'Job was not found or not in "doing"'


def _task_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A task that ran on after the sweep gave its job to another worker (this process was
    frozen or cut off past the orphan window) cannot record its end: one line says so, instead
    of an unretrieved exception's traceback. Anything else goes to asyncio's own handler."""
    exc: BaseException | None = context.get("exception")
    while exc is not None and _GIVEN_BACK not in str(exc):
        exc = exc.__cause__
    if exc is None:
        loop.default_exception_handler(context)
        return
    log.warning(
        "a task of this worker ended after the sweep had given its job back (this worker was presumed "
        "dead); its end is not recorded"
    )
