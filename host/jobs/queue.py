"""Queued Jobs: enqueue, claim, heartbeat, finish, retry; their log lines.

The queue lives in the ``jobs`` table. At most one job per (company, kind) is pending
(Queued or Processing): asking again returns that job (a partial unique index enforces it
even across processes). A claim is one ``UPDATE ... RETURNING`` inside ``BEGIN IMMEDIATE``,
so two workers never claim the same job; a job whose worker stopped heart-beating is claimed
again after ``STALE_AFTER_SECONDS``. Every job kind is written so running it twice has the
effect of running it once.

A claim is the worker and the attempt number (``claimed_by``, ``attempts``): every write of a
running job (heartbeat, progress, its end, and through :func:`hold` its batches) matches only
its own claim, so a worker presumed dead and replaced changes nothing of the new owner's.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import random
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from host import clock, config
from host.errors import HostError, NotFound
from host.records.validation import parse_id
from host.store.api import IntegrityError, Store, in_list
from host.store.db import delete_in_batches, joined_write, write

KINDS = ("test_settings", "import_orders", "download_orders", "upload_tracking")
#: each kind as staff know it (the web admin, the job log)
KIND_NAMES = {
    "test_settings": "Test Settings",
    "import_orders": "Import Orders",
    "download_orders": "Download Orders",
    "upload_tracking": "Upload Tracking",
}
QUEUED, PROCESSING, COMPLETED, PARTIAL, FAILED, CANCELLED = (
    "Queued", "Processing", "Completed", "Partial Success", "Failed", "Cancelled",
)  # fmt: skip
STATUSES = (QUEUED, PROCESSING, COMPLETED, PARTIAL, FAILED, CANCELLED)
PENDING = (QUEUED, PROCESSING)
PRIORITY = {"test_settings": 30, "import_orders": 20, "upload_tracking": 10, "download_orders": 0}
#: Queued Job priorities staff choose, as Sellercloud names them; each one adds a step above
#: every kind's own order (``PRIORITY``), so a High job of any kind is claimed before a Normal one
PRIORITY_LEVELS = ("Normal", "High", "Critical")
PRIORITY_STEP = 100
STALE_AFTER_SECONDS = 120.0
#: a channel's Retry-After longer than this is not believed
MAX_RETRY_AFTER_SECONDS = 3600.0
MAX_LOG_MESSAGE = 1000
#: the claim's owner, null-safe: a job claimed by nobody (NULL) matches a ``claimed_by`` of None
_CLAIMED_BY = "(claimed_by = :claimed_by OR (claimed_by IS NULL AND :claimed_by IS NULL))"
#: a running job's claim: this worker's, and this attempt's. A worker presumed dead (its heartbeats
#: stopped) and replaced holds an older claim: its writes match no row and change nothing
_CLAIM = f"status = 'Processing' AND {_CLAIMED_BY} AND attempts = :attempts"
#: the job log's line when a worker finds its claim gone
LOST_CLAIM = (
    "this worker lost the job (claimed again by another worker after its heartbeats stopped); "
    "stopped without sending more"
)


class ClaimLost(HostError):
    """The job's claim is no longer this worker's: it was given back to the queue (or claimed by
    another worker) after this one's heartbeats stopped. Nothing more may be sent or written."""

    def __init__(self, job: Job):
        super().__init__(f"job {job.id}: {LOST_CLAIM}")


@dataclass(frozen=True)
class Job:
    id: int
    company_id: int
    kind: str
    status: str
    params: dict[str, Any]
    attempts: int
    max_attempts: int
    claimed_by: str | None
    #: ``time.monotonic()`` just before this process wrote the claim: the claim holds at least
    #: until the orphan window has passed from then (None: not claimed by this process)
    leased_at: float | None = field(default=None, compare=False)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Job:
        return cls(
            id=row["id"],
            company_id=row["company_id"],
            kind=row["kind"],
            status=row["status"],
            params=json.loads(row["params"]),
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            claimed_by=row["claimed_by"],
        )


