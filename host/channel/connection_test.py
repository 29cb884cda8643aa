"""Test Settings as a Queued Job: its run, the answer it leaves, and who asked for it.

The job gets the whole check bounded (``host.channel.settings_test``), so a worker thread, or the
web process that runs it in the background, is never held longer than that. A job asked for
in the web admin or on the command line carries who asked (``requested_by``): its outcome goes to
the Change Log under that name once it is known, whichever process ran it; one nobody asked
for (a worker's) goes there as cartplugin's own (``system``).
"""

from __future__ import annotations

from typing import Any

from host.channel.settings_test import test_settings
from host.jobs import queue as jobs
from host.jobs.queue import Job
from host.records import audit
from host.records.companies import Company
from host.store.api import Store

KIND = "test_settings"


def params(*, seconds: float | None = None, requested_by: str | None = None) -> dict[str, Any]:
    """A Test Settings job's parameters: its time bound (None: the setting) and who asked."""
    found: dict[str, Any] = {}
    if seconds is not None:
        found["seconds"] = seconds
    if requested_by is not None:
        found.update(audit.to_params(requested_by))
    return found


def run(db: Store, job: Job, company: Company) -> str:
    """Run a claimed Test Settings job to its end; returns its status."""
    result = test_settings(db, company, seconds=job.params.get("seconds"))
    status = jobs.COMPLETED if result.ok else jobs.FAILED
    jobs.finish(db, job, status, {"ok": result.ok, "message": result.message})
    # under who asked for it (the web admin, the command line), else cartplugin's own (a worker)
    audit.record(db, audit.from_params(job.params), "Test Settings", company_id=company.id,
                 target=f"job {job.id}", details={"ok": result.ok})  # fmt: skip
    return status


def latest(db: Store, company_id: int) -> dict[str, Any] | None:
    """The company's most recent Test Settings job as ``jobs.show_job`` shows it, with its answer
    in words (``answer``, ``ok``), or None when it never had one."""
    row = db.execute(
        "SELECT id FROM jobs WHERE company_id = :company_id AND kind = :kind ORDER BY id DESC LIMIT 1",
        {"company_id": company_id, "kind": KIND},
    ).fetchone()
    if row is None:
        return None
    shown = jobs.show_job(db, row[0])
    summary = shown["summary"] or {}
    shown["pending"] = shown["status"] in jobs.PENDING
    shown["ok"] = bool(summary.get("ok"))
    shown["answer"] = answer(shown["status"], summary)
    return shown


def answer(status: str, summary: dict[str, Any]) -> str:
    """A finished Test Settings job's answer as one line: ``Connection established: ...`` or
    ``Test Settings failed: ...`` (a job cancelled before it ran says why)."""
    message = summary.get("message") or summary.get("error") or summary.get("reason") or status
    return f"{'Connection established' if summary.get('ok') else 'Test Settings failed'}: {message}"
