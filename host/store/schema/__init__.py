"""The host's schema, written once for SQLite and PostgreSQL: an ordered list of steps in portable DDL
(``steps.py``, starting with ``baseline.py``) and the few words each backend spells its own way
(``dialects.py``); the two backends' older steps, frozen, bring databases made before the baseline to
it (``legacy_sqlite.py``, ``legacy_postgresql.py``). ``shape.py`` describes a database's schema, to
compare two. The runners are ``host.store.migrations`` (SQLite) and ``host.store.pg_migrations``.
"""

from host.store.schema.dialects import POSTGRESQL, SQLITE, Dialect
from host.store.schema.steps import BASELINE, STEPS, Step, apply

__all__ = ["BASELINE", "POSTGRESQL", "SQLITE", "STEPS", "Dialect", "Step", "apply"]
