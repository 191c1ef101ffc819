"""The ticket store tests of test_store.py, run again on a real PostgreSQL server started here.

The server is a throwaway cluster (initdb + pg_ctl in a temporary folder, on a free port, trust auth on
127.0.0.1). PostgreSQL refuses to run as root, so as root it runs as the `postgres` user through runuser.
Every test gets its own database. Skipped, with the reason, only where no server can be started.
"""
from __future__ import annotations

import glob
import importlib.util
import inspect
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("_store_tests", Path(__file__).with_name("test_store.py"))
assert _spec and _spec.loader
_store_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_store_tests)
for _name, _obj in vars(_store_tests).items():  # every test that takes the store (or its URL) runs here again
    if _name.startswith("test_") and {"store", "store_url"} & set(inspect.signature(_obj).parameters):
        globals()[_name] = _obj
suggester = _store_tests.suggester
store = _store_tests.store

from ivr.tickets.model import TicketFilter  # noqa: E402
from ivr.tickets.store import TicketStore  # noqa: E402


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
        self._run([self.pg_ctl, "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t", "60", "-o",
                   f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                  "pg_ctl start")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"

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


@pytest.fixture(scope="session")
def pg() -> Iterator[PgCluster]:
    cluster = PgCluster()
    yield cluster
    cluster.stop()


_counter = itertools.count()


@pytest.fixture
def store_url(pg: PgCluster) -> str:
    """A fresh database on the cluster for each test."""
    import psycopg

    name = f"t{os.getpid()}_{next(_counter)}"
    with psycopg.connect(f"host=127.0.0.1 port={pg.port} user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    return f"{pg.url}/{name}"


def test_the_schema_is_made_by_migrations(store_url: str) -> None:
    from sqlalchemy import inspect

    s = TicketStore(store_url)
    assert s.engine.dialect.name == "postgresql"
    tables = set(inspect(s.engine).get_table_names())
    assert {"tickets", "audit", "corrections", "users", "sessions", "alembic_version"} <= tables
    TicketStore(store_url)  # a second start is a no-op


def test_search_escapes_like_wildcards(store_url: str) -> None:
    s = TicketStore(store_url)
    t = s.create(caller="1", call_id="c", kind="complaint", menu_path=[], flags=[], recording="a.wav")
    s.complete_recording(t.number, audio_ms=1, sha256="", transcript=_store_tests.words("收费100%不合理"))
    assert [r.number for r in s.search(TicketFilter(query="100%")).rows] == [t.number]
    assert s.search(TicketFilter(query="1_0")).rows == ()
