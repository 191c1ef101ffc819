"""The ticket store tests of test_store.py and test_jobs.py, run again on a real PostgreSQL server (`pg`,
tests/conftest.py). Every test gets its own database."""
from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import pytest
from pgkit import PgCluster, fresh_database


def _load(name: str) -> object:
    spec = importlib.util.spec_from_file_location(f"_{name}", Path(__file__).with_name(f"{name}.py"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for test, obj in vars(module).items():  # every test that takes a store (or its URL) runs here again
        if test.startswith("test_") and {"store", "store_url", "jobs_store"} & set(inspect.signature(obj).parameters):
            globals()[test] = obj
    return module


_store_tests, _jobs_tests = _load("test_store"), _load("test_jobs")
suggester = _store_tests.suggester  # type: ignore[attr-defined]
store = _store_tests.store  # type: ignore[attr-defined]
jobs_store = _jobs_tests.jobs_store  # type: ignore[attr-defined]

from ivr.tickets.model import TicketFilter  # noqa: E402
from ivr.tickets.store import TicketStore  # noqa: E402


@pytest.fixture
def store_url(pg: PgCluster) -> str:
    """A fresh database on the cluster for each test."""
    return fresh_database(pg)


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
