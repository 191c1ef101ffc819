"""What the console's routes share: the context (stores, live state, catalogue, templates), the session and role
check with CSRF (`require`), the list filter from query parameters, and a ticket's recording as a response."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from ivr.console.kbdesk import KbDesk
from ivr.console.security import MAX_PASSWORD, same
from ivr.console.signin import LoginThrottle, SignInGate, SignInRefused
from ivr.console.users import MAX_NAME, Role, Session, User, UserStore
from ivr.errors import IvrError
from ivr.live import LiveState
from ivr.tickets.db import Suggester
from ivr.tickets.model import Ticket, TicketFilter, TicketNotFound
from ivr.tickets.store import TicketStore
from ivr.triage.suggest import dispatch_suggester

__all__ = ["ConsoleContext", "LoginRequired", "COOKIE", "LOGIN_COOKIE", "CSRF_HEADER", "MAX_OFFSET", "require",
           "context_of", "client_host", "html", "filter_from", "ticket_or_404", "recording_response"]

HERE = Path(__file__).resolve().parent
COOKIE = "ivr_session"
LOGIN_COOKIE = "ivr_login_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
MAX_OFFSET = 10 ** 9  # rows skipped at most (the store's integers are 64-bit; no list is this long)


@dataclass
class ConsoleContext:
    """What the routes share: the stores, the live state, the dispatch catalogue and the templates."""

    store: TicketStore
    users: UserStore
    live: LiveState
    recordings_dir: Path
    data_dir: Path
    shared_recordings_dir: Path | None = None  # the centre's finished recordings, every node's
    secure_cookies: bool = False
    categories: dict[str, str] = field(default_factory=dict)  # category -> department
    districts: tuple[str, ...] = ()
    templates: Jinja2Templates = field(default_factory=lambda: Jinja2Templates(directory=str(HERE / "templates")))
    suggester: Suggester | None = None
    kb: KbDesk = field(default_factory=lambda: KbDesk(None, problem="no knowledge base folder configured"))
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    gate: SignInGate = field(default_factory=SignInGate)

    async def sign_in(self, username: str, password: str, host: str | None) -> User | None:
        """The user, if the password is right; refused at once (HTTP 422, 429 or 503) when a field is too long,
        the name or the client address `host` has failed too often, or too many sign-ins are in progress."""
        if len(username) > MAX_NAME or len(password) > MAX_PASSWORD:
            raise HTTPException(422, f"a user name has at most {MAX_NAME} characters, a password {MAX_PASSWORD}")
        try:
            attempt = self.throttle.reserve(username, host)
            try:
                user = await self.gate.run(self.users.authenticate, username, password)
            except SignInRefused:
                self.throttle.cancel(attempt)
                raise
        except SignInRefused as exc:
            raise HTTPException(exc.status, exc.message, headers={"Retry-After": str(exc.retry_after)}) from None
        self.throttle.settle(attempt, ok=user is not None)
        return user

    def suggest(self) -> Suggester:
        """The dispatch suggester, loaded (or trained) on first use."""
        if self.suggester is None:
            self.suggester = dispatch_suggester(self.data_dir)
            self.store.suggest = self.suggester
        return self.suggester


class LoginRequired(IvrError):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


def context_of(request: Request) -> ConsoleContext:
    return request.app.state.console


def client_host(request: Request) -> str | None:
    return request.client.host if request.client else None


def require(role: Role = Role.OPERATOR, *, api: bool = False) -> Callable[[Request], Awaitable[Session]]:
    """A dependency giving the request's session; it checks the role and, on unsafe methods, the CSRF token."""

    async def dependency(request: Request) -> Session:
        ctx = context_of(request)
        session = await run_in_threadpool(ctx.users.session, request.cookies.get(COOKIE))
        if session is None:
            if api:
                raise HTTPException(401, "sign in first")
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequired(target)
        if not session.user.role.allows(role):
            raise HTTPException(403, f"this needs the {role.value} role")
        if request.method not in SAFE_METHODS:
            token = request.headers.get(CSRF_HEADER)
            if token is None and not api:
                form = await request.form()
                value = form.get("csrf")
                token = value if isinstance(value, str) else None
            if not same(token, session.csrf):
                raise HTTPException(403, "CSRF token missing or wrong")
        request.state.session = session
        return session

    return dependency


def html(ctx: ConsoleContext, request: Request, template: str, **values: Any) -> HTMLResponse:
    session = getattr(request.state, "session", None)
    return ctx.templates.TemplateResponse(request, template, dict(values, session=session))


def filter_from(params: dict[str, str]) -> TicketFilter:
    """The list filter from query parameters; a malformed date is a 400 naming the parameter."""
    def day(name: str) -> date | None:
        value = params.get(name, "").strip()
        if not value:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise HTTPException(400, f"{name}: {value!r} is not a date (YYYY-MM-DD)") from None

    def opt(name: str) -> str | None:
        return params.get(name, "").strip() or None

    return TicketFilter(status=opt("status"), category=opt("category"), district=opt("district"),
                        urgency=opt("urgency"), transcription=opt("transcription"), kind=opt("kind"),
                        since=day("since"), until=day("until"), query=opt("q"))


def ticket_or_404(store: TicketStore, number: str) -> Ticket:
    try:
        return store.get(number)
    except TicketNotFound as exc:
        raise HTTPException(404, str(exc)) from None


def recording_response(request: Request, number: str) -> Response:
    """The ticket's WAV (with range requests, so the player can seek); never a file outside the folder."""
    ctx = context_of(request)
    ticket = ticket_or_404(ctx.store, number)
    try:
        path = TicketStore.recording_file(ticket, ctx.recordings_dir, ctx.shared_recordings_dir)
    except TicketNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except PermissionError:
        raise HTTPException(403, "that recording is not in the recordings folder") from None
    if not path.is_file():
        raise HTTPException(404, f"recording of ticket {number} is missing")
    return FileResponse(path, media_type="audio/wav", filename=f"{number}.wav", content_disposition_type="inline")
