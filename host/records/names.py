"""How names are compared: case-insensitively for every script, not only ASCII."""

from __future__ import annotations

import unicodedata


def name_key(name: str) -> str:
    """The form two names share when a person would call them the same ("ÄRGER" and "ärger")."""
    return unicodedata.normalize("NFKC", name.strip()).casefold()
