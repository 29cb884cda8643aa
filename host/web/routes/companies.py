"""Companies, and a company's Website General Settings, Cart General and Change Log."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for
from pydantic import ValidationError

from host import clock, config
from host.channel import connection_test, cursors, gate, plugins
from host.errors import HostError, InvalidSettings
from host.jobs import queue as jobs
from host.records import audit, companies, credentials, queries, website_options
from host.web import background, filters, forms
from host.web.auth import requires
from host.web.context import access, actor, db, notice

bp = Blueprint("companies", __name__)


@bp.route("/")
def home():
    return redirect(url_for("companies.index"))


@bp.route("/companies")
def index():
    return render_template(
        "companies.html", rows=queries.companies_overview(db(), access()), form=forms.CompanyForm(),
        may_add=access().everything,
    )  # fmt: skip


@bp.route("/companies", methods=["POST"])
@requires("company_settings")
def add():
    form = forms.CompanyForm()
    if not access().everything:  # a company they add would be out of their own reach
        notice("Only staff who see every company add companies. Ask an admin.", error=True)
        return redirect(url_for("companies.index"))
    if not form.validate_on_submit():
        notice("Type a company name.", error=True)
        return redirect(url_for("companies.index"))
    try:
        company = companies.add_company(db(), form.name.data or "", actor=actor())
    except HostError as exc:
        notice(str(exc), error=True)
        return redirect(url_for("companies.index"))
    notice(f"Company {company.name} added. Next: Website General Settings.")
    return redirect(url_for("companies.website", company_id=company.id))


def _company(company_id: int) -> companies.Company:
    return companies.get_company(db(), company_id)


@bp.route("/companies/<int:company_id>")
def show(company_id: int):
    return redirect(url_for("companies.website", company_id=company_id))


def _plugin_choices() -> list:
    return forms.choices(
        [("", "(none)")] + [(name, info.display_name) for name, info in sorted(plugins.channels().items())]
    )


@bp.route("/companies/<int:company_id>/website-general-settings", methods=["GET", "POST"])
def website(company_id: int):
    company = _company(company_id)
    current = companies.website_settings(db(), company)
    form = forms.WebsiteSettingsForm(data=current if request.method == "GET" else None)
    form.store_plugin.choices = _plugin_choices()
    if request.method == "POST":
        return _save_website(company, current, form)
    editing = request.args.get("edit") == "1" and g.user.can("company_settings")
    return render_template(
        "website_settings.html", company=company, settings=current, form=form, editing=editing,
        action_form=forms.ActionForm(), tab="website",
    )  # fmt: skip


def _save_website(company: companies.Company, current: dict[str, Any], form: forms.WebsiteSettingsForm):
    if not g.user.can("company_settings"):
        abort(403)
    if not form.validate_on_submit():
        notice("Choose an installed Store Plugin.", error=True)
        return redirect(url_for("companies.website", company_id=company.id, edit=1))
    wanted: dict[str, Any] = {
        "store_plugin": form.store_plugin.data or None,
        "allow_order_download": bool(form.allow_order_download.data),
        "allow_tracking_upload": bool(form.allow_tracking_upload.data),
    }
    changes = {k: v for k, v in wanted.items() if v != current[k] and v is not None}
    try:
        options = website_options.changed(current, {key: getattr(form, key).data for key in website_options.LABELS})
        changes.update(options)
        companies.update_website_settings(
            db(), company, **{k: v for k, v in changes.items() if k not in options}, options=options, actor=actor()
        )
    except HostError as exc:
        notice(str(exc), error=True)
        return redirect(url_for("companies.website", company_id=company.id, edit=1))
    notice("Website General Settings saved." if changes else "Nothing changed.")
    return redirect(url_for("companies.website", company_id=company.id))


# POST on the settings page is checked inside (the same URL serves GET to every role)
website.permission = "company_settings"  # type: ignore[attr-defined]


@bp.route("/companies/<int:company_id>/import-orders")
def import_dialog(company_id: int):
    """Import Orders: the Start Date to read the channel's orders from (Sellercloud's Download
    Orders from Channel), filled with the recent window."""
    if not g.user.can("import_orders"):
        abort(403)
    company = _company(company_id)
    form = forms.ImportOrdersForm(data={"start_date": cursors.recent_since().date().isoformat()})
    return _import_page(company, form, None, 200)


def _import_page(company: companies.Company, form: forms.ImportOrdersForm, error: str | None, status: int):
    ws = companies.website_settings(db(), company)
    cursor = cursors.get_cursor(db(), company.id, ws["store_plugin"]) if ws["store_plugin"] else None
    return render_template(
        "import_orders.html", company=company, settings=ws, form=form, error=error, tab="website",
        cursor=clock.iso(cursor) if cursor else None, recent_days=cursors.recent_days(),
        today=clock.now().date().isoformat(),
    ), status  # fmt: skip


@bp.route("/companies/<int:company_id>/import-orders", methods=["POST"])
@requires("import_orders")
def import_orders(company_id: int):
    company = _company(company_id)
    form = forms.ImportOrdersForm()
    if not form.validate_on_submit():
        abort(400)
    # a form without the box (an older page) reads the recent window, as the box does by default
    typed = form.start_date.data if "start_date" in request.form else None
    try:
        start = cursors.parse_start_date(typed) if typed is not None else cursors.recent_since()
    except HostError as exc:
        return _import_page(company, form, str(exc), 422)
    try:
        gate.check_allowed(db(), company, "import_orders")
    except HostError as exc:
        notice(f"Import Orders not started: {exc}", error=True)
        return redirect(url_for("companies.website", company_id=company.id))
    params = {"since": clock.iso(start)}
    job, created = jobs.enqueue(db(), company.id, "import_orders", {**params, **audit.to_params(actor())})
    # its counts are written when it finishes (host/jobs/runner.py), under this person's name too
    audit.record(db(), actor(), "Import Orders started", company_id=company.id, target=f"job {job.id}",
                 details={"start_date": params["since"], "created": created})  # fmt: skip
    shown = filters.when(params["since"])
    if created:
        text = f"Queued Job {job.id} (Import Orders) created: it reads the orders updated since {shown}."
    else:
        own = job.params.get("since")
        text = f"Import Orders is already queued as job {job.id}" + (
            f", reading from {filters.when(own)}; your Start Date was not applied." if own != params["since"] else "."
        )
    notice(text, href=url_for("jobs.show", job_id=job.id), link=f"Open Queued Job {job.id}")
    return redirect(url_for("companies.website", company_id=company.id))


@bp.route("/companies/<int:company_id>/cart-general", methods=["GET", "POST"])
def cart_general(company_id: int):
    company = _company(company_id)
    ws = companies.website_settings(db(), company)
    if not ws["store_plugin"]:
        notice("Choose a Store Plugin in Website General Settings first.", error=True)
        return redirect(url_for("companies.website", company_id=company.id))
    model = plugins.channel_info(ws["store_plugin"]).settings_model
    shown = companies.show_cart_settings(db(), company)
    posted = request.method == "POST"
    if posted and not g.user.can("company_settings"):
        abort(403)
    form = forms.cart_general_form(model, shown, request.form if posted else None)
    errors: dict[str, str] = {}
    if posted:
        if not form.validate_on_submit():
            abort(400)
        saved, errors = _save_cart_general(company, form, shown)
        if saved is not None:
            notice(saved)
            return redirect(url_for("companies.cart_general", company_id=company.id))
    editing = posted or (request.args.get("edit") == "1" and g.user.can("company_settings"))
    return render_template(
        "cart_general.html", company=company, shown=shown, form=form, errors=errors, editing=editing,
        action_form=forms.ActionForm(), tab="cart", **_test_state(company),
        plugin=plugins.channel_info(ws["store_plugin"]), by_key={f["key"]: f for f in shown["fields"]},
    ), (422 if errors else 200)  # fmt: skip


cart_general.permission = "company_settings"  # type: ignore[attr-defined]


def _save_cart_general(company, form, shown) -> tuple[str | None, dict[str, str]]:
    """Send only what changed to the host; a secret box left empty keeps the stored secret."""
    current = {f["key"]: f for f in shown["fields"]}
    pairs: dict[str, str] = {}
    for key, meta in form.meta_fields.items():
        value = (form[key].data or "").strip()
        if meta["secret"]:
            if value:
                pairs[key] = value
        elif value != ("" if current[key]["value"] is None else str(current[key]["value"])):
            pairs[key] = value
    if not pairs:
        return "Nothing changed.", {}
    try:
        companies.update_cart_settings(db(), company, pairs, actor=actor())
    except InvalidSettings as exc:
        errors = _field_errors(exc, str(exc))
        # a password box comes back empty (a secret is never written into the page): say so, or
        # the next Save would keep the old secret while the person believes theirs was taken
        for key in pairs:
            if form.meta_fields[key]["secret"] and key not in errors:
                errors[key] = f"The {form[key].label.text} you typed was not saved: type it again."
        return None, errors
    return "Cart General saved. Run Test Settings to establish the connection.", {}


def _field_errors(exc: InvalidSettings, line: str) -> dict[str, str]:
    """Each message beside its field: the host's one-line error keeps pydantic's details in its context."""
    cause = exc.__context__
    if isinstance(cause, ValidationError):
        found: dict[str, str] = {}
        for error in cause.errors(include_input=False, include_url=False):
            key = str(error["loc"][0]) if error["loc"] else "_form"
            found.setdefault(key, error["msg"].removeprefix("Value error, "))
        return found
    return {"_form": line}


@bp.route("/companies/<int:company_id>/test-settings", methods=["POST"])
@requires("test_settings")
def test_settings(company_id: int):
    """Queue Test Settings and answer at once: the job runs in the background (this process's
    thread, or a worker's), and Cart General shows it running, then its answer."""
    company = _company(company_id)
    job, created = jobs.enqueue(db(), company.id, "test_settings", connection_test.params(requested_by=actor()))
    if job.status == jobs.QUEUED:
        background.run_job(current_app.config["DB_PATH"], job.id)
    audit.record(db(), actor(), "Test Settings started", company_id=company.id, target=f"job {job.id}",
                 details={"created": created})  # fmt: skip
    seconds = config.current().test_settings_seconds
    notice(
        f"Test Settings started as Queued Job {job.id}; its answer appears below within {seconds:g} s."
        if created
        else f"Test Settings is already running as Queued Job {job.id}; its answer appears below.",
        href=url_for("jobs.show", job_id=job.id),
        link=f"Open Queued Job {job.id}",
    )
    return redirect(url_for("companies.cart_general", company_id=company.id))


@bp.route("/companies/<int:company_id>/test-settings")
def test_settings_state(company_id: int):
    """The connection line and the last Test Settings, as a fragment Cart General fetches again
    every second while the test runs."""
    company = _company(company_id)
    return render_template("_test_settings.html", company=company, **_test_state(company))


def _test_state(company: companies.Company) -> dict[str, Any]:
    """The connection, its tokens' dates and the last Test Settings, as the page shows them."""
    # The test first: a Test Settings job records the connection (and its token) before it ends,
    # so once the page sees the job ended it also sees what the job recorded. Read the other way
    # round, a job ending in between showed its answer beside the connection line of before.
    test = connection_test.latest(db(), company.id)
    channel = companies.chosen_plugin(db(), company)
    return {
        "fresh": companies.get_company(db(), company.id),
        "tokens": credentials.status(db(), company.id, channel) if channel else [],
        "test": test,
        "test_seconds": f"{config.current().test_settings_seconds:g}",
    }


@bp.route("/companies/<int:company_id>/change-log")
def change_log(company_id: int):
    if not g.user.can("audit"):
        abort(403)
    company = _company(company_id)
    wanted, problems = audit.Filters.parse(request.args, company_id=company.id)
    for problem in problems:
        notice(problem, error=True)
    return render_template(
        "change_log.html", company=company, entries=audit.entries(db(), filters=wanted), tab="log",
        wanted=wanted, kinds=audit.kinds(db(), company_id=company.id), who=wanted.source,
        who_choices=audit.SOURCE_WORDS,
    )  # fmt: skip
