"""Small helpers shared by the host tests (a module of its own: two conftest.py files exist)."""

from __future__ import annotations

import hashlib
from pathlib import Path

API_KEY = "bmp-test-key-7f3a9c2e51d4"


def file_digest(path: Path) -> str:
    """The database file's bytes, to prove a refused command wrote nothing."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
