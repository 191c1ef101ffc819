"""The operator console: a FastAPI app with server-rendered pages (pages.py) and a JSON API (api.py).

Every page and API call needs a session (a cookie holding a random token; the database keeps its hash),
roles are checked per route, and every state-changing request carries the session's CSRF token (a form
field ``csrf`` or the header ``X-CSRF-Token``). Recordings are served only from inside the recordings folder.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.concurrency import run_in_threadpool

from ivr.config import Settings
from ivr.console.limits import BodyLimit
from ivr.console.live import LiveState
from ivr.console.security import MAX_PASSWORD, same
from ivr.console.signin import LoginThrottle, SignInGate, SignInRefused
from ivr.console.users import MAX_NAME, Role, Session, User, UserStore
from ivr.logs import mask_number
from ivr.queue.agents import AgentDirectory, directory_for
from ivr.tickets.store import TicketStore
from ivr.tickets.suggest import Suggester

__all__ = ["create_app", "ConsoleContext", "COOKIE", "CSRF_HEADER", "require", "context_of", "client_host"]

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
COOKIE = "ivr_session"
LOGIN_COOKIE = "ivr_login_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


@dataclass
class ConsoleContext:
    """What the routes share: the stores, the live state, the dispatch catalogue and the templates."""

    store: TicketStore
    users: UserStore
    live: LiveState
    recordings_dir: Path
    data_dir: Path
    secure_cookies: bool = False
    categories: dict[str, str] = field(default_factory=dict)  # category -> department
    districts: tuple[str, ...] = ()
    templates: Jinja2Templates = field(default_factory=lambda: Jinja2Templates(directory=str(HERE / "templates")))
    suggester: Suggester | None = None
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
            from ivr.tickets.suggest import dispatch_suggester

            self.suggester = dispatch_suggester(self.data_dir)
            self.store.suggest = self.suggester
        return self.suggester


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


def context_of(request: Request) -> ConsoleContext:
    return request.app.state.console  # type: ignore[no-any-return]


def client_host(request: Request) -> str | None:
    return request.client.host if request.client else None


def require(role: Role = Role.OPERATOR, *, api: bool = False):  # type: ignore[no-untyped-def]
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


def create_app(settings: Settings, *, store: TicketStore | None = None, live: LiveState | None = None,
               suggester: Suggester | None = None,
               metrics: CollectorRegistry | None = None, agents: AgentDirectory | None = None) -> FastAPI:
    """The console for these settings. The store is opened (and migrated) here unless one is given;
    `live` is what the call path and the queue feed (a fresh, empty one when not given); `metrics` (the
    queue's gauges) is served at /metrics for the Prometheus scraper, without a session; `agents` is the running
    server's operator directory (else one is opened for the settings)."""
    store = store or TicketStore(settings.database_url, suggest=suggester)
    ctx = ConsoleContext(
        store=store, users=UserStore(store.engine), live=live or LiveState(),
        recordings_dir=Path(settings.recordings_dir), data_dir=settings.data_dir,  # type: ignore[arg-type]
        secure_cookies=settings.console_secure_cookies, suggester=suggester,
    )
    _load_catalogue(ctx)
    ctx.templates.env.filters["masked"] = mask_number
    ctx.templates.env.globals["Role"] = Role

    app = FastAPI(
        title="12345 hotline console API",
        version="1",
        description="Tickets left by callers: search, read, correct and dispatch. Sign in with POST /api/session; "
                    "send the returned csrf value as the X-CSRF-Token header on every change.",
        docs_url=None, redoc_url=None, openapi_url=None,  # served behind a session by api.py
    )
    app.state.console = ctx
    app.add_middleware(BodyLimit)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    from ivr.console import agents as agents_api
    from ivr.console import api, pages

    agents_api.install(app, agents or directory_for(settings))
    app.include_router(api.router)
    app.include_router(agents_api.router)
    app.include_router(pages.router)
    if metrics is not None:
        @app.get("/metrics", include_in_schema=False)
        def prometheus() -> Response:
            return Response(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if not request.url.path.startswith("/static"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={quote(exc.next_url, safe='')}", status_code=303)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith("/api/") or request.url.path.endswith(".csv"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        session = getattr(request.state, "session", None)
        return ctx.templates.TemplateResponse(
            request, "error.html", {"status": exc.status_code, "detail": exc.detail, "session": session},
            status_code=exc.status_code)

    return app


def _load_catalogue(ctx: ConsoleContext) -> None:
    from ivr.tickets.dispatch import load_catalogue
    from ivr.tickets.gazetteer import Gazetteer

    ctx.categories = load_catalogue().departments()
    ctx.districts = Gazetteer.load().districts


def html(ctx: ConsoleContext, request: Request, template: str, **values: Any) -> HTMLResponse:
    session = getattr(request.state, "session", None)
    return ctx.templates.TemplateResponse(request, template, dict(values, session=session))