def enqueue(
    db: Store,
    company_id: int,
    kind: str,
    params: dict[str, Any] | None = None,
    *,
    priority: int | None = None,
) -> tuple[Job, bool]:
    """Queue a job, or return the pending one of the same (company, kind). ``(job, created)``."""
    if kind not in KINDS:
        raise HostError(f"unknown job kind {kind!r}")
    with write(db):
        pending = _pending(db, company_id, kind)
        if pending is not None:
            return pending, False
        now = clock.now_iso()
        try:
            # in a savepoint: on PostgreSQL a failed statement spoils the whole transaction, and
            # the pending job must still be read after it
            with db.atomic():
                job_id = db.execute(
                    "INSERT INTO jobs (company_id, kind, priority, params, run_after, created_at) "
                    "VALUES (:company_id, :kind, :priority, :params, :now, :now) RETURNING id",
                    {
                        "company_id": company_id,
                        "kind": kind,
                        "priority": PRIORITY[kind] if priority is None else priority,
                        "params": json.dumps(params or {}),
                        "now": now,
                    },
                ).fetchone()[0]
        except IntegrityError:  # another process queued it between our read and insert
            raced = _pending(db, company_id, kind)
            if raced is None:  # and it has already finished: say so rather than return no job
                raise
            return raced, False
        _log(db, job_id, "info", f"queued {kind_name(kind)}")
    return get_job(db, job_id), True


#: companies per statement of a bulk enqueue: well inside either backend's limit on parameters
BULK_CHUNK = 500


def enqueue_many(db: Store, kind: str, company_ids: Iterable[int]) -> int:
    """Queue a job of ``kind`` for each of ``company_ids`` that has none pending; how many were queued.

    What :func:`enqueue` does for one company, for many at once: the same row (the kind's
    priority, no params, runnable now) and log line, and never a second pending job of a
    company, in one write transaction of two statements per ``BULK_CHUNK`` companies (an
    ``INSERT ... SELECT`` of the jobs, one of their log lines). Writers take turns on one lock:
    one transaction for many companies keeps the other writers waiting once, not once a company.
    """
    if kind not in KINDS:
        raise HostError(f"unknown job kind {kind!r}")
    ids = list(dict.fromkeys(company_ids))
    queued = 0
    now = clock.now_iso()
    with write(db):
        for start in range(0, len(ids), BULK_CHUNK):
            marks, params = in_list("company", ids[start : start + BULK_CHUNK])
            new_ids = [
                row[0]
                for row in db.execute(
                    "INSERT INTO jobs (company_id, kind, priority, params, run_after, created_at) "
                    "SELECT c.id, :kind, :priority, :params, :now, :now FROM companies c "
                    f"WHERE c.id IN {marks} AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.company_id = c.id "
                    "AND j.kind = :kind AND j.status IN ('Queued', 'Processing')) "
                    # the index behind the rule, should a writer ever skip the write lock
                    "ON CONFLICT (company_id, kind) WHERE status IN ('Queued', 'Processing') DO NOTHING RETURNING id",
                    {**params, "kind": kind, "priority": PRIORITY[kind], "params": json.dumps({}), "now": now},
                ).fetchall()
            ]
            if new_ids:
                job_marks, job_params = in_list("job", new_ids)
                db.execute(
                    "INSERT INTO job_logs (job_id, at, level, message) "
                    f"SELECT id, :at, 'info', :message FROM jobs WHERE id IN {job_marks}",
                    {**job_params, "at": clock.now_iso(), "message": f"queued {kind_name(kind)}"},
                )
            queued += len(new_ids)
    return queued


def enqueue_and_claim(
    db: Store, company_id: int, kind: str, worker_id: str, params: dict[str, Any] | None = None
) -> tuple[Job, bool, Job | None]:
    """Queue (or find) the job and claim it for ``worker_id`` in one transaction: ``(job, created,
    claimed)``, ``claimed`` None when the pending job is already running elsewhere.

    For a job the caller runs at once (Test Settings, ``import-orders --wait``): between a commit
    of the Queued row and a separate claim, a worker woken by that row (the cluster engine's
    are woken by every Queued row) could take it first, and the caller would wrongly report it
    as "already running".
    """
    with write(db):
        job, created = enqueue(db, company_id, kind, params)
        claimed = claim(db, worker_id, job_id=job.id)
    return job, created, claimed


