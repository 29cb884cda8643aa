"""Scale-out on PostgreSQL: many companies drained by 1, 2 and 4 worker processes (docs/scale-out.md).

    python -m bench.scale_out                 # 1,000 companies, 100 ms a request, 1/2/4 workers + faults
    python -m bench.scale_out --quick         # a smoke run: 20 companies, 20 ms, 1/2 workers + faults

One throwaway PostgreSQL server (tests/pg_server.py) and one sandbox process (bench.sandbox_server)
for the whole run; the companies are set up once (Website and Cart General Settings, Test Settings
passed). Each round adds ``--orders`` new unfulfilled orders to every sandbox account, starts N
``cartplugin --db postgresql://... worker`` processes (each running ``--concurrency`` jobs at once),
and once all N are registered makes every company's download due. Timed from then until every new
order is imported (the leader's schedule queues 1,000 downloads) and, after the bench ships them
all in one transaction, until every tracking is accepted (the schedule queues the uploads).

Throughput is the channel requests the round made per second; the latency floor is what those
requests cost at the sandbox's latency with N x concurrency of them in flight at all times, so the
ratio (target <= 1.3, issue 26) says how close the workers come to the network-bound ideal. Beside
it, the CPU floor: the CPU the round's processes spent in the timed window (the workers and the job
processes they fork, PostgreSQL's postmaster and backends, the sandbox; read from /proc) divided by
the cores. A round cannot take less wall time than that on this machine, so where the CPU floor is
above the latency floor, a ratio of 1.3 to the latency floor is out of reach here whatever the
scheduler does. Each round also counts the tracking POSTs the sandbox received beyond one per
shipment (re-sent); for the fault round the target is at most the upload concurrency
(``HttpOptions.concurrency``) per upload job running when PostgreSQL was restarted. Each round checks, from the database
and from the sandbox's request log and state: every order imported exactly once, every tracking
POST accepted exactly once per order (a repeat answered "already recorded" would be reported).

The fault round (``--fault-workers`` processes) SIGKILLs the first worker (the schedule's leader)
when a third of the downloads are done, and restarts PostgreSQL when a third of the uploads are
done; the same checks must hold. The killed process is not reaped until the round ends: as a
zombie it still answers ``kill -0``, so the host cannot tell it died (as for a worker on a machine
that was lost) and its jobs come back the cluster's way, once its procrastinate heartbeat is
CARTPLUGIN_CLUSTER_STALLED_SECONDS old (10 here; 30 in production).
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from .common import ROOT, SandboxProcess, add_company

STALLED_SECONDS = "10"
#: issue 26, item 6: each worker count's ratio to the latency floor
RATIO_TARGET = 1.3
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def tree_cpu(root: int | None) -> float:
    """CPU seconds of process ``root`` and its live descendants, with what each has reaped of its
    own children (/proc's utime + stime + cutime + cstime); 0 when it is gone."""
    if root is None:
        return 0.0
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent, CPU seconds)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) ": state is field 3
        stats[int(entry)] = (int(fields[1]), sum(int(v) for v in fields[11:15]) / _TICK)
    children: dict[int, list[int]] = collections.defaultdict(list)
    for pid, (parent, _) in stats.items():
        children[parent].append(pid)
    total, todo = 0.0, [root] if root in stats else []
    while todo:
        pid = todo.pop()
        total += stats[pid][1]
        todo.extend(children.get(pid, ()))
    return total


class CpuMeter:
    """CPU seconds spent in a round by the worker processes (and the job processes they fork),
    PostgreSQL (the postmaster and its backends) and the sandbox: everything the round runs on this
    machine, read from /proc at the start and at the end of the timed window."""

    def __init__(self, workers: list[int], postmaster: Callable[[], int | None], sandbox: int):
        self.workers, self.postmaster, self.sandbox = workers, postmaster, sandbox
        self.parts = {"workers": 0.0, "postgresql": 0.0, "sandbox": 0.0}
        self._start = self._read()

    def _read(self) -> dict[str, float]:
        return {
            "workers": sum(tree_cpu(pid) for pid in self.workers),
            "postgresql": tree_cpu(self.postmaster()),
            "sandbox": tree_cpu(self.sandbox),
        }

    def add_up(self) -> None:
        """Count what was spent since the last reading (before PostgreSQL stops for a restart;
        what its shutdown and start take is not counted)."""
        now = self._read()
        for key, value in now.items():
            self.parts[key] += max(0.0, value - self._start[key])
        self._start = now

    def restart_from_here(self) -> None:
        self._start = self._read()


