"""SQL is written once, with named parameters: no statement of the host needs a rewrite for
PostgreSQL (the regular expressions of ``host.store.pg.translate`` are gone; its adapter refuses
positional parameters)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

HOST = Path(__file__).resolve().parent.parent / "host"
#: the files whose SQL is converted already (the store's core, the job queue, secrets, the CLI)
CONVERTED = (
    "store/api.py", "store/db.py", "store/pg.py", "store/pg_copy.py", "store/maintenance.py", "store/errors.py",
    "jobs/queue.py", "jobs/runner.py", "jobs/pool.py", "jobs/bounded.py", "jobs/cluster",
    "records/secrets.py", "cli/db.py", "cli/plugins.py", "cli/web.py", "cli/config.py", "cli/user_companies.py",
)  # fmt: skip

_QUOTED = re.compile(r"'(?:[^']|'')*'")
#: a positional ``?`` where SQL takes a value: after a comparison, a comma or bracket, IS, LIMIT...
_POSITIONAL = re.compile(
    r"(?:[=<>(,]|\bIS(?:\s+NOT)?|\bLIMIT|\bOFFSET|\bTHEN|\bELSE|\bLIKE|\bAND|\bOR|\bWHEN)\s*\?(?=[\s,)]|$)", re.I
)


def positional_sql(path: Path, root: Path = HOST.parent) -> list[str]:
    """``file:line: text`` of each string in ``path`` that holds SQL with a positional ``?``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _POSITIONAL.search(_QUOTED.sub("''", node.value)):
                found.append(f"{path.relative_to(root)}:{node.lineno}: {node.value[:70]!r}")
    return found


def _files(names: tuple[str, ...]) -> list[Path]:
    paths = []
    for name in names:
        target = HOST / name
        paths += sorted(target.rglob("*.py")) if target.is_dir() else [target]
    return paths


def test_the_check_finds_a_positional_parameter_but_not_a_named_one_or_a_literal(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        'A = "UPDATE jobs SET a = ? WHERE id = :id"\n'
        "B = \"SELECT 1 FROM t WHERE (a = :x OR (a IS NULL AND :x IS NULL)) AND b = '?'\"\n"
        'C = f"SELECT id FROM t {1} LIMIT ?"\n'
        'D = "which key file?"\n'
    )
    found = [line.split(": ", 1)[0] for line in positional_sql(sample, tmp_path)]
    assert found == ["sample.py:1", "sample.py:3"]


def test_the_store_core_the_job_queue_and_secrets_write_sql_with_named_parameters():
    found = [line for path in _files(CONVERTED) for line in positional_sql(path)]
    assert found == [], "\n".join(found)


def test_no_host_module_writes_sql_with_positional_parameters():
    found = [line for path in sorted(HOST.rglob("*.py")) for line in positional_sql(path)]
    assert found == [], "\n".join(found)
