"""The console's server-rendered pages: sign-in, ticket list, ticket (with the knowledge base search beside it), live
view, CSV export."""
from __future__ import annotations

from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ivr.console.agents_api import status_of
from ivr.console.deps import (
    COOKIE, LOGIN_COOKIE, MAX_OFFSET, client_host, context_of, filter_from, html, recording_response, require,
    ticket_or_404,
)
from ivr.console.export import csv_response
from ivr.console.security import new_token, same
from ivr.console.users import SESSION_HOURS, Role, Session
from ivr.tickets.model import EDITABLE_FIELDS, TicketEditError

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
PAGE = 50
LOW_CONFIDENCE = 0.6
STATUSES = ("open", "dispatched", "closed")
URGENCIES = ("normal", "urgent", "emergency")


async def form_data(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/tickets"


@router.get("/login")
def login_page(request: Request, next: str = "/tickets", error: str = "") -> Response:
    ctx = context_of(request)
    token = new_token()
    response = html(ctx, request, "login.html", next=_safe_next(next), error=error, login_csrf=token)
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=ctx.secure_cookies,
                        max_age=3600)
    return response


@router.post("/login")
async def login(request: Request, form: dict[str, str] = Depends(form_data)) -> Response:
    ctx = context_of(request)
    target = _safe_next(form.get("next", "/tickets"))
    if not same(form.get("csrf"), request.cookies.get(LOGIN_COOKIE)):
        raise HTTPException(403, "CSRF token missing or wrong")
    user = await ctx.sign_in(form.get("username", ""), form.get("password", ""),
                             client_host(request))
    if user is None:
        return RedirectResponse(f"/login?next={quote(target, safe='')}&error=1", status_code=303)
    session = await run_in_threadpool(ctx.users.start_session, user)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, session.token, httponly=True, samesite="strict", secure=ctx.secure_cookies,
                        max_age=SESSION_HOURS * 3600)
    response.delete_cookie(LOGIN_COOKIE)
    return response


@router.post("/logout")
def logout(request: Request, session: Session = Depends(require())) -> Response:
    context_of(request).users.end_session(session.token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.get("/")
def home(session: Session = Depends(require())) -> Response:
    return RedirectResponse("/tickets", status_code=303)


@router.get("/tickets", response_class=HTMLResponse)
def ticket_list(request: Request, page: int = 1, session: Session = Depends(require())) -> Response:
    ctx = context_of(request)
    params = dict(request.query_params)
    flt = filter_from(params)
    page = max(1, page)
    if page > MAX_OFFSET // PAGE:
        raise HTTPException(400, f"page: {page} is beyond the last page there can be ({MAX_OFFSET // PAGE})")
    result = ctx.store.search(flt, limit=PAGE, offset=(page - 1) * PAGE)
    keep = {k: v for k, v in params.items() if k != "page" and v}
    return html(ctx, request, "list.html", result=result, flt=flt, params=keep, page=page,
                pages=max(1, -(-result.total // PAGE)), query=urlencode(keep), statuses=STATUSES,
                urgencies=URGENCIES, categories=list(ctx.categories), districts=ctx.districts)


@router.get("/tickets/{number}", response_class=HTMLResponse)
def ticket_page(request: Request, number: str, msg: str = "", error: str = "", kbq: str | None = None,
                session: Session = Depends(require())) -> Response:
    ctx = context_of(request)
    ticket = ticket_or_404(ctx.store, number)
    check = ctx.store.verify_recording(number, ctx.recordings_dir, ctx.shared_recordings_dir) if ticket.recording else None
    suggestion = ticket.suggestion or {}
    autofill = suggestion.get("autofill") or {}
    proposed = {
        "contact_name": (autofill.get("name") or {}).get("display", ""),
        "callback_number": (autofill.get("phone") or {}).get("digits", ""),
        "address": (autofill.get("address") or {}).get("full", ""),
    }
    values = {k: getattr(ticket, k) or proposed.get(k, "") for k in EDITABLE_FIELDS}
    kb_query = (ticket.text or "") if kbq is None else kbq  # the transcript until the operator types a question
    categories = list(ctx.categories)
    if ticket.category and ticket.category not in ctx.categories:
        categories.append(ticket.category)
    return html(ctx, request, "ticket.html", t=ticket, check=check, suggestion=suggestion, values=values,
                proposed=proposed, categories=categories, departments=ctx.categories, districts=ctx.districts,
                urgencies=URGENCIES, audit=ctx.store.audit(number), low=LOW_CONFIDENCE, msg=msg, error=error,
                job=ctx.store.job(number), kbq=kb_query, kb_views=ctx.kb.search(kb_query, ctx.kb.today()),
                kb_problem=ctx.kb.problem)


def _back(number: str, msg: str = "", error: str = "") -> Response:
    query = urlencode({k: v for k, v in (("msg", msg), ("error", error)) if v})
    return RedirectResponse(f"/tickets/{number}" + (f"?{query}" if query else ""), status_code=303)


@router.post("/tickets/{number}")
def save_ticket(request: Request, number: str, form: dict[str, str] = Depends(form_data),
                session: Session = Depends(require())) -> Response:
    ctx = context_of(request)
    ticket_or_404(ctx.store, number)
    changes = {k: v for k, v in form.items() if k in EDITABLE_FIELDS}
    try:
        if form.get("action") == "dispatch":
            ctx.store.dispatch(number, session.user.username, changes)
            return _back(number, msg="dispatched")
        ctx.store.update(number, session.user.username, changes)
    except TicketEditError as exc:
        return _back(number, error=str(exc))
    return _back(number, msg="saved")


@router.post("/tickets/{number}/words")
def correct_word(request: Request, number: str, form: dict[str, str] = Depends(form_data),
                 session: Session = Depends(require())) -> Response:
    ctx = context_of(request)
    ticket_or_404(ctx.store, number)
    try:
        index = int(form.get("index", ""))
    except ValueError:
        return _back(number, error="choose the word to correct")
    try:
        ctx.store.correct_word(number, session.user.username, index, form.get("text", ""))
    except TicketEditError as exc:
        return _back(number, error=str(exc))
    return _back(number, msg="word corrected")


@router.post("/tickets/{number}/status")
def set_status(request: Request, number: str, form: dict[str, str] = Depends(form_data),
               session: Session = Depends(require(Role.SUPERVISOR))) -> Response:
    ctx = context_of(request)
    ticket_or_404(ctx.store, number)
    try:
        ctx.store.set_status(number, session.user.username, form.get("status", ""))
    except TicketEditError as exc:
        return _back(number, error=str(exc))
    return _back(number, msg=f"status {form.get('status')}")


@router.get("/tickets/{number}/audio")
def audio(request: Request, number: str, session: Session = Depends(require())) -> Response:
    return recording_response(request, number)


@router.get("/live", response_class=HTMLResponse)
def live_page(request: Request, session: Session = Depends(require())) -> Response:
    ctx = context_of(request)
    return html(ctx, request, "live.html", snap=ctx.live.snapshot(), mine=status_of(request, session.user.username))


@router.get("/export.csv")
def export(request: Request, session: Session = Depends(require(Role.SUPERVISOR))) -> Response:
    return csv_response(context_of(request).store, filter_from(dict(request.query_params)))
