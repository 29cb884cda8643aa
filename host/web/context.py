"""What every route needs: this request's database connection and the signed-in user."""

from __future__ import annotations

import sqlite_utils
from flask import current_app, g

from ..db import connect


def db() -> sqlite_utils.Database:
    """This request's connection (opened on first use, closed when the request ends)."""
    if "db" not in g:
        g.db = connect(current_app.config["DB_PATH"], migrate=False)
    return g.db


def actor() -> str:
    return g.user.name