def _pg_server(folder: str) -> Any:
    sys.path.insert(0, str(ROOT / "tests"))
    from pg_server import PgServer

    return PgServer(folder)


class Cluster:
    """The database, the sandbox, the companies; rounds of worker processes over them."""

    def __init__(self, args: argparse.Namespace, work: Path, log: Callable[[str], None]):
        self.args, self.work, self.log = args, work, log
        self.server = _pg_server(tempfile.mkdtemp(prefix="cartpg-bench-"))
        self.url = self.server.start()
        os.environ["CARTPLUGIN_SECRET_KEY_FILE"] = str(work / "bench.key")
        self.sandbox = SandboxProcess(latency=0.0)
        self.accounts: list[tuple[int, str]] = []  # (company id, seller id)
        self.rounds = 0

    def close(self) -> None:
        self.sandbox.close()
        self.server.stop()
        shutil.rmtree(self.server.folder, ignore_errors=True)

    # -- setup ------------------------------------------------------------------------------

    def setup(self) -> None:
        from host.channel import plugins
        from host.jobs.cluster import schema
        from host.store.db import connect

        plugins.load_plugins()
        started = time.perf_counter()
        db = connect(self.url)
        try:
            for n in range(self.args.companies):
                key, seller = self.sandbox.new_account(0)
                company = add_company(db, f"Company {n:04d}", self.sandbox.base_url, key)
                self.accounts.append((company.id, seller))
            # nothing due until a round says so
            db.execute("UPDATE companies SET next_download_at = '9999-12-31T00:00:00.000000Z'")
        finally:
            db.close()
        schema.ensure(self.url)
        self.log(f"setup: {self.args.companies} companies in {time.perf_counter() - started:.1f} s")

    def q(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        """One query on a connection of its own (survives a database restart: retried)."""
        for attempt in range(60):
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                    cursor = conn.execute(sql, params or [])  # type: ignore[arg-type]
                    return cursor.fetchall() if cursor.description else []
            except psycopg.OperationalError:
                if attempt == 59:
                    raise
                time.sleep(0.5)
        raise AssertionError("unreachable")

    # -- one round --------------------------------------------------------------------------

    def start_worker(self, n: int) -> subprocess.Popen:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "CARTPLUGIN_CLUSTER_STALLED_SECONDS": STALLED_SECONDS,
            "CARTPLUGIN_LOG_LEVEL": "WARNING",
        }
        out = open(self.work / f"round{self.rounds}-worker{n}.log", "w")  # noqa: SIM115 - closed with the process
        return subprocess.Popen(
            [sys.executable, "-m", "host", "--db", self.url, "worker", "--interval", "0.5", "--download-every", "86400",
             "--workers", str(self.args.concurrency)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=ROOT,
        )  # fmt: skip

    def round(self, workers: int, *, faults: bool = False) -> dict[str, Any]:
        self.rounds += 1
        args, latency = self.args, self.args.latency
        self.sandbox.set_latency(0)
        for _, seller in self.accounts:
            self.sandbox._call("POST", "/orders", {"n": args.orders, "account": seller})
        expected_orders = len(self.accounts) * args.orders * self.rounds
        before_uploaded = self.q("SELECT count(*) FROM orders WHERE source_updated_for_shipping = 1")[0][0]
        procs = [self.start_worker(n) for n in range(workers)]
        try:
            self._wait(lambda: self.q("SELECT count(*) FROM procrastinate_workers")[0][0] >= workers, 120, "workers up")
            time.sleep(1.0)  # the first worker has taken the schedule's lead
            self.sandbox.set_latency(latency)
            self.sandbox.clear_requests()
            meter = CpuMeter([p.pid for p in procs], self.postmaster_pid, self.sandbox.proc.pid)
            started = time.perf_counter()
            self.q("UPDATE companies SET next_download_at = '2000-01-01T00:00:00.000000Z'")
            killed = restarted = False
            interrupted = 0  # upload jobs running when PostgreSQL was restarted
            new_orders = expected_orders - len(self.accounts) * args.orders * (self.rounds - 1)

            def imported() -> bool:
                nonlocal killed
                count = self.q("SELECT count(*) FROM orders")[0][0]
                if faults and not killed and count - (expected_orders - new_orders) >= new_orders / 3:
                    procs[0].send_signal(signal.SIGKILL)  # not reaped: see the module's docstring
                    killed = True
                    self.log(f"  faults: SIGKILLed worker 0 (pid {procs[0].pid}) at {count} orders")
                return count >= expected_orders

            self._wait(imported, 1800, "every order imported")
            download_s = time.perf_counter() - started
            shipped = self._ship_everything()
            ship_started = time.perf_counter()

            def uploaded() -> bool:
                nonlocal restarted, interrupted
                done = self.q("SELECT count(*) FROM orders WHERE source_updated_for_shipping = 1")[0][0]
                if faults and not restarted and done - before_uploaded >= shipped / 3:
                    interrupted = self.q(
                        "SELECT count(*) FROM jobs WHERE kind = 'upload_tracking' AND status = 'Processing'"
                    )[0][0]
                    meter.add_up()
                    self.server.restart()
                    meter.restart_from_here()
                    restarted = True
                    self.log(f"  faults: restarted PostgreSQL at {done - before_uploaded} of {shipped} uploads")
                return done >= expected_orders

            self._wait(uploaded, 1800, "every tracking accepted")
            upload_s = time.perf_counter() - ship_started
            elapsed = download_s + upload_s  # the bench's own shipping step is not counted
            meter.add_up()  # (the bench's shipping step falls inside the window: a few ms of PostgreSQL)
            self.sandbox.set_latency(0)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
        requests_made = self.sandbox.requests_made()
        checks = self._check(requests_made, expected_orders)
        slots = workers * args.concurrency
        floor = len(requests_made) * latency / slots
        cores = os.cpu_count() or 1
        posts = sum(1 for r in requests_made if r["method"] == "POST")
        return {
            "workers": workers,
            "faults": faults,
            "seconds": elapsed,
            "download_s": download_s,
            "upload_s": upload_s,
            "requests": len(requests_made),
            "throughput": len(requests_made) / elapsed,
            "floor": floor,
            "ratio": elapsed / floor,
            "cpu": dict(meter.parts),
            "cpu_floor": sum(meter.parts.values()) / cores,
            "cores": cores,
            "shipped": shipped,
            "posts": posts,
            "resent_posts": posts - shipped,
            "interrupted_uploads": interrupted,
            "exit_codes": [p.returncode for p in procs],
            **checks,
        }

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.server.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}; worker logs in {self.work}")
            time.sleep(0.25)

    def _ship_everything(self) -> int:
        """Ship every order not shipped yet, in one transaction (what staff do, order by order)."""
        with psycopg.connect(self.url) as conn:
            now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
            conn.execute(
                "INSERT INTO shipments (order_id, carrier, tracking_number, tracking_url, shipped_at) "
                "SELECT id, 'DHL Express', 'JD' || lpad(id::text, 12, '0'), "
                "'https://www.dhl.com/track?id=JD' || lpad(id::text, 12, '0'), %s FROM orders "
                "WHERE shipping_status != 'Fully Shipped'",
                [now],
            )
            conn.execute(
                "INSERT INTO shipment_lines (shipment_id, order_line_id, quantity, serial_numbers) "
                "SELECT s.id, ol.id, ol.quantity - ol.quantity_shipped, '[\"35' || lpad(ol.id::text, 13, '0') || '\"]' "
                "FROM shipments s JOIN orders o ON o.id = s.order_id JOIN order_lines ol ON ol.order_id = o.id "
                "WHERE o.shipping_status != 'Fully Shipped'"
            )
            conn.execute(
                "UPDATE order_lines SET quantity_shipped = quantity WHERE order_id IN "
                "(SELECT id FROM orders WHERE shipping_status != 'Fully Shipped')"
            )
            shipped = conn.execute(
                "UPDATE orders SET shipping_status = 'Fully Shipped', source_updated_for_shipping = 0, "
                "status = CASE WHEN status = 'In Process' THEN 'Completed' ELSE status END, updated_at = %s "
                "WHERE shipping_status != 'Fully Shipped'",
                [now],
            ).rowcount
        return shipped

    def _check(self, requests_made: list[dict[str, Any]], expected_orders: int) -> dict[str, Any]:
        doubled = self.q(
            "SELECT count(*) FROM (SELECT company_id, source_order_id FROM orders GROUP BY 1, 2 HAVING count(*) > 1) d"
        )[0][0]
        total = self.q("SELECT count(*) FROM orders")[0][0]
        not_uploaded = self.q("SELECT count(*) FROM orders WHERE source_updated_for_shipping = 0")[0][0]
        posts: collections.Counter[tuple[str, int | None]] = collections.Counter(
            (r["path"], r["status"]) for r in requests_made if r["method"] == "POST"
        )
        accepted = collections.Counter(path for (path, status), n in posts.items() if status == 201 for _ in range(n))
        repeated = sum(n for (_, status), n in posts.items() if status == 409)
        failed_jobs = self.q("SELECT count(*) FROM jobs WHERE status IN ('Failed', 'Cancelled')")[0][0]
        dead = ["%stopped while running this job%"]  # the sweep's and recover_orphans' log line
        requeued = self.q("SELECT count(*) FROM job_logs WHERE message LIKE %s", dead)[0][0]
        return {
            "orders": total,
            "orders_ok": total == expected_orders and doubled == 0,
            "doubled_orders": doubled,
            "trackings_accepted": sum(accepted.values()),
            "trackings_twice": sum(1 for n in accepted.values() if n > 1),
            "repeated_posts_409": repeated,
            "not_uploaded": not_uploaded,
            "failed_jobs": failed_jobs,
            "requeued_from_dead_workers": requeued,
        }

    def sandbox_shipments_ok(self) -> tuple[int, int]:
        """From the sandbox's own state: (orders with exactly one shipment, orders with another count)."""
        once = other = 0
        for _, seller in self.accounts:
            for order in self.sandbox._call("GET", f"/orders?account={seller}")["orders"]:
                if len(order["shipments"]) == 1:
                    once += 1
                else:
                    other += 1
        return once, other


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_out", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (20 companies, 20 ms, 1 and 2 workers)")
    parser.add_argument("--companies", type=int, default=None)
    parser.add_argument("--orders", type=int, default=2, help="new orders per company and round")
    parser.add_argument("--latency", type=float, default=None, help="sandbox seconds per request")
    parser.add_argument("--workers", default=None, help="worker process counts, e.g. 1,2,4")
    parser.add_argument("--concurrency", type=int, default=4, help="jobs each worker process runs at once")
    parser.add_argument("--fault-workers", type=int, default=None, help="processes of the fault round (0: none)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.companies = args.companies or (20 if quick else 1000)
    args.latency = args.latency if args.latency is not None else (0.02 if quick else 0.1)
    counts = [int(n) for n in (args.workers or ("1,2" if quick else "1,2,4")).split(",")]
    fault_workers = args.fault_workers if args.fault_workers is not None else (2 if quick else 4)

    def log(text: str) -> None:
        print(text, flush=True)

    results = []
    with tempfile.TemporaryDirectory(prefix="cartplugin-scale-") as tmp:
        cluster = Cluster(args, Path(tmp), log)
        try:
            cluster.setup()
            for n in counts:
                result = cluster.round(n)
                results.append(result)
                log(_line(result, args))
            if fault_workers:
                result = cluster.round(fault_workers, faults=True)
                results.append(result)
                log(_line(result, args))
            once, other = cluster.sandbox_shipments_ok()
            log(f"sandbox state: {once} orders with exactly one shipment, {other} with another count")
        finally:
            cluster.close()
    base = results[0]["throughput"]
    log("")
    log(f"{args.companies} companies x {args.orders} orders a round, {args.latency * 1000:.0f} ms a request, "
        f"{args.concurrency} jobs per worker process")  # fmt: skip
    head = ("workers", "seconds", "requests", "req/s", "x 1 worker", "latency floor", "CPU floor", "ratio", "re-sent")
    widths = (8, 8, 9, 7, 10, 13, 9, 6, 8)
    log(" ".join(f"{h:>{w}}" for h, w in zip(head, widths, strict=True)) + "  checks")
    for r in results:
        ok = r["orders_ok"] and r["trackings_twice"] == 0 and r["not_uploaded"] == 0
        log(f"{str(r['workers']) + (' +F' if r['faults'] else ''):>8} {r['seconds']:8.1f} {r['requests']:9d} "
            f"{r['throughput']:7.1f} {r['throughput'] / base:10.2f} {r['floor']:13.1f} {r['cpu_floor']:9.1f} "
            f"{r['ratio']:6.2f} {r['resent_posts']:8d}  {'ok' if ok else 'FAILED'}")  # fmt: skip
    log(f"ratio = seconds / latency floor (requests x {args.latency * 1000:.0f} ms / (workers x {args.concurrency} "
        f"jobs)), target <= {RATIO_TARGET:g}; CPU floor = CPU of the workers, PostgreSQL and the sandbox in the "
        f"window / {results[0]['cores']} cores (a round cannot be shorter on this machine); re-sent = tracking "
        "POSTs the sandbox received beyond one per shipment")  # fmt: skip
    upload_concurrency = _upload_concurrency()
    for r in results:
        if r["faults"]:
            allowed = upload_concurrency * r["interrupted_uploads"]
            verdict = "pass" if r["resent_posts"] <= allowed else "MISS"
            log(f"kill + restart round: {r['resent_posts']} tracking POSTs re-sent, target <= upload concurrency "
                f"{upload_concurrency} x {r['interrupted_uploads']} upload job(s) running at the restart = {allowed}: "
                f"{verdict}")  # fmt: skip
    good = all(r["orders_ok"] and r["trackings_twice"] == 0 and r["not_uploaded"] == 0 for r in results)
    return 0 if good and other == 0 else 1


def _upload_concurrency() -> int:
    """Shipments one upload job has in flight at once (``HttpOptions.concurrency`` of the plugin's
    client as the workers configure it: its defaults and CARTPLUGIN_BMP_* variables)."""
    from backmarket_pro.client import ClientOptions

    return ClientOptions.from_env().concurrency


def _line(r: dict[str, Any], args: argparse.Namespace) -> str:
    cpu = r["cpu"]
    return (
        f"{r['workers']} worker(s){' with faults' if r['faults'] else ''}: {r['seconds']:.1f} s "
        f"(download {r['download_s']:.1f} s, upload {r['upload_s']:.1f} s), {r['requests']} requests, "
        f"{r['throughput']:.1f} req/s, floor {r['floor']:.1f} s, ratio {r['ratio']:.2f}; orders {r['orders']} "
        f"(doubled {r['doubled_orders']}), trackings accepted {r['trackings_accepted']} (twice "
        f"{r['trackings_twice']}, repeats answered 409 {r['repeated_posts_409']}), not uploaded {r['not_uploaded']}, "
        f"failed jobs {r['failed_jobs']}, jobs of dead workers requeued so far {r['requeued_from_dead_workers']}, "
        f"exit codes {r['exit_codes']}; CPU workers {cpu['workers']:.1f} s, PostgreSQL {cpu['postgresql']:.1f} s, "
        f"sandbox {cpu['sandbox']:.1f} s: CPU floor {r['cpu_floor']:.1f} s on {r['cores']} cores, latency floor "
        f"{r['floor']:.1f} s; tracking POSTs {r['posts']} for {r['shipped']} shipments (re-sent {r['resent_posts']}"
        + (f", upload jobs running at the restart {r['interrupted_uploads']}" if r["faults"] else "")
        + ")"
    )


if __name__ == "__main__":
    sys.exit(main())
