"""Run one or more `make mutate` runs and sum them up per module.

Each folder beside this file is one run: its ``pyproject.toml`` names the modules mutmut changes
and the tests that judge them (the fast, in-process tests that reach that code). ``host/``,
``plugin_spec/`` and ``tests/`` in each folder are links to the repository's own, made here, so
that every run has its own ``mutants/`` and its own test selection.

    python mutate/run.py                       # every run, every mutant
    python mutate/run.py jobs secrets          # only these runs
    python mutate/run.py http --sample 150     # a uniform sample of each module's mutants
    python mutate/run.py secrets --recheck     # the survivors again, after adding tests
    python mutate/run.py http --sample 150 --recheck
    python mutate/run.py --summary             # the verdicts so far, run nothing

A sample is drawn with a fixed seed, so a later run with the same size checks the same mutants
again (mutmut keeps its verdicts in ``mutants/`` and checks only what changed). mutmut does not
notice a new test by itself: ``--recheck`` forgets the survivors' verdicts first. When it finds
new tests it checks again every mutant of the functions they reach, so give a recheck the same
``--sample`` as the first run.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
LINKS = ("host", "plugin_spec", "tests")
NOTHING = "no.such.mutant"  # a name that matches nothing: mutmut makes the mutants and runs none
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout"}
STATUS.update({-24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout", 37: "caught by type check"})


def runs() -> list[str]:
    return sorted(p.parent.name for p in HERE.glob("*/pyproject.toml"))


def mutmut() -> str:
    return str(Path(sys.executable).with_name("mutmut"))


def link(run: str) -> Path:
    folder = HERE / run
    for name in LINKS:
        target = folder / name
        if not target.is_symlink():
            target.symlink_to(Path("..") / ".." / name)
    return folder


def verdicts(folder: Path) -> dict[str, str]:
    """Each mutant's verdict, from mutmut's own records in ``mutants/``."""
    found: dict[str, str] = {}
    for meta in (folder / "mutants").glob("**/*.py.meta"):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            found[name] = "not checked" if code is None else STATUS.get(code, "suspicious")
    return found


def forget_survivors(folder: Path) -> None:
    """Clear the verdict of every mutant no test caught, so that mutmut checks it again (it
    does not notice new tests by itself)."""
    for meta in (folder / "mutants").glob("**/*.py.meta"):
        data = json.loads(meta.read_text())
        codes = data["exit_code_by_key"]
        for name, code in codes.items():
            if code is not None and STATUS.get(code, "suspicious") in ("survived", "no tests", "suspicious"):
                codes[name] = None
        meta.write_text(json.dumps(data))


#: SQL text: a statement or a clause that starts with a keyword and shows a mark of SQL (a
#: parameter, FROM, SET, ...), so that words for people ("Update Tracking") never count as SQL
SQL_START = re.compile(r"\s*(SELECT|UPDATE|INSERT|DELETE|CREATE|PRAGMA|WITH|AND|OR|WHERE)\b", re.I)
SQL_MARK = re.compile(r"\?|\b(FROM|INTO|SET|TABLE|VALUES|LIMIT|JOURNAL_MODE)\b", re.I)


def is_sql(text: str) -> bool:
    return bool(SQL_START.match(text) and SQL_MARK.search(text))


class _SqlCase(ast.NodeTransformer):
    """SQL's keywords and unquoted names mean the same in any case, on SQLite and PostgreSQL."""

    def visit_Constant(self, node: ast.Constant) -> ast.Constant:
        if isinstance(node.value, str) and is_sql(node.value):
            return ast.Constant(node.value.lower())
        return node


def _functions(source: Path) -> dict[str, str]:
    """Every function of a mutated module, as a case-blind dump: ``x_f__mutmut_orig``, ``x_f__mutmut_3``."""
    found: dict[str, str] = {}
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and "__mutmut_" in node.name:
            body = ast.Module(body=node.body, type_ignores=[])
            found[node.name] = ast.dump(_SqlCase().visit(body))
    return found


