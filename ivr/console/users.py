"""Console users (operator, supervisor, admin) and their sessions, in the ticket database."""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import (
    Boolean, Column, DateTime, ForeignKey, Integer, MetaData, String, Table, Text, delete, insert, select, update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ivr.console.security import hash_password, new_token, token_hash, verify_password
from ivr.errors import IvrError
from ivr.storage import as_utc

__all__ = ["Role", "User", "Session", "UserStore", "UserError", "SESSION_HOURS", "MAX_NAME"]

SESSION_HOURS = 12
MAX_NAME = 64
_NAME = re.compile(rf"^[A-Za-z0-9_.\-]{{2,{MAX_NAME}}}$")

_md = MetaData()
users_table = Table(
    "users", _md,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
sessions_table = Table(
    "sessions", _md,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)


class Role(str, enum.Enum):
    OPERATOR = "operator"  # reads, edits and dispatches tickets
    SUPERVISOR = "supervisor"  # also exports, reopens and closes, sees corrections
    ADMIN = "admin"  # also manages users

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


class UserError(IvrError, ValueError):
    """A user that cannot be added or changed; the message says why."""


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: Role
    active: bool
    created_at: datetime


@dataclass(frozen=True)
class Session:
    token: str  # only known when the session is made; stored hashed
    user: User
    csrf: str
    expires_at: datetime


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _user(r: object) -> User:
    return User(r["id"], r["username"], Role(r["role"]), bool(r["active"]), as_utc(r["created_at"]))  # type: ignore[index]


class UserStore:
    """Users and sessions on the ticket store's engine (the schema comes from the store's migrations)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, username: str, password: str, role: Role | str) -> User:
        if not _NAME.match(username):
            raise UserError(f"user name {username!r}: use 2-{MAX_NAME} letters, digits, '.', '_' or '-'")
        try:
            role = Role(role)
        except ValueError:
            raise UserError(f"role {role!r} is not one of operator, supervisor, admin") from None
        try:
            hashed = hash_password(password)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(users_table).values(username=username, password_hash=hashed, role=role.value,
                                                        active=True, created_at=_now()))
        except IntegrityError:
            raise UserError(f"user {username!r} exists already") from None
        return self.get(username)

    def get(self, username: str) -> User:
        with self.engine.connect() as conn:
            r = conn.execute(select(users_table).where(users_table.c.username == username)).mappings().first()
        if r is None:
            raise UserError(f"no user {username!r}")
        return _user(r)

    def list(self) -> list[User]:
        with self.engine.connect() as conn:
            return [_user(r) for r in conn.execute(select(users_table).order_by(users_table.c.username)).mappings()]

    def set_password(self, username: str, password: str) -> None:
        try:
            hashed = hash_password(password)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        self._set(username, password_hash=hashed)
        self._end_sessions(username)

    def set_role(self, username: str, role: Role | str) -> None:
        try:
            self._set(username, role=Role(role).value)
        except ValueError:
            raise UserError(f"role {role!r} is not one of operator, supervisor, admin") from None

    def set_active(self, username: str, active: bool) -> None:
        self._set(username, active=active)
        if not active:
            self._end_sessions(username)

    def _set(self, username: str, **values: object) -> None:
        with self.engine.begin() as conn:
            if conn.execute(update(users_table).where(users_table.c.username == username).values(**values)).rowcount == 0:
                raise UserError(f"no user {username!r}")

    def _end_sessions(self, username: str) -> None:
        uid = select(users_table.c.id).where(users_table.c.username == username).scalar_subquery()
        with self.engine.begin() as conn:
            conn.execute(delete(sessions_table).where(sessions_table.c.user_id == uid))

    def authenticate(self, username: str, password: str) -> User | None:
        """The active user with this password, else None (the same work is done for unknown names)."""
        with self.engine.connect() as conn:
            r = conn.execute(select(users_table).where(users_table.c.username == username)).mappings().first()
        stored = r["password_hash"] if r is not None else _DUMMY
        ok = verify_password(password, stored)
        if r is None or not ok or not r["active"]:
            return None
        return _user(r)

    def start_session(self, user: User, hours: int = SESSION_HOURS) -> Session:
        token, csrf, now = new_token(), new_token(), _now()
        expires = now + timedelta(hours=hours)
        with self.engine.begin() as conn:
            conn.execute(delete(sessions_table).where(sessions_table.c.expires_at < now))
            conn.execute(insert(sessions_table).values(token_hash=token_hash(token), user_id=user.id, csrf=csrf,
                                                       created_at=now, expires_at=expires))
        return Session(token, user, csrf, expires)

    def session(self, token: str | None) -> Session | None:
        """The live session of this cookie token, or None."""
        if not token:
            return None
        q = (select(users_table, sessions_table.c.csrf, sessions_table.c.expires_at)
             .join(users_table, users_table.c.id == sessions_table.c.user_id)
             .where(sessions_table.c.token_hash == token_hash(token)))
        with self.engine.connect() as conn:
            r = conn.execute(q).mappings().first()
        if r is None or not r["active"] or as_utc(r["expires_at"]) <= _now():
            return None
        return Session(token, _user(r), r["csrf"], as_utc(r["expires_at"]))

    def end_session(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(sessions_table).where(sessions_table.c.token_hash == token_hash(token)))


_DUMMY = hash_password("not-a-password-anyone-has")