def _pending(db: Store, company_id: int, kind: str) -> Job | None:
    rows = list(
        db.query(
            "SELECT * FROM jobs WHERE company_id = :company_id AND kind = :kind AND status IN ('Queued', 'Processing')",
            {"company_id": company_id, "kind": kind},
        )
    )
    return Job.from_row(rows[0]) if rows else None


def get_job(db: Store, job_id: int | str) -> Job:
    job_id = parse_id(job_id, "job")
    rows = list(db.query("SELECT * FROM jobs WHERE id = :id", {"id": job_id}))
    if not rows:
        raise NotFound(f"unknown job {job_id}")
    return Job.from_row(rows[0])


def claim(
    db: Store,
    worker_id: str,
    *,
    company_ids: list[int] | None = None,
    job_id: int | None = None,
    stale_after: float = STALE_AFTER_SECONDS,
) -> Job | None:
    """Atomically take the most urgent runnable job (or a stale one whose worker died)."""
    leased_at = time.monotonic()  # before ``now``: the lease never outlasts what the row says
    now = clock.now_iso()
    stale = clock.now_iso(-stale_after)
    filters = ""
    params: dict[str, object] = {"now": now, "stale": stale, "worker_id": worker_id}
    if job_id is not None:
        filters += " AND id = :job_id"
        params["job_id"] = job_id
    if company_ids is not None:
        marks, company_params = in_list("company", company_ids)
        filters += f" AND company_id IN {marks}"
        params.update(company_params)
    runnable = "((status = 'Queued' AND run_after <= :now) OR (status = 'Processing' AND heartbeat_at < :stale))"
    # looked for first without the write lock, which every job process takes turns for: an idle
    # worker's poll, and each of its threads once the queue is drained, then write nothing (a
    # job named by its id, as the cluster's engine hands it over, is there: no look first)
    if (
        job_id is None
        and db.execute(f"SELECT 1 FROM jobs WHERE {runnable}{filters} LIMIT 1", params).fetchone() is None
    ):
        return None
    with write(db):
        # a job whose worker keeps dying with it (out of memory, killed) must not loop forever
        for (dead_id,) in db.execute(
            "UPDATE jobs SET status = 'Failed', finished_at = :now, summary = :summary WHERE status = 'Processing' "
            "AND heartbeat_at < :stale AND attempts >= max_attempts RETURNING id",
            {"now": now, "summary": json.dumps({"error": "its worker stopped during every attempt"}), "stale": stale},
        ).fetchall():
            _log(db, dead_id, "error", "Failed: its worker stopped during every attempt")
        cursor = db.execute(
            "UPDATE jobs SET status = 'Processing', claimed_by = :worker_id, heartbeat_at = :now, "
            "attempts = attempts + 1, started_at = COALESCE(started_at, :now) WHERE id = (SELECT id FROM jobs WHERE "
            f"{runnable}{filters} ORDER BY priority DESC, id LIMIT 1) RETURNING *",
            params,
        )
        row = cursor.fetchone()
        if row is None:
            return None
        job = Job.from_row(dict(zip([c[0] for c in cursor.description], row, strict=True)))
        if job.attempts > 1:
            _log(db, job.id, "info", f"attempt {job.attempts} of {job.max_attempts} (worker {worker_id})")
    return replace(job, leased_at=leased_at)


@functools.cache
def machine_id() -> str:
    """Who can judge a pid with ``kill(pid, 0)``: the hostname, tagged with the kernel's boot id
    and the pid namespace. Containers sharing a hostname (host networking) or cloned machines
    share a database but not their pids, and must never requeue each other's running jobs."""
    parts = []
    with contextlib.suppress(OSError):
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
    with contextlib.suppress(OSError):
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    tag = hashlib.sha256("|".join(parts).encode()).hexdigest()[:8] if parts else ""
    return f"{socket.gethostname()}/{tag}" if tag else socket.gethostname()


