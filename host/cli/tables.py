"""Listings a person can read: a header, aligned columns, short dates.

On a terminal a rule goes under the header and a long cell is shortened with an ellipsis so
a row fits on one line; piped (``| grep``, ``| less``) the columns are aligned the same way,
plain, with nothing shortened. ``--json`` is the format for programs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any

from tabulate import tabulate

from host.cli.terminal import clean

MAX_CELL = 40


def short_date(value: str | None) -> str:
    """``2026-11-27T02:05:41.123456Z`` as ``2026-11-27 02:05`` (UTC)."""
    if not value:
        return "-"
    return value[:16].replace("T", " ")


def _cell(value: Any, shorten: bool) -> str:
    text = "-" if value is None or value == "" else clean(str(value)).replace("\n", " ").replace("\t", " ")
    if shorten and len(text) > MAX_CELL:
        text = text[: MAX_CELL - 1] + "…"
    return text


def render(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, tty: bool | None = None) -> str:
    """The table as text: a header and aligned columns; on a terminal long cells are shortened."""
    tty = sys.stdout.isatty() if tty is None else tty
    cells = [[_cell(v, tty) for v in row] for row in rows]
    return tabulate(cells, headers=list(headers), tablefmt="simple" if tty else "plain", disable_numparse=True)
