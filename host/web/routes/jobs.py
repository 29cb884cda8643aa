"""Queued Jobs: the filtered list, a job with its log (refreshed while it runs), Cancel, Priority."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for

from host.errors import HostError
from host.jobs import queue as jobs
from host.records import audit, queries
from host.web import forms
from host.web.auth import requires
from host.web.context import access, actor, db, notice

bp = Blueprint("jobs", __name__)


@bp.route("/jobs")
def index():
    page = queries.jobs_page(db(), request.args.to_dict(), access())
    return render_template(
        "jobs.html",
        page=page,
        companies=queries.company_choices(db(), access()),
        kinds=jobs.KINDS,
        statuses=jobs.STATUSES,
    )


@bp.route("/jobs/<int:job_id>")
def show(job_id: int):
    job = jobs.show_job(db(), job_id)
    return render_template(
        "job.html", job=job, pending=jobs.PENDING, action_form=forms.ActionForm(), priority_form=_priority_form(job)
    )


@bp.route("/jobs/<int:job_id>/log")
def log(job_id: int):
    """The job's status and log as a page fragment, fetched again every second while it runs."""
    job = jobs.show_job(db(), job_id)
    return render_template(
        "job_log.html", job=job, pending=jobs.PENDING, action_form=forms.ActionForm(), priority_form=_priority_form(job)
    )


def _priority_form(job: dict) -> forms.PriorityForm:
    return forms.PriorityForm(formdata=None, data={"priority": job["priority_name"]})


@bp.route("/jobs/<int:job_id>/priority", methods=["POST"])
@requires("cancel_job")
def priority(job_id: int):
    """Raise (or lower) a pending job's priority; written to the company's Change Log."""
    form = forms.PriorityForm()
    if not form.validate_on_submit():
        notice("Choose a priority: Normal, High or Critical.", error=True)
        return redirect(url_for("jobs.show", job_id=job_id))
    try:
        job, before = jobs.set_priority(db(), job_id, form.priority.data or "")
    except HostError as exc:
        notice(str(exc), error=True)
        return redirect(url_for("jobs.show", job_id=job_id))
    now = form.priority.data
    if before != now:
        audit.record(db(), actor(), "Queued Job priority changed", company_id=job.company_id,
                     target=f"job {job.id} ({jobs.kind_name(job.kind)})",
                     details={"priority": {"from": before, "to": now}})  # fmt: skip
    notice(f"Job {job.id} priority: {now}." if before != now else "Nothing changed.")
    return redirect(url_for("jobs.show", job_id=job_id))


@bp.route("/jobs/<int:job_id>/cancel", methods=["POST"])
@requires("cancel_job")
def cancel(job_id: int):
    if not forms.ActionForm().validate_on_submit():
        abort(400)
    try:
        job = jobs.cancel(db(), job_id, actor=actor())
    except HostError as exc:
        notice(str(exc), error=True)
        return redirect(url_for("jobs.show", job_id=job_id))
    notice(f"Job {job.id} cancelled.")
    return redirect(url_for("jobs.show", job_id=job_id))