def recover_orphans(db: Store) -> list[int]:
    """Requeue Processing jobs whose worker process on this machine no longer exists.

    A worker on another machine is only presumed dead after ``STALE_AFTER_SECONDS`` without a
    heartbeat (see :func:`claim`); on this machine we can ask the kernel right away.
    """
    me = machine_id()
    orphans = []
    for job_id, claimed_by in db.execute("SELECT id, claimed_by FROM jobs WHERE status = 'Processing'").fetchall():
        host, _, rest = (claimed_by or "").partition(":")
        pid = rest.partition(":")[0]
        if host == me and pid.isdigit() and not _alive(int(pid)):
            orphans.append((job_id, claimed_by))
    for job_id, claimed_by in orphans:
        with write(db):
            cursor = db.execute(
                "UPDATE jobs SET status = CASE WHEN attempts >= max_attempts THEN 'Failed' ELSE 'Queued' END, "
                "run_after = :now, claimed_by = NULL WHERE id = :id AND status = 'Processing' "
                "AND claimed_by = :claimed_by RETURNING status",
                {"now": clock.now_iso(), "id": job_id, "claimed_by": claimed_by},
            )
            row = cursor.fetchone()
            if row and row[0] == FAILED:
                _log(db, job_id, "error", f"Failed: its worker ({claimed_by}) stopped during every attempt")
            elif row:
                _log(db, job_id, "warning", f"worker {claimed_by} stopped while running this job; queued again")
    return [job_id for job_id, _ in orphans]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _claim_of(job: Job) -> dict[str, Any]:
    return {"id": job.id, "claimed_by": job.claimed_by, "attempts": job.attempts}


def heartbeat(db: Store, job: Job) -> bool:
    """Renew the running ``job``'s heartbeat; False when its claim is no longer this worker's.

    One UPDATE of the job's own row, which never waits for the shared write lock (a writer frozen
    while holding it must not make live jobs look dead); inside the caller's write transaction
    (:func:`hold`) it is part of that one."""
    with db.row_write():
        cursor = db.execute(
            f"UPDATE jobs SET heartbeat_at = :now WHERE id = :id AND {_CLAIM}",
            {"now": clock.now_iso(), **_claim_of(job)},
        )
        return bool(cursor.rowcount)


def hold(db: Store, job: Job) -> None:
    """Inside the caller's write transaction, before the job's own writes (a batch of orders,
    upload results, the cursor): renew the claim, or raise :class:`ClaimLost` so the
    transaction rolls back and changes nothing of the row's new owner."""
    if not heartbeat(db, job):
        raise ClaimLost(job)


def finish(db: Store, job: Job, status: str, summary: dict[str, Any] | None = None) -> bool:
    """Record the running ``job``'s end; False (nothing written) when its claim was lost."""
    if status not in (COMPLETED, PARTIAL, FAILED, CANCELLED):
        raise ValueError(status)
    with joined_write(db):
        # only the claim's owner ends it: a worker presumed dead and replaced must not
        # overwrite what its replacement does
        cursor = db.execute(
            f"UPDATE jobs SET status = :status, finished_at = :now, summary = :summary WHERE id = :id AND {_CLAIM}",
            {"status": status, "now": clock.now_iso(), "summary": json.dumps(summary or {}, default=str),
             **_claim_of(job)},
        )  # fmt: skip
        if not cursor.rowcount:
            return False
        _log(db, job.id, "error" if status == FAILED else "info", f"{status}: {_summary_line(summary)}")
    return True


def set_progress(db: Store, job: Job, counts: dict[str, int]) -> None:
    """Record what the running ``job`` has done so far (its claim's owner only); the caller's
    write transaction, or one of its own."""
    with joined_write(db):
        db.execute(
            f"UPDATE jobs SET progress = :progress WHERE id = :id AND {_CLAIM}",
            {"progress": json.dumps(counts), **_claim_of(job)},
        )


