"""The contract every cartplugin channel plugin codes against.

Import the markers and models from here; nothing in this package imports the host.
"""

from . import validators
from .errors import AuthError, BadData, ChannelError, RateLimited, RateLimitWait, TransientError
from .hookspecs import PROJECT_NAME, hookimpl, hookspec
from .models import (
    AcceptRequest,
    AcceptResult,
    Address,
    BadOrder,
    CartSettings,
    ChannelInfo,
    ChannelOrder,
    OrderLine,
    Shipment,
    ShipmentLine,
    TestResult,
    UploadResult,
)

__all__ = [
    "PROJECT_NAME",
    "hookimpl",
    "hookspec",
    "AcceptRequest",
    "AcceptResult",
    "Address",
    "BadOrder",
    "CartSettings",
    "ChannelInfo",
    "ChannelOrder",
    "OrderLine",
    "Shipment",
    "ShipmentLine",
    "TestResult",
    "UploadResult",
    "ChannelError",
    "AuthError",
    "RateLimited",
    "RateLimitWait",
    "TransientError",
    "BadData",
    "validators",
]