def sql_case_only(folder: Path, survivors: list[str]) -> set[str]:
    """The survivors whose only change is the letter case of SQL text: equivalent, not missed."""
    equivalent: set[str] = set()
    dumps: dict[str, dict[str, str]] = {}
    for name in survivors:
        module, _, function = name.rpartition(".")
        if module not in dumps:
            dumps[module] = _functions(folder / "mutants" / (module.replace(".", "/") + ".py"))
        functions = dumps[module]
        original = functions.get(function.rsplit("__mutmut_", 1)[0] + "__mutmut_orig")
        if original is not None and functions.get(function) == original:
            equivalent.add(name)
    return equivalent


def module_of(name: str) -> str:
    return name.split(".x_")[0].split(".xǁ")[0]


def refresh_copies(folder: Path) -> None:
    """mutmut copies the source into ``mutants/`` once and keeps a copy that exists: bring every
    file it does not mutate up to date, so that a later run tests today's code around the mutants."""
    mutants = folder / "mutants"
    if not mutants.is_dir():
        return
    for top in ("host", "plugin_spec"):
        for source in (folder / top).rglob("*"):
            copy = mutants / source.relative_to(folder)
            if not source.is_file() or "__pycache__" in source.parts or copy.with_name(copy.name + ".meta").exists():
                continue
            if not copy.exists() or copy.read_bytes() != source.read_bytes():
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, copy)


def run(name: str, sample: int | None, jobs: int, seed: int, recheck: bool) -> None:
    folder = link(name)
    refresh_copies(folder)
    command = [mutmut(), "run", "--max-children", str(jobs)]
    if recheck:
        forget_survivors(folder)
    if sample is None:
        subprocess.run(command, cwd=folder, check=True)
        return
    # makes the mutants, then stops with "nothing matches": the names are what is wanted
    subprocess.run([*command, NOTHING], cwd=folder, capture_output=True, check=False)
    if not verdicts(folder):
        raise SystemExit(f"mutmut made no mutants in {folder}")
    chosen: list[str] = []
    by_module: dict[str, list[str]] = {}
    for mutant in sorted(verdicts(folder)):
        by_module.setdefault(module_of(mutant), []).append(mutant)
    for mutants in by_module.values():
        chosen += random.Random(seed).sample(mutants, min(sample, len(mutants)))
    subprocess.run([*command, *chosen], cwd=folder, check=True)


def summary(names: list[str]) -> int:
    """Print the kill ratio of every module and name its survivors; 1 when one is under 85 %."""
    low = 0
    for name in names:
        found = verdicts(HERE / name)
        per_module: dict[str, Counter[str]] = {}
        for mutant, verdict in found.items():
            per_module.setdefault(module_of(mutant), Counter())[verdict] += 1
        missed = sorted(m for m, v in found.items() if v in ("survived", "no tests", "suspicious"))
        equivalent = sql_case_only(HERE / name, missed)
        for module, counts in sorted(per_module.items()):
            judged = sum(n for verdict, n in counts.items() if verdict not in ("not checked", "skipped"))
            killed = counts["killed"] + counts["timeout"] + counts["caught by type check"]
            same = sum(1 for m in equivalent if module_of(m) == module)
            ratio = killed / (judged - same) if judged > same else 0.0
            low += judged > 0 and ratio < 0.85
            detail = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()))
            print(
                f"{name:10} {module:24} {ratio:6.1%} killed of {judged - same} checked "
                f"({detail}; {same} of the survivors only change the case of SQL: equivalent, left out; "
                f"{killed / judged if judged else 0:.1%} with them)"
            )
            for mutant in missed:
                if module_of(mutant) == module:
                    print(f"    {'SQL case' if mutant in equivalent else found[mutant]:9} {mutant}")
    return 1 if low else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help=f"runs to do (default: all of {', '.join(runs())})")
    parser.add_argument("--sample", type=int, help="check this many mutants of each module, drawn at random")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("MUTATE_JOBS", "2")))
    parser.add_argument("--recheck", action="store_true", help="check the survivors again (after adding tests)")
    parser.add_argument("--summary", action="store_true", help="only print the verdicts so far")
    args = parser.parse_args()
    names = args.runs or runs()
    unknown = sorted(set(names) - set(runs()))
    if unknown:
        parser.error(f"no such run: {', '.join(unknown)} (there are: {', '.join(runs())})")
    if not args.summary:
        for name in names:
            run(name, args.sample, args.jobs, args.seed, args.recheck)
    return summary(names)


if __name__ == "__main__":
    sys.exit(main())
