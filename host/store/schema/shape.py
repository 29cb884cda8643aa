"""What a database's schema is, read back from the database itself, to compare two databases.

:func:`shape` gives, for either backend, every table (its columns in order with their type, NOT
NULL and default; its primary key, foreign keys and checks) and every index (table, columns with
their collation, unique or not, the WHERE of a partial one), leaving out the migration records.
A unique constraint is described as the unique index that enforces it, and on SQLite a check by
its expression (SQLite keeps no constraint names apart from the table's SQL). :func:`portable`
reduces a shape to what both backends must agree on, so SQLite's and PostgreSQL's compare.
"""

from __future__ import annotations

import re
from typing import Any

from host.records.order_search import SQLITE_ONLY_TABLES

#: bookkeeping, not schema: each backend's migration records
RECORDS = frozenset({"_sqlite_migrations", "cartplugin_migrations"})


def shape(db: Any) -> dict[str, Any]:
    """``{"tables": {name: {...}}, "indexes": {name: {...}}, ...}`` of ``db`` (either backend), with
    SQLite's triggers and PostgreSQL's extensions."""
    if getattr(db, "backend", "sqlite") == "postgresql":
        return _pg_shape(db)
    return _sqlite_shape(db)


# -- SQLite ------------------------------------------------------------------------------------


def _sqlite_shape(db: Any) -> dict[str, Any]:
    tables: dict[str, Any] = {}
    indexes: dict[str, Any] = {}
    triggers: dict[str, str] = {}
    masters = db.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
    ).fetchall()
    for kind, name, table, sql in masters:
        if kind == "table" and name not in RECORDS:
            tables[name] = _sqlite_table(db, name, sql or "")
        elif kind == "trigger":
            triggers[name] = table
    for table in tables:
        for _, name, unique, origin, partial in db.execute(f"PRAGMA index_list({_quote(table)})").fetchall():
            if origin == "pk":  # the table's primary key, described with the table
                continue
            columns = [
                (column, collation)
                for _, _, column, _, collation, key in db.execute(f"PRAGMA index_xinfo({_quote(name)})").fetchall()
                if key
            ]
            sql = next((s for k, n, _, s in masters if k == "index" and n == name), None) or ""
            where = sql[re.search(r"\bWHERE\b", sql, re.I).end() :] if partial and sql else ""  # type: ignore[union-attr]
            indexes[_unique_name(table, [c for c, _ in columns]) if origin == "u" else name] = {
                "table": table,
                "columns": columns,
                "unique": bool(unique),
                "where": _spaces(where),
            }
    return {"tables": tables, "indexes": indexes, "triggers": triggers}


def _sqlite_table(db: Any, name: str, sql: str) -> dict[str, Any]:
    info = db.execute(f"PRAGMA table_info({_quote(name)})").fetchall()
    return {
        "columns": [(column, kind.upper(), bool(notnull), default) for _, column, kind, notnull, default, _ in info],
        "primary_key": [row[1] for row in sorted((row for row in info if row[5]), key=lambda row: row[5])],
        "foreign_keys": sorted(
            (row[3], row[2], row[4], row[6])
            for row in db.execute(f"PRAGMA foreign_key_list({_quote(name)})").fetchall()
        ),
        "checks": sorted(_spaces(check) for check in _checks(sql)),
    }


def _unique_name(table: str, columns: list[str]) -> str:
    """The index of a UNIQUE constraint, by what it covers: SQLite numbers them in the order of the
    table's SQL, PostgreSQL names them after the constraint."""
    return f"<unique {table}({', '.join(columns)})>"


def _checks(sql: str) -> list[str]:
    """The expressions of the CHECK constraints in a CREATE TABLE statement."""
    found = []
    code = re.sub(r"'(?:[^']|'')*'", lambda m: "\x00" * len(m.group(0)), sql)  # literals can hold anything
    for match in re.finditer(r"\bCHECK\s*\(", code, re.I):
        depth, i = 1, match.end()
        while depth and i < len(code):
            depth += {"(": 1, ")": -1}.get(code[i], 0)
            i += 1
        found.append(sql[match.end() : i - 1])
    return found


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _spaces(text: str) -> str:
    return " ".join(text.split())


# -- PostgreSQL --------------------------------------------------------------------------------