def progress_words(progress: dict[str, Any] | None, running: bool) -> str:
    """A download's progress in staff words: ``3 pages, 9 orders read so far`` (and what is
    saved of them: ``saved: 9 new, 0 updated, 0 unchanged``); once the job has ended, what it
    read: ``4 pages, 12 orders read``."""
    if not progress:
        return ""
    pages, count = progress.get("pages", 0), progress.get("orders", 0)
    read = f"{_plural(pages, 'page')}, {_plural(count, 'order')} read"
    if not running:
        return read
    new, updated, unchanged = (progress.get(key, 0) for key in ("new", "updated", "unchanged"))
    if not new + updated + unchanged:  # nothing saved yet: orders are saved in batches
        return f"{read} so far"
    return f"{read} so far, saved: {new} new, {updated} updated, {unchanged} unchanged"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def retry_later(db: Store, job: Job, reason: str, *, retry_after: float | None = None) -> bool:
    """Put a job back in the queue after a transient failure, with exponential backoff and jitter.

    Returns False (and fails the job) once its attempts are used up. Raises :class:`ClaimLost`
    (writing nothing) when the job's claim is no longer this worker's.
    """
    if job.attempts >= job.max_attempts:
        if not finish(db, job, FAILED, {"error": f"gave up after {job.attempts} attempts: {reason}"}):
            raise ClaimLost(job)
        return False
    # the first retry waits about retry_base_seconds, doubling each attempt (with jitter), at most 5 minutes
    base = config.current().retry_base_seconds
    delay = max(
        min(retry_after or 0, MAX_RETRY_AFTER_SECONDS),
        min(300.0, base * 2.0 ** (job.attempts - 1)) * random.uniform(0.5, 1.0),
    )
    with write(db):
        cursor = db.execute(
            f"UPDATE jobs SET status = 'Queued', run_after = :run_after, claimed_by = NULL WHERE id = :id AND {_CLAIM}",
            {"run_after": clock.now_iso(delay), **_claim_of(job)},
        )
        if not cursor.rowcount:
            raise ClaimLost(job)
        _log(db, job.id, "warning", f"{reason.rstrip('. ')}; retrying in {delay:.1f} s")
    return True


def requeue_now(db: Store, job: Job, reason: str) -> bool:
    """Give a job that was stopped (not failed) back to the queue; the attempt does not count.
    False (nothing written) when its claim was lost: the row is someone else's now."""
    with write(db):
        cursor = db.execute(
            "UPDATE jobs SET status = 'Queued', run_after = :now, claimed_by = NULL, "
            f"attempts = CASE WHEN attempts >= 1 THEN attempts - 1 ELSE 0 END WHERE id = :id AND {_CLAIM}",
            {"now": clock.now_iso(), **_claim_of(job)},
        )
        if not cursor.rowcount:
            return False
        _log(db, job.id, "warning", reason)
    return True


def cancel(db: Store, job_id: int | str, *, actor: str | None = None) -> Job:
    """Cancel a Queued job; ``actor`` (when given) is written to the Change Log."""
    from host.records import audit

    job = get_job(db, job_id)
    with write(db):
        cursor = db.execute(
            "UPDATE jobs SET status = 'Cancelled', finished_at = :now WHERE id = :id AND status = 'Queued'",
            {"now": clock.now_iso(), "id": job.id},
        )
        if cursor.rowcount == 0:
            raise HostError(f"job {job.id} is {job.status}; only a Queued job can be cancelled")
        _log(db, job.id, "info", "cancelled by staff")
        if actor is not None:
            audit.record(db, actor, "Queued Job cancelled", company_id=job.company_id,
                         target=f"job {job.id} ({kind_name(job.kind)})")  # fmt: skip
    return get_job(db, job.id)


