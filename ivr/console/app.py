"""The operator console: a FastAPI app with server-rendered pages (pages.py) and a JSON API (api.py, agents.py).

Every page and API call needs a session (a cookie holding a random token; the database keeps its hash),
roles are checked per route, and every state-changing request carries the session's CSRF token (a form
field ``csrf`` or the header ``X-CSRF-Token``). Recordings are served only from inside the recordings folder.
What the routes share is in deps.py.
"""
from __future__ import annotations

import logging
from datetime import datetime, tzinfo
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from ivr.config import Settings
from ivr.console import agents_api, api, kb_routes, pages
from ivr.console.deps import HERE, ConsoleContext, LoginRequired
from ivr.console.kbdesk import KbDesk, Rerender
from ivr.console.limits import BodyLimit
from ivr.console.users import Role, UserStore
from ivr.kb import KbRegistry
from ivr.live import LiveState
from ivr.logs import mask_number
from ivr.queue.directory import AgentDirectory, directory_for
from ivr.tickets.db import Suggester
from ivr.tickets.store import TicketStore
from ivr.triage.dispatch import load_dispatch_catalogue
from ivr.triage.gazetteer import Gazetteer

__all__ = ["create_app"]

log = logging.getLogger(__name__)

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


def local_time(moment: datetime, fmt: str, tz: tzinfo) -> str:
    """`moment` on the hotline's clock (the `timezone` setting), as `fmt` says."""
    return moment.astimezone(tz).strftime(fmt)


def create_app(settings: Settings, *, store: TicketStore | None = None, live: LiveState | None = None,
               suggester: Suggester | None = None,
               metrics: CollectorRegistry | None = None, agents: AgentDirectory | None = None,
               kb: KbRegistry | None = None, rerender: Rerender | None = None) -> FastAPI:
    """The console for these settings. The store is opened (and migrated) here unless one is given;
    `live` is what the call path and the queue feed (a fresh, empty one when not given); `metrics` (the
    queue's gauges) is served at /metrics for the Prometheus scraper, without a session; `agents` is the running
    server's operator directory (else one is opened for the settings); `kb` the running hotline's knowledge base
    (else one is opened on `kb_dir`) and `rerender` what renders an edited entry's spoken answer again."""
    store = store or TicketStore(settings.database_url, suggest=suggester, tz=settings.tz)
    ctx = ConsoleContext(
        store=store, users=UserStore(store.engine), live=live or LiveState(),
        recordings_dir=Path(settings.recordings_dir), data_dir=settings.data_dir,  # type: ignore[arg-type]
        shared_recordings_dir=settings.recordings_shared_dir,
        secure_cookies=settings.console_secure_cookies, suggester=suggester,
        kb=KbDesk(settings.kb_dir, kb, rerender, tz=settings.tz),
    )
    _load_catalogue(ctx)
    ctx.templates.env.filters["masked"] = mask_number
    ctx.templates.env.filters["local"] = partial(local_time, tz=settings.tz)  # the hotline's time, not the machine's
    ctx.templates.env.globals["timezone"] = settings.timezone
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

    agents_api.install(app, agents or directory_for(settings))
    app.include_router(api.router)
    app.include_router(agents_api.router)
    app.include_router(pages.router)
    app.include_router(kb_routes.api)
    app.include_router(kb_routes.pages)
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
    ctx.categories = load_dispatch_catalogue().departments()
    ctx.districts = Gazetteer.load().districts
