"""Queued Jobs in worker processes: N forked children, each running a ``LocalPool`` of threads.

Importing orders is CPU-bound Python (mapping, validation, upsert), and threads share one core
under the GIL; a worker with ``--processes N`` runs its jobs in N child processes instead, each
with its own SQLite connections and ``threads`` threads for the latency-bound part. Claims stay
what they are (``jobs.claim`` in ``BEGIN IMMEDIATE``): one job per company and kind, never run
twice, whichever process claims it. ``jobs.claimed_by`` carries the child's pid, so a child that
is killed leaves its job to ``jobs.recover_orphans`` on the worker's next round.

The interface is the thread pool's (``drain``, ``start``, ``join``) plus ``replace_dead``; a job
engine of its own (a distributed one) only needs ``jobs.claim`` + ``runner.execute``.

**Why fork.** Children start in a few milliseconds and inherit what the parent set up: the
plugins on the plugin manager (installed ones and those a test registered in-process), the
settings the command put in use (``config.use``), ``CARTPLUGIN_*`` variables, failpoints and the
log level. A plugin's in-memory state is the child's own from then on (a test that reads what
its plugin object recorded runs the worker with ``--processes 1``). The rules fork asks for:

* a child never uses a SQLite connection or an HTTP session of its parent: ``LocalPool`` opens
  its own per thread, and the child ends with ``os._exit`` (``multiprocessing`` does that), so
  nothing inherited is finalised in it;
* the worker forks its children before it opens its own connection, and never inside a
  transaction (SQLite keeps per-process lock bookkeeping that a child would inherit);
* the parent keeps its database open until its children ended: ``join`` kills a child still in
  a network call after the grace period, before the worker closes its connection;
* the plugins are loaded before the fork, so no child waits on a lock a parent thread held.

Log records of a child are sent to the parent and written by the parent's handlers (stderr,
UTC, text or JSON as configured), and a job's end is reported to the parent for ``on_finish``.
Where there is no fork (Windows) jobs run on threads only.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from host import config
from host.channel import plugins
from host.jobs.queue import Job
from host.jobs.runner import LocalPool
from host.store.db import backend_of, prepare_rate_limits, rate_limit_target

log = logging.getLogger("cartplugin.pool")

#: the default number of job processes is the number of cores, at most this many
MAX_DEFAULT_PROCESSES = 4
#: the variable naming the rate-limit file every process of one database shares
RATE_LIMIT_ENV = "CARTPLUGIN_RATE_LIMIT_DB"
#: seconds a stopping parent waits beyond the children's own grace before it kills them
KILL_MARGIN_SECONDS = 2.0

OnFinish = Callable[[Job, str], None]


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


if sys.platform != "win32":
    from multiprocessing import popen_fork, util
    from multiprocessing.context import ForkProcess

    _Launcher: Any = popen_fork.Popen
    if sys.version_info < (3, 13):  # 3.13 changed the launcher (atexit in the child): not copied

        class _ForkPopen(popen_fork.Popen):
            """``multiprocessing``'s fork launcher (``popen_fork.Popen._launch`` of CPython 3.11
            and 3.12, pinned by ``test_process_pool``), except that a failed ``os.fork`` closes the
            two pipes opened for it: the standard one leaves them open, four descriptors per failed
            fork, which a worker retrying a fork every round (``replace_dead``) would pile up until
            it could open nothing."""

            def _launch(self, process_obj: Any) -> None:
                code = 1
                parent_r, child_w = os.pipe()
                try:
                    child_r, parent_w = os.pipe()
                except OSError:
                    os.close(parent_r)
                    os.close(child_w)
                    raise
                try:
                    self.pid = os.fork()
                except OSError:
                    for fd in (parent_r, child_w, child_r, parent_w):
                        os.close(fd)
                    raise
                if self.pid == 0:
                    try:
                        os.close(parent_r)
                        os.close(parent_w)
                        code = process_obj._bootstrap(parent_sentinel=child_r)
                    finally:
                        os._exit(code)
                else:
                    os.close(child_w)
                    os.close(child_r)
                    self.finalizer = util.Finalize(self, util.close_fds, (parent_r, parent_w))  # type: ignore[attr-defined]
                    self.sentinel = parent_r

        _Launcher = _ForkPopen

    class _JobProcess(ForkProcess):
        """A forked job process, started by ``_ForkPopen`` where it applies."""

        @staticmethod
        def _Popen(process_obj: Any) -> Any:  # noqa: N802 - multiprocessing's name
            return _Launcher(process_obj)


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


def default_processes() -> int:
    """The number of cores, at most ``MAX_DEFAULT_PROCESSES``; 1 where there is no fork."""
    return max(1, min(cores(), MAX_DEFAULT_PROCESSES)) if can_fork() else 1


def make_pool(db_path: str | Path, *, max_workers: int = 4, processes: int = 1) -> LocalPool | ProcessPool:
    """``processes`` 1 (or no fork on this system): today's thread pool of ``max_workers``
    threads; more: that many processes with ``max_workers`` threads each. On PostgreSQL the
    thread pool too: more machines and processes are the cluster engine's (docs/scale-out.md)."""
    if processes <= 1 or not can_fork() or not FORKS[backend_of(db_path)]:
        return LocalPool(db_path, max_workers=max_workers)
    return ProcessPool(db_path, processes=processes, threads=max_workers)


