"""Where a caller's data meets the disk: telling a full disk from other write failures, saying in one line what
failed and where, checking for room before a promise is made, and replacing a file without leaving a temporary
file behind."""
from __future__ import annotations

import errno
import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy.engine import Engine

__all__ = ["disk_full", "problem", "database_location", "as_utc", "has_room", "write_atomic", "BEIJING"]

# The hotline's clock when the `timezone` setting is not at hand (one zone for all China, no daylight saving).
BEIJING = timezone(timedelta(hours=8))

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL = 13  # SQLITE_FULL: "database or disk is full"
_PG_DISK_FULL = "53100"  # SQLSTATE disk_full


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, what it wraps (a database driver's error) and what caused it."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        todo += [getattr(e, "orig", None), e.__cause__, e.__context__]
    return seen


def disk_full(exc: BaseException) -> bool:
    """Whether `exc` (a file error, or a database error from SQLite or PostgreSQL) says the disk is full."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in _FULL_ERRNOS:
            return True
        if getattr(e, "sqlite_errorcode", None) == _SQLITE_FULL or "database or disk is full" in str(e):
            return True
        if getattr(e, "sqlstate", None) == _PG_DISK_FULL:
            return True
    return False


def problem(exc: BaseException) -> str:
    """What went wrong in a few words: "disk full", else the first line of the error (no SQL, no traceback)."""
    if disk_full(exc):
        return "disk full"
    inner = _chain(exc)
    e = next((x for x in inner if getattr(x, "orig", None) is None), exc)
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def database_location(engine: Engine) -> str:
    """The database file (SQLite) or the server URL without its password, as the log names it."""
    if engine.dialect.name == "sqlite":
        return str(Path(engine.url.database or ":memory:").resolve())
    return engine.url.render_as_string(hide_password=True)


def as_utc(t: datetime) -> datetime:
    """A time read back from the database, in UTC: SQLite returns it without a zone, PostgreSQL in the session's."""
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def has_room(folder: Path, need_bytes: int) -> bool:
    """Whether the disk holding `folder` has at least `need_bytes` free (False when it cannot be told)."""
    try:
        return shutil.disk_usage(folder).free >= need_bytes
    except OSError:
        return False


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` through a temporary file beside it, which is removed if the write fails."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