def priority_name(priority: int) -> str:
    """A stored priority as staff know it: ``Normal``, ``High`` or ``Critical``."""
    return PRIORITY_LEVELS[max(0, min(len(PRIORITY_LEVELS) - 1, int(priority) // PRIORITY_STEP))]


def set_priority(db: Store, job_id: int | str, level: str) -> tuple[Job, str]:
    """Give a pending job the priority ``level`` (Normal, High, Critical); ``(job, level before)``.

    A Queued job is claimed before every job of a lower level; a Processing one keeps it if it
    goes back to the queue (a retry). A finished job has nothing left to run: refused.
    """
    matched = [name for name in PRIORITY_LEVELS if name.lower() == str(level).strip().lower()]
    if not matched:
        raise HostError(f"unknown priority {str(level)[:40]!r}; choose one of: {', '.join(PRIORITY_LEVELS)}")
    job = get_job(db, job_id)
    with write(db):
        row = db.execute("SELECT priority FROM jobs WHERE id = :id", {"id": job.id}).fetchone()
        before = priority_name(row[0])
        cursor = db.execute(
            "UPDATE jobs SET priority = :priority WHERE id = :id AND status IN ('Queued', 'Processing')",
            {"priority": PRIORITY[job.kind] + PRIORITY_STEP * PRIORITY_LEVELS.index(matched[0]), "id": job.id},
        )
        if cursor.rowcount == 0:
            status = db.execute("SELECT status FROM jobs WHERE id = :id", {"id": job.id}).fetchone()[0]
            raise HostError(f"job {job.id} is {status}; only a Queued or Processing job's priority can change")
        if before != matched[0]:
            _log(db, job.id, "info", f"priority changed from {before} to {matched[0]} by staff")
    return get_job(db, job.id), before


def purge_finished(db: Store, days: float, *, batch: int = 500) -> int:
    """Delete the jobs that finished more than ``days`` ago, with their logs; how many.

    Queued and Processing jobs are never deleted, however old. Deletes in batches of ``batch``
    jobs, each its own short transaction, so the write lock is never held for long.
    """
    pick = (
        "SELECT id FROM jobs WHERE finished_at < :before AND status NOT IN ('Queued', 'Processing') "
        "ORDER BY finished_at LIMIT :batch"
    )
    tables = [("job_logs", "job_id"), ("jobs", "id")]
    return delete_in_batches(db, pick, {"before": clock.now_iso(-days * 86400)}, tables, batch)


def log(db: Store, job_id: int, level: str, message: str) -> None:
    with joined_write(db):
        _log(db, job_id, level, message)


def _log(db: Store, job_id: int, level: str, message: str) -> None:
    db.execute(
        "INSERT INTO job_logs (job_id, at, level, message) VALUES (:job_id, :at, :level, :message)",
        {"job_id": job_id, "at": clock.now_iso(), "level": level, "message": message[:MAX_LOG_MESSAGE]},
    )


def _summary_line(summary: dict[str, Any] | None) -> str:
    return summary_words(summary, when=instant_words) or "done"


def instant_words(value: str) -> str:
    """A stored instant as a log line shows it: ``2026-11-06 00:00:00 UTC``."""
    return value[:19].replace("T", " ") + " UTC"


def kind_name(kind: str) -> str:
    """``import_orders`` as staff know it: ``Import Orders``."""
    return KIND_NAMES.get(kind) or kind.replace("_", " ").title()


#: counts of an upload, in the order shown, zeros included
_UPLOAD_WORDS = (("accepted", "{} accepted"), ("failed", "{} refused"), ("retrying", "{} to retry"))
#: counts shown only when not zero
_NONZERO_WORDS = (
    ("flagged_cancelled", "{} cancelled on the channel"),
    ("skipped_shipped", "{} skipped as shipped on the channel"),
    ("skipped_unpaid", "{} skipped as unpaid"),
    ("skipped_before_limit", "{} skipped as created before the Order Download Limit Date"),
    ("delayed", "{} held by Delay Tracking Time"),
    ("bad_orders", "{} not imported"),
    ("already_recorded", "{} already recorded"),
)
#: keys a person reads elsewhere (the status says ok, the counts add up to seen)
_UNSHOWN = {"ok", "seen", "more", "waiting_until", "since", "message", "reason", "error"}


def summary_words(summary: dict[str, Any] | None, when: Callable[[str], str] = str) -> str:
    """A job's summary in staff words: ``19 new, 0 updated, 1 unchanged``, an upload's ``2 accepted,
    0 refused, 0 to retry``, a Test Settings job's message; ``when`` shows a stored instant."""
    if not summary:
        return ""
    parts = [str(summary[key]) for key in ("message", "reason", "error") if summary.get(key)]
    if "inserted" in summary:
        parts.append(
            f"{summary['inserted']} new, {summary.get('updated', 0)} updated, {summary.get('unchanged', 0)} unchanged"
        )
        if summary.get("accepted"):
            parts.append(f"{summary['accepted']} accepted on the channel")
    elif "failed" in summary or "retrying" in summary:
        parts += [words.format(summary.get(key, 0)) for key, words in _UPLOAD_WORDS]
    parts += [words.format(summary[key]) for key, words in _NONZERO_WORDS if summary.get(key)]
    done = {"inserted", "updated", "unchanged", "accepted", "failed", "retrying"} | {k for k, _ in _NONZERO_WORDS}
    for key, value in summary.items():
        if key in done or key in _UNSHOWN or isinstance(value, (dict, list)):
            continue
        shown = ("yes" if value else "no") if isinstance(value, bool) else value
        parts.append(f"{key.replace('_', ' ')} {shown}")
    if summary.get("since"):
        parts.append(f"read from {when(summary['since'])}")
    if summary.get("waiting_until"):
        parts.append(f"waiting for the channel's rate limit until {when(summary['waiting_until'])}")
    elif summary.get("more"):
        parts.append("the next run goes on from here")
    return ", ".join(parts)


def summary_text(summary: dict[str, Any] | None) -> str:
    """A job's summary as words: ``inserted 3, updated 0, seen 3`` (empty counts left out)."""
    if not summary:
        return "-"
    parts = []
    for key, value in summary.items():
        if isinstance(value, bool):
            parts.append(key.replace("_", " ") if value else "not " + key.replace("_", " "))
        elif key in ("error", "reason", "message"):
            parts.append(str(value))
        else:
            parts.append(f"{key.replace('_', ' ')} {value}")
    return ", ".join(parts)


def list_jobs(db: Store, company_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
    sql = "SELECT j.*, c.name AS company FROM jobs j JOIN companies c ON c.id = j.company_id"
    params: dict[str, Any] = {"limit": limit}
    if company_id is not None:
        sql += " WHERE j.company_id = :company_id"
        params["company_id"] = company_id
    sql += " ORDER BY j.id DESC LIMIT :limit"
    return [_public(row) for row in db.query(sql, params)]


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "company": row["company"],
        "kind": row["kind"],
        "status": row["status"],
        "priority": row["priority"],
        "priority_name": priority_name(row["priority"]),
        "attempts": row["attempts"],
        "max_attempts": row["max_attempts"],
        "run_after": row["run_after"],
        "created_at": row["created_at"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
        "summary": json.loads(row["summary"]) if row["summary"] else None,
        "progress": json.loads(row["progress"]) if row.get("progress") else None,
    }


def show_job(db: Store, job_id: int | str) -> dict[str, Any]:
    job = get_job(db, job_id)
    row = next(
        db.query(
            "SELECT j.*, c.name AS company FROM jobs j JOIN companies c ON c.id = j.company_id WHERE j.id = :id",
            {"id": job.id},
        )
    )
    shown = _public(row)
    shown["params"] = job.params
    shown["log"] = [
        {"at": r["at"], "level": r["level"], "message": r["message"]}
        for r in db.query("SELECT at, level, message FROM job_logs WHERE job_id = :id ORDER BY id", {"id": job.id})
    ]
    return shown
