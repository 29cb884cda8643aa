"""Queued Jobs: the filtered list, a job with its log (refreshed while it runs), Cancel."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for

from ... import audit, jobs, queries
from ...errors import HostError
from .. import forms
from ..auth import requires
from ..context import actor, db, notice

bp = Blueprint("jobs", __name__)


@bp.route("/jobs")
def index():
    page = queries.jobs_page(db(), request.args.to_dict())
    return render_template(
        "jobs.html", page=page, companies=queries.companies_overview(db()), kinds=jobs.KINDS, statuses=jobs.STATUSES
    )


@bp.route("/jobs/<int:job_id>")
def show(job_id: int):
    return render_template(
        "job.html", job=jobs.show_job(db(), job_id), pending=jobs.PENDING, action_form=forms.ActionForm()
    )


@bp.route("/jobs/<int:job_id>/log")
def log(job_id: int):
    """The job's status and log as a page fragment, fetched again every second while it runs."""
    return render_template(
        "job_log.html", job=jobs.show_job(db(), job_id), pending=jobs.PENDING, action_form=forms.ActionForm()
    )


@bp.route("/jobs/<int:job_id>/cancel", methods=["POST"])
@requires("cancel_job")
def cancel(job_id: int):
    if not forms.ActionForm().validate_on_submit():
        abort(400)
    try:
        job = jobs.cancel(db(), job_id)
    except HostError as exc:
        notice(str(exc), error=True)
        return redirect(url_for("jobs.show", job_id=job_id))
    audit.record(
        db(),
        actor(),
        "Queued Job cancelled",
        company_id=job.company_id,
        target=f"job {job.id} ({jobs.kind_name(job.kind)})",
    )
    notice(f"Job {job.id} cancelled.")
    return redirect(url_for("jobs.show", job_id=job_id))
