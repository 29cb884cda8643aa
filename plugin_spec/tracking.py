"""Tracking numbers as carriers issue them: clean text, and the known formats of common carriers.

The host checks every tracking number staff type when they ship or correct a shipment
(``check_tracking``); a plugin names the carriers its channel knows in
``ChannelInfo.carriers`` (a select in Ship Items), and ``OTHER`` is always offered beside
them for a carrier the list lacks: its number is checked as clean text only.

A carrier is recognised by its name's first word(s) (``"DHL Express"`` and ``"DHL DE"`` are
DHL, ``"UPS 2 days"`` is UPS), so a channel's own spelling of a carrier is checked too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

#: the carrier for a package sent with a carrier the channel's list lacks: any clean number
OTHER = "Other"
#: longest tracking number taken (the longest known format, USPS's IMpb, has 34 characters)
MAX_LENGTH = 40
#: characters that would be markup in a page, an e-mail or a channel's portal
MARKUP = "<>&\"'"
_PRINTABLE = re.compile(r"[\x20-\x7e]+")


def ups_check_digit(body: str) -> int:
    """The check digit of a UPS ``1Z`` number, from the 15 characters between ``1Z`` and it:
    letters count as ``(position in the alphabet + 1) mod 10``, every second character twice."""
    total = 0
    for index, char in enumerate(body):
        value = int(char) if char.isdigit() else (ord(char) - ord("A") + 2) % 10
        total += value * 2 if index % 2 else value
    return (10 - total % 10) % 10


def _ups(number: str) -> bool:
    return ups_check_digit(number[2:17]) == int(number[17])


def _s10_check_digit(digits: str) -> int:
    """The check digit of a UPU S10 number (``RR123456785FR``) from its first eight digits."""
    total = sum(int(d) * w for d, w in zip(digits, (8, 6, 4, 2, 3, 5, 9, 7), strict=True))
    check = 11 - total % 11
    return 5 if check == 11 else 0 if check == 10 else check


def _s10(number: str) -> bool:
    match = re.fullmatch(r"[A-Z]{2}(\d{8})(\d)[A-Z]{2}", number)
    return match is None or _s10_check_digit(match.group(1)) == int(match.group(2))


@dataclass(frozen=True)
class CarrierFormat:
    name: str
    #: lower-case prefixes of the carrier names that mean this carrier
    names: tuple[str, ...]
    pattern: re.Pattern[str]
    #: what staff read when a number does not fit
    described: str
    check: Callable[[str], bool] | None = None


#: an international postal number (UPU S10): two letters, eight digits, a check digit, the country
_S10 = r"[A-Z]{2}\d{9}[A-Z]{2}"

FORMATS: tuple[CarrierFormat, ...] = (
    CarrierFormat(
        "UPS", ("ups",), re.compile(r"1Z[0-9A-Z]{16}"), "1Z and 16 letters or digits, the last a check digit", _ups
    ),
    CarrierFormat(
        "USPS",
        ("usps", "us postal"),
        re.compile(rf"9[1-5]\d{{18,32}}|82\d{{8}}|{_S10}"),
        "20 to 34 digits starting 91 to 95, or an international number such as EC123456785US",
        _s10,
    ),  # fmt: skip
    CarrierFormat("FedEx", ("fedex",), re.compile(r"\d{12}|\d{15}|\d{20}|\d{22}"), "12, 15, 20 or 22 digits"),
    CarrierFormat(
        "DHL",
        ("dhl",),
        re.compile(rf"\d{{10}}|\d{{12}}|\d{{20}}|JJD\d{{10,21}}|JD\d{{18}}|GM\d{{16,18}}|{_S10}"),
        "10, 12 or 20 digits, JJD or JD and digits, GM and 16 to 18 digits, or a postal number",
        _s10,
    ),  # fmt: skip
    CarrierFormat(
        "Colissimo",
        ("colissimo", "socolissimo", "la poste"),
        re.compile(rf"\d[A-Z]\d{{11}}|{_S10}"),
        "a digit, a letter and 11 digits (6A12345678901), or a postal number such as CB123456785FR",
        _s10,
    ),  # fmt: skip
    CarrierFormat(
        "Chronopost", ("chronopost",), re.compile(rf"{_S10}|\d{{13,14}}"), "XX123456785FR or 13 digits", _s10
    ),
    CarrierFormat("Royal Mail", ("royal mail",), re.compile(rf"{_S10}|[A-Z]{{2}}\d{{9}}"), "AB123456785GB", _s10),
    CarrierFormat("DPD", ("dpd",), re.compile(r"\d{14}"), "14 digits"),
    CarrierFormat("GLS", ("gls",), re.compile(r"\d{11,12}|[A-Z0-9]{8}"), "11 or 12 digits, or 8 letters and digits"),
)


def carrier_format(carrier: str) -> CarrierFormat | None:
    """The known format of ``carrier`` (by its name's start), or None for a carrier not in ``FORMATS``."""
    name = " ".join(carrier.lower().split())
    for fmt in FORMATS:
        if any(name == n or name.startswith(n + " ") or name.startswith(n + "-") for n in fmt.names):
            return fmt
    return None


def tracking_problem(carrier: str, number: str) -> str | None:
    """Why ``number`` is not a tracking number ``carrier`` would issue, in one line; None if it is."""
    if not number:
        return "the tracking number is empty"
    if len(number) > MAX_LENGTH:
        return f"the tracking number is longer than {MAX_LENGTH} characters"
    if not _PRINTABLE.fullmatch(number) or any(c in MARKUP for c in number):
        return "the tracking number must be plain printable text, without < > & \" or '"
    fmt = carrier_format(carrier) if carrier != OTHER else None
    if fmt is None:
        return None
    compact = normalise(number)
    if not fmt.pattern.fullmatch(compact) or (fmt.check is not None and not fmt.check(compact)):
        return f"{number!r} is not a {fmt.name} tracking number ({fmt.described}); check it, or choose {OTHER}"
    return None


def normalise(number: str) -> str:
    """The number as carriers print it: upper case, without the spaces staff type between groups."""
    return "".join(number.split()).upper()
