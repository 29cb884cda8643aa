"""A throwaway PostgreSQL server for tests and benchmarks: Debian's binaries, a temporary folder.

``PgServer(folder).start()`` runs ``initdb`` and ``pg_ctl`` from ``/usr/lib/postgresql/*/bin``
with the data folder and the Unix socket inside ``folder``, listening on 127.0.0.1 and a free
port, with trust authentication for the local superuser ``cartplugin`` (nothing else can reach
a server bound to loopback in a private folder). PostgreSQL refuses to run as root, so as root
the server runs as an unprivileged system user (``postgres`` when Debian's package made it,
otherwise ``cartpg``, created on first use) and ``folder`` is handed to that user.

From a shell (scripts, ``bench/``)::

    python -m tests.pg_server start DIR     # prints the server's postgresql:// URL
    python -m tests.pg_server url DIR       # prints it again
    python -m tests.pg_server stop DIR
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

SUPERUSER = "cartplugin"
DATABASE = "cartplugin"
FALLBACK_SYSTEM_USER = "cartpg"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries on this machine."""


def bin_dir() -> Path:
    """The newest Debian PostgreSQL ``bin`` folder with an ``initdb``."""
    found = sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise PostgresUnavailable("PostgreSQL is not installed (no initdb); apt-get install postgresql")


def available() -> bool:
    try:
        bin_dir()
    except PostgresUnavailable:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _system_user() -> str | None:
    """The user the server runs as: None when we are not root (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", FALLBACK_SYSTEM_USER):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", FALLBACK_SYSTEM_USER],
        check=True,
        capture_output=True,
    )
    return FALLBACK_SYSTEM_USER


class PgServer:
    """One PostgreSQL cluster in ``folder`` (``data/``, ``sock/``, ``port``, ``server.log``)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder).absolute()
        self.data = self.folder / "data"
        self.sock = self.folder / "sock"
        self.log = self.folder / "server.log"
        self.user = _system_user()

    @property
    def port(self) -> int:
        return int((self.folder / "port").read_text())

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(bin_dir() / argv[0]), *argv[1:]]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, cwd=self.folder)

    def start(self) -> str:
        """Create the cluster on first use, start it, wait until it answers; return its URL."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.sock.mkdir(exist_ok=True)
        if self.user:
            uid, gid = pwd.getpwnam(self.user).pw_uid, pwd.getpwnam(self.user).pw_gid
            for path in (self.folder, self.sock):
                os.chown(path, uid, gid)
            os.chmod(self.folder, 0o700)  # its parents must let that user through: use a folder under /tmp
        if not (self.data / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                      "--no-instructions", "--locale=C")  # fmt: skip
        (self.folder / "port").write_text(str(_free_port()))
        self._pg_ctl_start()
        self._ensure_database(DATABASE)
        return self.url()

    def _pg_ctl_start(self) -> None:
        # durability off: a test server's data is thrown away, and fsync is the slow part
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.sock} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        result = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60",
                           "start", check=False)  # fmt: skip
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {result.stderr.strip()}\n{log}")

    def _psql(self, sql: str, database: str = "postgres") -> str:
        result = self._run("psql", "-h", str(self.sock), "-p", str(self.port), "-U", SUPERUSER, "-d", database,
                           "-v", "ON_ERROR_STOP=1", "-At", "-c", sql)  # fmt: skip
        return result.stdout.strip()

    def _ensure_database(self, name: str) -> None:
        if not self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'"):
            self._psql(f'CREATE DATABASE "{name}"')

    def _admin_execute(self, sql: str) -> None:
        """One statement on the ``postgres`` database, through a connection kept open when psycopg
        is installed (a test run makes and drops hundreds of databases), else through psql."""
        try:
            import psycopg
        except ImportError:
            self._psql(sql)
            return
        conn = getattr(self, "_admin", None)
        if conn is None or conn.closed or conn.broken:
            conn = self._admin = psycopg.connect(self.url("postgres"), autocommit=True)
        try:
            conn.execute(sql)
        except psycopg.OperationalError:  # the server was restarted since: once more, anew
            conn.close()
            self._admin = psycopg.connect(self.url("postgres"), autocommit=True)
            self._admin.execute(sql)

    def create_database(self, name: str) -> str:
        """A new empty database on this server; its URL."""
        self._admin_execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self._admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def restart(self) -> None:
        """Stop and start on the same port (connections are cut, the data stays)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)
        self._pg_ctl_start()

    def stop(self) -> None:
        admin = getattr(self, "_admin", None)
        if admin is not None:
            admin.close()
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
            for _ in range(50):
                if not (self.data / "postmaster.pid").exists():
                    break
                time.sleep(0.1)

    def __enter__(self) -> PgServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop", "url"):
        print("usage: python -m tests.pg_server start|stop|url DIR", file=sys.stderr)
        return 2
    server = PgServer(argv[1])
    if argv[0] == "start":
        print(server.start())
    elif argv[0] == "url":
        print(server.url())
    else:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