#: whether a backend's jobs run in forked processes (``ProcessPool``) here: SQLite's do; on
#: PostgreSQL more processes and machines are the cluster engine's
FORKS = {"sqlite": True, "postgresql": False}


@dataclass
class _Child:
    process: BaseProcess
    reader: Connection
    ran: int = 0
    finished_jobs: int = 0
    done: bool = False  # said goodbye (its count is in ``ran``)
    eof: bool = False
    ended: bool = False
    told_to_stop: bool = False
    exitcode: int | None = None


class ProcessPool:
    """Runs queued jobs in ``processes`` forked processes, each a ``LocalPool(threads)``."""

    def __init__(self, db_path: str | Path, processes: int | None = None, threads: int = 4):
        if not can_fork():
            raise RuntimeError("job processes need the fork start method (use processes=1 here)")
        if not FORKS[backend_of(db_path)]:
            raise ValueError("job processes run on a SQLite database; PostgreSQL has the cluster engine")
        self.db_path = Path(db_path)
        self.processes = processes or default_processes()
        self.threads = threads
        self._ctx = multiprocessing.get_context("fork")
        self._children: list[_Child] = []
        self._lock = threading.Lock()
        self._on_finish: OnFinish | None = None
        self._stopping = False
        self._serve_args: tuple[float, float] | None = None
        self._collector: threading.Thread | None = None
        self._stop: threading.Event | None = None
        self._rate_limit_file = ""

    # -- children --------------------------------------------------------------------------------

    def _prepare(self) -> None:
        """What the children must find ready: the plugins loaded, and the rate-limit file every
        process of this database shares already in WAL mode (two processes switching a new file
        to WAL at once make one fail with "database is locked")."""
        plugins.load_plugins()
        self._rate_limit_file = os.environ.get(RATE_LIMIT_ENV) or rate_limit_target(self.db_path)
        prepare_rate_limits(self._rate_limit_file)

    def _fork(self, mode: str, company_ids: list[int] | None, poll_seconds: float, grace: float) -> _Child:
        reader, writer = self._ctx.Pipe(duplex=False)
        process = _JobProcess(
            target=_child_main,
            name="cartplugin-jobs",
            args=(self.db_path, self.threads, writer, os.getpid(), mode, company_ids,
                  poll_seconds, grace, self._rate_limit_file),
            daemon=True,
        )  # fmt: skip
        try:
            process.start()  # within frozen(): see there
        except BaseException:  # no process (out of processes or memory): nothing left open
            reader.close()
            writer.close()
            raise
        writer.close()  # the child holds the only writing end: its exit is the reader's EOF
        child = _Child(process, reader)
        with self._lock:
            self._children.append(child)
        log.debug("job process %s started (%s threads)", process.pid, self.threads)
        return child

    def _live(self) -> list[_Child]:
        with self._lock:
            return [c for c in self._children if not c.ended]

    def _pump(self, timeout: float) -> bool:
        """Handle what the children sent within ``timeout``; False once none is left."""
        live = self._live()
        if not live:
            return False
        waitables: list[Any] = [c.reader for c in live if not c.eof] + [c.process.sentinel for c in live]
        ready = wait(waitables, timeout)
        for child in live:
            if child.reader in ready:
                self._read(child)
            if child.process.sentinel in ready:
                self._read(child)
                child.process.join()
                child.exitcode = child.process.exitcode
                child.reader.close()
                child.ended = True  # last: whoever sees it ended finds nothing of it left open
                if not child.done and not (child.told_to_stop and child.exitcode == -signal.SIGTERM):
                    log.warning(
                        "job process %s ended with exit code %s; a job it was running goes back to the queue "
                        "on the worker's next round",
                        child.process.pid,
                        child.exitcode,
                    )
        return True

    def _read(self, child: _Child) -> None:
        while not child.eof:
            try:
                if not child.reader.poll():
                    return
                message = child.reader.recv()
            except (EOFError, OSError):
                child.eof = True
                return
            self._handle(child, message)

    def _handle(self, child: _Child, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "finished":
            child.finished_jobs += 1
            if self._on_finish is not None:
                try:
                    self._on_finish(message[1], message[2])
                except Exception:
                    log.exception("reporting the end of job %s failed", message[1].id)
        elif kind == "log":
            record = logging.makeLogRecord(message[1])
            logging.getLogger(record.name).handle(record)
        elif kind == "done":
            child.ran, child.done = message[1], True

    def _stop_children(self) -> None:
        """Ask every child to stop at its next order or batch: SIGTERM, as a service manager does
        (not a shared Event: a multiprocessing Event hangs its setter once a waiter has died)."""
        self._stopping = True
        for child in self._live():
            if not child.told_to_stop:
                child.told_to_stop = True
                try:
                    child.process.terminate()
                except OSError:  # pragma: no cover - ended meanwhile
                    pass

    def _end_children(self, grace: float) -> bool:
        """Wait up to ``grace`` for the children to end (reading what they send), then kill the
        rest: their jobs are left to ``jobs.recover_orphans``. True if none had to be killed."""
        deadline = time.monotonic() + grace
        while self._live() and time.monotonic() < deadline:
            self._pump(min(0.1, max(0.0, deadline - time.monotonic())))
        stuck = self._live()
        for child in stuck:
            log.warning("job process %s still running after %.0f s; killed", child.process.pid, grace)
            child.process.kill()
        while self._live():
            self._pump(0.1)
        return not stuck

    # -- the pool's interface --------------------------------------------------------------------

    def drain(
        self,
        *,
        company_ids: list[int] | None = None,
        on_finish: OnFinish | None = None,
        stop: threading.Event | None = None,
    ) -> int:
        """Claim and run jobs in the processes until none is runnable now (or ``stop`` is set:
        running jobs stop at their next order or batch and go back to the queue); returns how
        many ran."""
        self._prepare()
        self._on_finish, self._stopping = on_finish, False
        with self._lock:
            self._children = []
        with frozen():
            for _ in range(self.processes):
                self._fork("drain", company_ids, 0.0, 0.0)
        children = list(self._children)
        try:
            while self._pump(0.1):
                if stop is not None and stop.is_set():
                    self._stop_children()
        except KeyboardInterrupt:  # Ctrl-C: the children stop at their next order and requeue
            self._stop_children()
            self._end_children(_grace() + KILL_MARGIN_SECONDS)
            raise
        return sum(c.ran if c.done else c.finished_jobs for c in children)

    def start(
        self,
        stop: threading.Event,
        *,
        poll_seconds: float = 1.0,
        on_finish: OnFinish | None = None,
    ) -> None:
        """Run jobs in the processes until ``stop`` is set, each thread looking for work every
        ``poll_seconds`` when idle; a thread of this process collects what the children report."""
        self._prepare()
        self._on_finish, self._stopping = on_finish, False
        self._serve_args = (poll_seconds, _grace())
        with self._lock:
            self._children = []
        with frozen():
            for _ in range(self.processes):
                self._fork("serve", None, *self._serve_args)

        def collect() -> None:  # the only thread that reads from the children of ``start``
            while True:
                try:
                    if stop.is_set():
                        self._stop_children()
                    if not self._pump(0.2):
                        if stop.is_set():
                            return
                        stop.wait(0.2)  # every child died: replace_dead starts others
                except Exception:  # pragma: no cover - keep collecting whatever one message did
                    log.exception("reading from the job processes failed")

        self._stop = stop
        self._collector = threading.Thread(target=collect, name="cartplugin-pool", daemon=True)
        self._collector.start()

    def replace_dead(self) -> int:
        """Start a process for each one of ``start`` that died (killed, out of memory); call it
        from the thread that owns the database, between transactions. Returns how many. A dead
        one that could not be replaced (the fork failed) is kept and tried again next call."""
        if self._serve_args is None or self._stopping_now():
            return 0
        with self._lock:
            dead = [c for c in self._children if c.ended]
        replaced = 0
        if dead:
            with frozen():
                for child in dead:
                    if self._stopping_now():  # stopping meanwhile: no process would be told to stop
                        break
                    try:
                        started = self._fork("serve", None, *self._serve_args)
                    except OSError as exc:  # out of processes, memory or descriptors: next round tries again
                        log.error(
                            "could not start a job process in place of %s (exit code %s): %s; trying again next round",
                            child.process.pid, child.exitcode, exc,
                        )  # fmt: skip
                        break
                    with self._lock:
                        self._children.remove(child)
                    replaced += 1
                    log.warning(
                        "started job process %s in place of %s (exit code %s)",
                        started.process.pid, child.process.pid, child.exitcode,
                    )  # fmt: skip
        return replaced

    def _stopping_now(self) -> bool:
        return self._stopping or (self._stop is not None and self._stop.is_set())

    def pids(self) -> list[int]:
        """The pids of the running job processes."""
        return [c.process.pid for c in self._live() if c.process.pid is not None]

    def join(self, timeout: float) -> bool:
        """Stop the processes of ``start``: each gives its jobs up to ``timeout`` seconds to reach
        an order boundary and requeue; one still running a little after that is killed (its job
        goes back to the queue on the next worker's first round). True if none was killed."""
        if self._collector is None or self._stop is None:
            self._stop_children()
            return self._end_children(timeout + KILL_MARGIN_SECONDS)
        self._stop.set()  # the collector asks the children to stop and ends once they all have
        self._collector.join(timeout + KILL_MARGIN_SECONDS)
        stuck = self._live()
        for child in stuck:
            log.warning("job process %s still running after %.0f s; killed", child.process.pid, timeout)
            child.process.kill()
        self._collector.join(5.0)
        return not stuck


@contextmanager
def frozen() -> Iterator[None]:
    """Fork the block's processes with every object they inherit frozen (``gc.freeze``), then
    thaw them here.

    A collection in a child would otherwise walk the tens of thousands of objects it inherited
    (the interpreter, the host, the plugins) and write to each one, copying the pages they sit
    on out of the parent's memory; frozen, they are never walked (the gc module's advice for
    forking servers). One collection serves every fork of the block: a second one, after the
    first fork, would itself copy each page the parent now shares with that child (measured:
    12 ms before the first fork, 29 ms before the second). The parent thaws its own at the end
    of the block, so nothing stays frozen here.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _grace() -> float:
    return config.current().stop_grace_seconds


# -- in the child ----------------------------------------------------------------------------------


class _ToParent(logging.Handler):
    """Sends each log record to the parent, whose handlers write it."""

    def __init__(self, send: Callable[[tuple[Any, ...]], None]):
        super().__init__()
        self.send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            fields = {
                "name": record.name,
                "levelno": record.levelno,
                "levelname": record.levelname,
                "msg": message,
                "created": record.created,
                "msecs": record.msecs,
                "process": record.process,
                "processName": record.processName,
                "thread": record.thread,
                "threadName": record.threadName,
            }
            self.send(("log", fields))
        except Exception:  # pragma: no cover - logging must never break a job
            self.handleError(record)


def _child_main(
    db_path: Path,
    threads: int,
    writer: Connection,
    parent_pid: int,
    mode: str,
    company_ids: list[int] | None,
    poll_seconds: float,
    grace: float,
    rate_limit_file: str,
) -> None:
    send_lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with send_lock:
            try:
                writer.send(message)
            except OSError:  # the parent is gone: nobody to tell
                pass

    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_ToParent(send))
    # every process of one database counts each API key's requests in one place
    os.environ[RATE_LIMIT_ENV] = rate_limit_file

    halt = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):  # the worker's service manager signals every process
        signal.signal(sig, lambda *_: halt.set())

    def watch() -> None:  # the parent gone (killed): stop too
        while not halt.wait(0.5):
            if os.getppid() != parent_pid:
                halt.set()

    threading.Thread(target=watch, name="cartplugin-stop", daemon=True).start()

    def on_finish(job: Job, status: str) -> None:
        send(("finished", job, status))

    pool = LocalPool(db_path, max_workers=threads)
    ran = 0
    if mode == "drain":
        ran = pool.drain(company_ids=company_ids, on_finish=on_finish, stop=halt)
    else:
        pool.start(halt, poll_seconds=poll_seconds, on_finish=on_finish)
        while not halt.wait(1.0):
            pass
        pool.join(grace)
    send(("done", ran))
    writer.close()
