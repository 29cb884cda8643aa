"""Forms (WTForms through Flask-WTF, which adds the CSRF token to each of them).

Forms here only carry and shape what was typed; every rule about the values is the host's.
The Cart General form is generated from the plugin's pydantic settings model.
"""

from __future__ import annotations

import typing
from decimal import Decimal
from typing import Any

from flask_wtf import FlaskForm
from pydantic import SecretStr
from wtforms import BooleanField, Field, PasswordField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length

from host.records import orders
from plugin_spec import CartSettings

try:  # WTForms 3.3 takes options as SelectChoice and deprecates (value, label) tuples
    from wtforms.fields.choices import SelectChoice as _Choice
except ImportError:  # older WTForms: tuples

    def _Choice(value: str, label: str) -> Any:  # noqa: N802
        return (value, label)


def choices(pairs: list[tuple[str, str]]) -> list[Any]:
    return [_Choice(value, label) for value, label in pairs]


class ActionForm(FlaskForm):
    """A button that changes something: nothing but its CSRF token."""


class LoginForm(FlaskForm):
    name = StringField("User name", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    submit = SubmitField("Sign in")


class CompanyForm(FlaskForm):
    name = StringField("Company Name", validators=[DataRequired(), Length(max=250)])
    submit = SubmitField("Add")


class WebsiteSettingsForm(FlaskForm):
    store_type = SelectField("Store Type", choices=["Custom"])
    store_plugin = SelectField("Store Plugin", choices=[])
    allow_order_download = BooleanField("Allow Order Download")
    allow_tracking_upload = BooleanField("Allow Tracking Upload")
    allow_download_shipped = BooleanField("Allow Download Shipped Orders")
    allow_unpaid_orders = BooleanField("Allow Unpaid Orders")
    order_download_limit = BooleanField("Enable Order Download Limit")
    # checked by the host (host.records.website_options), which says what is wrong in one line
    order_download_limit_date = StringField("Order Download Limit Date", render_kw={"type": "date", "size": 12})
    delay_tracking = BooleanField("Delay Tracking Time")
    delay_min_hours = StringField("Min Hours to Wait", render_kw={"type": "number", "min": 0, "max": 720, "step": 1})
    delay_skip_saturday = BooleanField("Skip on Saturday")
    delay_skip_sunday = BooleanField("Skip on Sunday")
    submit = SubmitField("Save")


class ImportOrdersForm(FlaskForm):
    """Import Orders: the date the download reads from (its rules are the host's)."""

    start_date = StringField("Start Date", validators=[Length(max=40)])
    submit = SubmitField("Import Orders")


class PriorityForm(FlaskForm):
    """Queued Job priority, as staff choose it."""

    priority = SelectField("Priority", choices=["Normal", "High", "Critical"])
    submit = SubmitField("Set Priority")


class StatusForm(FlaskForm):
    status = SelectField("New Status", choices=list(orders.STATUSES))
    submit = SubmitField("Go")


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


def cart_general_form(model: type[CartSettings], shown: dict[str, Any], formdata: Any = None) -> FlaskForm:
    """A form with one field per settings-model field: label from ``title``, help from
    ``description``, the stored (or default) value filled in, secrets as an empty "Replace" box."""
    values = {f["key"]: f["value"] for f in shown["fields"]}

    class CartGeneralForm(FlaskForm):
        pass

    meta: dict[str, dict[str, Any]] = {}
    # the channel's own fields first (URL, key), then the host's (commission), as on the screen
    ordered = sorted(model.model_fields.items(), key=lambda item: item[0] in CartSettings.model_fields)
    for key, info in ordered:
        secret = _is_secret(info.annotation)
        label = info.title or key
        kwargs = {"description": info.description or ""}
        if secret:
            field: Field = PasswordField(label, **kwargs)
        else:
            value = values.get(key)
            field = StringField(label, default="" if value is None else str(value), **kwargs)
        setattr(CartGeneralForm, key, field)
        default = None if info.is_required() or info.default is None else str(info.default)
        meta[key] = {
            "secret": secret,
            "required": info.is_required(),
            "masked": values.get(key) if secret else None,
            "default": default,
            "numeric": Decimal in typing.get_args(info.annotation) or info.annotation is Decimal,
            # wide enough to show the stored value or the default whole (a URL, most often)
            "size": min(80, max(30, len(str(values.get(key) or "")), len(default or "")) + 2),
        }
    CartGeneralForm.submit = SubmitField("Save")
    form = CartGeneralForm(formdata=formdata) if formdata is not None else CartGeneralForm()
    form.meta_fields = meta
    return form


def ship_form(lines: list[dict[str, Any]], formdata: Any = None, carriers: tuple[str, ...] = ()) -> FlaskForm:
    """Carrier, tracking number and URL, and one serial-number box per line still to ship.

    ``carriers``: the channel's own list (then ``Other``), offered in a select with a box for
    the name of an Other carrier; without a list the carrier is typed."""

    class ShipForm(FlaskForm):
        if carriers:
            carrier = SelectField("Carrier", choices=choices([("", "(choose)")] + [(c, c) for c in carriers]))
            other_carrier = StringField(
                "Other carrier", validators=[Length(max=200)], description="The carrier's name, when it is Other."
            )
        else:
            carrier = StringField("Carrier", validators=[DataRequired(), Length(max=200)])
        tracking_number = StringField("Tracking Number", validators=[DataRequired(), Length(max=100)])
        tracking_url = StringField("Tracking URL", validators=[Length(max=2000)])

    for line in lines:
        setattr(
            ShipForm,
            f"serial_{line['id']}",
            StringField(f"Serial numbers / IMEI for {line['sku']}", description="Several: separate with commas."),
        )
    ShipForm.submit = SubmitField("Ship")
    return ShipForm(formdata=formdata) if formdata is not None else ShipForm()


class TrackingForm(FlaskForm):
    """Update Tracking of a shipment the channel has recorded."""

    tracking_number = StringField("New tracking number", validators=[DataRequired(), Length(max=100)])
    tracking_url = StringField("Tracking URL", validators=[Length(max=2000)])


def accept_form(lines: list[dict[str, Any]], formdata: Any = None) -> FlaskForm:
    """Accept Order: one "cannot serve" box per line (that line is cancelled on the channel
    instead of accepted), and the button."""

    class AcceptForm(FlaskForm):
        pass

    for line in lines:
        setattr(
            AcceptForm,
            f"cancel_{line['id']}",
            BooleanField(f"Cancel {line['sku']} on the channel: it cannot be served"),
        )
    AcceptForm.submit = SubmitField("Accept Order")
    return AcceptForm(formdata=formdata) if formdata is not None else AcceptForm()
