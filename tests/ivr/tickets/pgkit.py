"""A throwaway PostgreSQL server for tests: a cluster made by initdb + pg_ctl in a temporary folder, on a free port,
trust auth on 127.0.0.1. PostgreSQL refuses to run as root, so as root it runs as the `postgres` user through
runuser. `fresh_database` makes one empty database on it per test. Skipped, with the reason, only where no server
can be started.
"""
from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

__all__ = ["PgCluster", "fresh_database"]


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    hits = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return hits[-1] if hits else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    """A PostgreSQL cluster in a temporary folder, stopped and deleted by `stop()`."""

    def __init__(self) -> None:
        initdb, self.pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not initdb or not self.pg_ctl:
            pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql)")
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            if not shutil.which("runuser"):
                pytest.skip("running as root and runuser is missing: PostgreSQL cannot run as root")
            try:
                import pwd
                pw = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root and there is no 'postgres' user to run the server as")
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self.root = Path(tempfile.mkdtemp(prefix="ivr-pg-"))
        self.data = self.root / "data"
        if self.prefix:
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.port = _free_port()
        self._run([initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                   "--locale=C.UTF-8"], "initdb")
        self.start()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server (again, after `shut_down`) on its port."""
        self._run([self.pg_ctl, "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t", "60", "-o",
                   f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                  "pg_ctl start")

    def shut_down(self) -> None:
        """Stop the server as an administrator restarting it would (fast: sessions cut, committed data kept)."""
        subprocess.run(self.prefix + [self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop"],  # type: ignore[list-item]
                       capture_output=True, check=True)

    def _run(self, cmd: list[str], what: str) -> None:
        proc = subprocess.run(self.prefix + cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            log = (self.root / "log").read_text() if (self.root / "log").exists() else ""
            self.cleanup()
            pytest.skip(f"PostgreSQL could not start ({what}): {(proc.stderr or proc.stdout).strip()[-300:]} "
                        f"{log[-300:]}")

    def stop(self) -> None:
        subprocess.run(self.prefix + [self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"],  # type: ignore[list-item]
                       capture_output=True)
        self.cleanup()

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


_counter = itertools.count()


def fresh_database(pg: PgCluster) -> str:
    """A new empty database on the cluster; its SQLAlchemy URL."""
    import psycopg

    name = f"t{os.getpid()}_{next(_counter)}"
    with psycopg.connect(f"host=127.0.0.1 port={pg.port} user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    return f"{pg.url}/{name}"