def _pg_shape(db: Any) -> dict[str, Any]:
    tables: dict[str, Any] = {}
    for (name,) in db.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename", {}
    ).fetchall():
        if name in RECORDS:
            continue
        columns = db.execute(
            "SELECT column_name, CASE WHEN data_type = 'USER-DEFINED' THEN udt_name ELSE data_type END, "
            "is_nullable = 'NO', column_default, is_identity = 'YES', collation_name "
            "FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = :table "
            "ORDER BY ordinal_position",
            {"table": name},
        ).fetchall()
        constraints = db.execute(
            "SELECT c.contype, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
            "JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
            "WHERE n.nspname = current_schema() AND t.relname = :table ORDER BY c.conname",
            {"table": name},
        ).fetchall()
        tables[name] = {
            "columns": [tuple(row) for row in columns],
            "primary_key": [],
            "foreign_keys": sorted(d for kind, _, d in constraints if kind == "f"),
            "checks": sorted(f"{conname}: {d}" for kind, conname, d in constraints if kind == "c"),
        }
    indexes: dict[str, Any] = {}
    rows = db.execute(
        "SELECT i.relname, t.relname, x.indisunique, x.indisprimary, am.amname, "
        "pg_get_expr(x.indpred, x.indrelid), "
        "ARRAY(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(attnum, n) "
        "      JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum ORDER BY k.n), "
        "ARRAY(SELECT coalesce(co.collname, '') FROM unnest(x.indcollation) WITH ORDINALITY k(coll, n) "
        "      LEFT JOIN pg_collation co ON co.oid = k.coll ORDER BY k.n), "
        "EXISTS (SELECT 1 FROM pg_constraint c "
        "        WHERE c.conindid = x.indexrelid AND c.conrelid = x.indrelid AND c.contype = 'u') "
        "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
        "JOIN pg_namespace n ON n.oid = t.relnamespace JOIN pg_am am ON am.oid = i.relam "
        "WHERE n.nspname = current_schema() ORDER BY i.relname",
        {},
    ).fetchall()
    for name, table, unique, primary, method, where, columns, collations, of_constraint in rows:
        if table in RECORDS:
            continue
        if primary:  # described with its table, as on SQLite
            tables[table]["primary_key"] = list(columns)
            continue
        indexes[_unique_name(table, columns) if of_constraint else name] = {
            "table": table,
            "columns": list(zip(columns, collations, strict=True)),
            "unique": bool(unique),
            "where": where or "",
            "method": method,
        }
    extensions = sorted(r[0] for r in db.execute("SELECT extname FROM pg_extension", {}).fetchall())
    return {"tables": tables, "indexes": indexes, "extensions": extensions}


# -- what both backends must agree on ----------------------------------------------------------

#: each backend's column types, as the schema's words spell them (``dialects.py``)
TYPES = {"INTEGER": "integer", "bigint": "integer", "TEXT": "text", "text": "text", "citext": "text"}


def portable(described: dict[str, Any]) -> dict[str, Any]:
    """Tables with their columns (name, type through :data:`TYPES`, NOT NULL, default) and indexes
    (table, columns, unique, WHERE), the same for a SQLite and a PostgreSQL database of one schema.

    Left out: SQLite's search index tables and triggers and PostgreSQL's trigram index (one
    feature built two ways), checks (PostgreSQL writes them back in its own words), collations
    and extensions.
    """
    tables = {}
    for name, table in described["tables"].items():
        if name in SQLITE_ONLY_TABLES:
            continue
        columns = []
        for column in table["columns"]:
            column_name, kind, notnull, default = column[:4]
            identity = len(column) > 4 and column[4]
            if identity or column_name in table["primary_key"]:
                notnull = True  # SQLite lets a primary key other than the rowid hold NULL; the host stores none
            columns.append((column_name, TYPES.get(kind, kind), bool(notnull), _default(default)))
        tables[name] = columns
    indexes = {}
    for name, index in described["indexes"].items():
        if index.get("method", "btree") != "btree" or index["table"] in SQLITE_ONLY_TABLES:
            continue
        covered = tuple(column for column, _ in index["columns"])
        indexes[name] = (index["table"], covered, index["unique"], _where(index["where"]))
    return {"tables": tables, "indexes": indexes}


def _default(default: str | None) -> str | None:
    return None if default is None else re.sub(r"::[a-z ]+$", "", default)


def _where(where: str) -> str:
    """A partial index's condition in one spelling: PostgreSQL writes ``x IN ('a', 'b')`` back as
    ``(x = ANY (ARRAY['a'::text, 'b'::text]))`` and brackets every comparison."""
    text = where.replace("::text", "").replace(" = ANY (ARRAY[", " IN (").replace("])", ")")
    return " ".join(text.replace("(", " ").replace(")", " ").lower().split())
