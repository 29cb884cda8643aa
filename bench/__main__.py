"""``python -m bench``: run every benchmark row and print one table (see docs/benchmarks.md)."""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .amazon_row import amazon_import
from .common import SandboxProcess, bench_client_options, tempdir
from .pages_under_load import pages_under_load
from .rows import (
    FULL,
    QUICK,
    Config,
    Row,
    bulk_import,
    latency_import,
    many_companies,
    memory,
    scheduler_tick,
    tracking_upload,
)
from .web_rows import web_pages

ROW_KEYS = ("import", "companies", "upload", "memory", "tick", "reimport", "amazon", "import-latency")
#: rows run only when asked for with --rows (the default table stays the rows above)
EXTRA_KEYS = ("web", "pages")
#: each row's number in the table (and in docs/benchmarks.md); 9 came after the web row
NUMBERS = {
    "import": 1, "companies": 2, "upload": 3, "memory": 4, "tick": 5, "reimport": 6, "amazon": 7, "web": 8,
    "import-latency": 9, "pages": 10,
}  # fmt: skip


def machine() -> str:
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return (
        f"{os.cpu_count()} CPU ({model}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )


def render(rows: list[Row]) -> str:
    header = ("#", "benchmark", "measured", "floor", "ratio", "target", "result")
    order = NUMBERS
    body = [
        (
            str(order[r.key]),
            r.title,
            r.measured,
            r.floor,
            "-" if r.ratio is None else f"{r.ratio:.2f}",
            r.target,
            r.result,
        )
        for r in sorted(rows, key=lambda r: order[r.key])
    ]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(cells)) + " |"

    out = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(row) for row in body]
    return "\n".join(out)


def render_notes(rows: list[Row]) -> str:
    order = NUMBERS
    out = []
    for r in sorted(rows, key=lambda r: order[r.key]):
        for note in r.notes:
            out.append(f"[{order[r.key]}] {note}")
    return "\n".join(out)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat: a smoke run of every row")
    parser.add_argument("--repeats", type=int, help="repeats of each timed figure (default 3, quick 1)")
    parser.add_argument(
        "--rows",
        default=",".join(ROW_KEYS),
        help=f"comma-separated subset of {','.join(ROW_KEYS + EXTRA_KEYS)} (default: {','.join(ROW_KEYS)})",
    )
    parser.add_argument(
        "--notes", action=argparse.BooleanOptionalAction, default=True, help="print the notes below the table"
    )
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when a target is missed")
    args = parser.parse_args(argv)
    wanted = {part.strip() for part in args.rows.split(",") if part.strip()}
    unknown = wanted - set(ROW_KEYS + EXTRA_KEYS)
    if unknown:
        parser.error(f"unknown rows {', '.join(sorted(unknown))}; choose from {', '.join(ROW_KEYS + EXTRA_KEYS)}")
    args.wanted = wanted
    return args


def _row(rows: list[Row], key: str) -> Row | None:
    return next((r for r in rows if r.key == key), None)


@contextlib.contextmanager
def _restoring(previous_settings: Any) -> Iterator[None]:
    from host import config

    try:
        yield
    finally:
        config.use(previous_settings)


def run(cfg: Config, wanted: set[str], log=print) -> list[Row]:
    """Run the wanted rows; returns them (the table is rendered by the caller)."""
    from host import config

    os.environ.setdefault("CARTPLUGIN_RECENT_DAYS", "30")
    bench_client_options()
    # as every cartplugin command does (host.cli.main): the settings loaded once are what
    # host.config.current() answers, here and in the job processes forked from here; without
    # it, each current() read every source again, three times a job (about 2 ms a job)
    previous_settings = config.use(config.load().settings)
    rows: list[Row] = []
    everything: list[Row] = []  # every row made, wanted or not
    with tempdir() as tmp, SandboxProcess() as sandbox, _restoring(previous_settings):
        work = Path(tmp)
        steps = [
            ({"import", "reimport"}, lambda: bulk_import(sandbox, cfg, work)),
            # row 2's floor uses row 1's: taken from this run when row 1 ran, else measured by row 2
            ({"companies"}, lambda: [many_companies(sandbox, cfg, work, _row(everything, "import"))]),
            ({"upload"}, lambda: [tracking_upload(sandbox, cfg, work)]),
            ({"memory"}, lambda: [memory(sandbox, cfg, work)]),
            ({"tick"}, lambda: [scheduler_tick(cfg, work)]),
            ({"web"}, lambda: [web_pages(cfg, work)]),
            ({"pages"}, lambda: [pages_under_load(sandbox, cfg, work)]),
            ({"amazon"}, lambda: [amazon_import(cfg, work)]),
            ({"import-latency"}, lambda: [latency_import(sandbox, cfg, work)]),
        ]
        for keys, step in steps:
            if not keys & wanted:
                continue
            started = time.perf_counter()
            made = step()
            everything.extend(made)
            produced = [row for row in made if row.key in wanted]
            rows.extend(produced)
            log(
                f"  ... {', '.join(r.key for r in produced)} done in {time.perf_counter() - started:.0f} s",
                file=sys.stderr,
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    base = QUICK if args.quick else FULL
    cfg = Config(**{**base.__dict__})
    if args.repeats:
        cfg.repeats = cfg.upload_repeats = cfg.memory_small_repeats = args.repeats
    print(
        f"cartplugin benchmarks ({'quick' if args.quick else 'full'}, {cfg.repeats} repeat(s), median)", file=sys.stderr
    )
    started = time.perf_counter()
    rows = run(cfg, args.wanted)
    print(f"Machine: {machine()}")
    chosen = "" if args.wanted == set(ROW_KEYS) else f" --rows {args.rows}"
    print(
        f"Command: python -m bench{' --quick' if args.quick else ''}{chosen}   ({time.perf_counter() - started:.0f} s)"
    )
    print(render(rows))
    if args.notes:
        print()
        print(render_notes(rows))
    if args.quick:
        print("(quick run: sizes far below the issue's, so the verdicts say nothing; only that every row runs)")
    missed = any(r.passed is False for r in rows)
    return 1 if (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
