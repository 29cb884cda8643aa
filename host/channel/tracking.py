"""Tracking numbers staff type, checked before a shipment is stored (``plugin_spec.tracking``),
and the carriers a channel offers in Ship Items."""

from __future__ import annotations

from host.channel import plugins
from host.errors import HostError, NotFound
from plugin_spec.tracking import OTHER, carrier_format, normalise, tracking_problem


def checked_tracking(carrier: str, number: str) -> str:
    """``number`` as stored (a known carrier's number without spaces, upper case), or a
    HostError naming what is wrong with it."""
    problem = tracking_problem(carrier, number)
    if problem:
        raise HostError(problem)
    return normalise(number) if carrier_format(carrier) is not None else number


def carriers(channel: str | None) -> tuple[str, ...]:
    """The carriers the channel knows, then ``Other``; empty when it names none (staff type one)."""
    if not channel:
        return ()
    try:
        listed = plugins.channel_info(channel).carriers
    except NotFound:  # the plugin is not installed: a free text box
        return ()
    return (*listed, OTHER) if listed else ()
