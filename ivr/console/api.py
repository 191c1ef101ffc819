"""The JSON API for the city's dispatch system (and the console's own scripts); OpenAPI at /api/openapi.json."""
from __future__ import annotations

import dataclasses
import typing
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, create_model
from starlette.concurrency import run_in_threadpool

from ivr.console.deps import COOKIE, MAX_OFFSET, client_host, context_of, filter_from, recording_response, require
from ivr.console.export import csv_response
from ivr.console.users import SESSION_HOURS, Role, Session, UserError
from ivr.logs import mask_number
from ivr.tickets import audit as audit_entries
from ivr.tickets.model import StoredCorrection, Ticket, TicketEditError, TicketNotFound, TicketRow

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["tickets"])
MAX_LIMIT = 500


class Credentials(BaseModel):
    username: str
    password: str


class SessionOut(BaseModel):
    username: str
    role: str
    csrf: str = Field(description="send as the X-CSRF-Token header on every POST/PATCH/DELETE")
    expires_at: datetime


def output_model(name: str, source: type, *, drop: Collection[str] = (), types: Mapping[str, Any] | None = None,
                 add: Mapping[str, Any] | None = None) -> type[BaseModel]:
    """An API output model with the fields of the dataclass `source` (typed as it types them) but those in `drop`,
    with other `types` for some (a nested value sent as its JSON form) and the fields `add` gives."""
    hints = typing.get_type_hints(source)
    fields: dict[str, Any] = {f.name: ((types or {}).get(f.name, hints[f.name]), ...)
                              for f in dataclasses.fields(source) if f.name not in drop}
    fields.update({k: (t, ...) for k, t in (add or {}).items()})
    return create_model(name, **fields)


TicketRowOut = output_model("TicketRowOut", TicketRow, drop=("id",))
TicketOut = output_model("TicketOut", Ticket, drop=("id", "recording", "extra", "updated_at", "node"),
                         types={"transcript": dict[str, Any] | None, "live_transcript": dict[str, Any] | None},
                         add={"text": str, "audio_url": str})
TicketPageOut = create_model("TicketPageOut", total=(int, ...), offset=(int, ...), limit=(int, ...),
                             items=(list[TicketRowOut], ...))  # type: ignore[valid-type]  # a model made at run time


class TicketChanges(BaseModel):
    category: str | None = None
    department: str | None = None
    district: str | None = None
    urgency: str | None = None
    kind: str | None = None
    contact_name: str | None = None
    callback_number: str | None = None
    address: str | None = None
    note: str | None = None

    def values(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class WordFix(BaseModel):
    text: str


class StatusChange(BaseModel):
    status: str = Field(description="open (reopen) or closed")


class NewUser(BaseModel):
    username: str
    password: str
    role: str = "operator"


class UserOut(BaseModel):
    username: str
    role: str
    active: bool
    created_at: datetime


def _row(r: TicketRow) -> BaseModel:
    return TicketRowOut.model_validate(r, from_attributes=True)


def _ticket(t: Ticket) -> BaseModel:
    values = {k: getattr(t, k) for k in TicketOut.model_fields
              if k not in ("transcript", "live_transcript", "audio_url")}
    return TicketOut(**values, transcript=t.transcript.to_dict() if t.transcript else None,
                     live_transcript=t.live_transcript.to_dict() if t.live_transcript else None,
                     audio_url=f"/api/tickets/{t.number}/audio")


def _edit(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except TicketNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except TicketEditError as exc:
        raise HTTPException(422, str(exc)) from None


@router.post("/session", response_model=SessionOut, tags=["session"])
async def sign_in(request: Request, creds: Credentials) -> Response:
    """Sign in; the session cookie is set and the CSRF token returned. Repeated failures lock the user name
    and the client address out for a while (429); a busy console answers 503 at once."""
    ctx = context_of(request)
    user = await ctx.sign_in(creds.username, creds.password, client_host(request))
    if user is None:
        raise HTTPException(401, "wrong user name or password")
    s = await run_in_threadpool(ctx.users.start_session, user)
    body = SessionOut(username=user.username, role=user.role.value, csrf=s.csrf, expires_at=s.expires_at)
    response = JSONResponse(body.model_dump(mode="json"))
    response.set_cookie(COOKIE, s.token, httponly=True, samesite="strict", secure=ctx.secure_cookies,
                        max_age=SESSION_HOURS * 3600)
    return response


@router.delete("/session", status_code=204, tags=["session"])
def sign_out(request: Request, session: Session = Depends(require(api=True))) -> Response:
    context_of(request).users.end_session(session.token)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE)
    return response


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request, session: Session = Depends(require(api=True))) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/tickets", response_model=TicketPageOut)
def list_tickets(request: Request, limit: int = 50, offset: int = 0, status: str = "", category: str = "",
                 district: str = "", urgency: str = "", transcription: str = "", kind: str = "", since: str = "",
                 until: str = "", q: str = "",
                 session: Session = Depends(require(api=True))) -> BaseModel:
    """Tickets newest first; `q` finds transcripts containing every space-separated part."""
    if not 1 <= limit <= MAX_LIMIT or not 0 <= offset <= MAX_OFFSET:
        raise HTTPException(422, f"limit must be 1..{MAX_LIMIT} and offset 0..{MAX_OFFSET}")
    flt = filter_from(dict(status=status, category=category, district=district, urgency=urgency,
                           transcription=transcription, kind=kind, since=since, until=until, q=q))
    page = context_of(request).store.search(flt, limit=limit, offset=offset)
    return TicketPageOut(total=page.total, offset=offset, limit=limit, items=[_row(r) for r in page.rows])


@router.get("/tickets/{number}", response_model=TicketOut)
def get_ticket(request: Request, number: str, session: Session = Depends(require(api=True))) -> BaseModel:
    return _ticket(_edit(context_of(request).store.get, number))


@router.patch("/tickets/{number}", response_model=TicketOut)
def edit_ticket(request: Request, number: str, changes: TicketChanges,
                session: Session = Depends(require(api=True))) -> BaseModel:
    """Change fields; each change is audited under the signed-in user."""
    store = context_of(request).store
    return _ticket(_edit(store.update, number, session.user.username, changes.values()))


@router.post("/tickets/{number}/words/{index}", response_model=TicketOut)
def fix_word(request: Request, number: str, index: int, fix: WordFix,
             session: Session = Depends(require(api=True))) -> BaseModel:
    store = context_of(request).store
    return _ticket(_edit(store.correct_word, number, session.user.username, index, fix.text))


@router.post("/tickets/{number}/dispatch", response_model=TicketOut)
def dispatch(request: Request, number: str, changes: TicketChanges | None = None,
             session: Session = Depends(require(api=True))) -> BaseModel:
    """Apply the changes and dispatch; the ticket needs a category and a department."""
    store = context_of(request).store
    values = changes.values() if changes else {}
    return _ticket(_edit(store.dispatch, number, session.user.username, values))


@router.post("/tickets/{number}/status", response_model=TicketOut)
def set_status(request: Request, number: str, change: StatusChange,
               session: Session = Depends(require(Role.SUPERVISOR, api=True))) -> BaseModel:
    store = context_of(request).store
    return _ticket(_edit(store.set_status, number, session.user.username, change.status))


@router.post("/tickets/{number}/suggestion", response_model=TicketOut)
def refresh_suggestion(request: Request, number: str,
                       session: Session = Depends(require(Role.SUPERVISOR, api=True))) -> BaseModel:
    """Suggest again with the current model (after `ivr dispatch retrain`)."""
    ctx = context_of(request)
    ctx.suggest()
    return _ticket(_edit(ctx.store.refresh_suggestion, number))


@router.get("/tickets/{number}/audit", response_model=list[audit_entries.AuditEntry])
def audit(request: Request, number: str,
          session: Session = Depends(require(api=True))) -> list[audit_entries.AuditEntry]:
    return _edit(context_of(request).store.audit, number)


@router.get("/tickets/{number}/audio", response_class=Response,
            responses={200: {"content": {"audio/wav": {}}}})
def audio(request: Request, number: str, session: Session = Depends(require(api=True))) -> Response:
    return recording_response(request, number)


@router.get("/corrections", response_model=list[StoredCorrection])
def corrections(request: Request,
                session: Session = Depends(require(Role.SUPERVISOR, api=True))) -> list[StoredCorrection]:
    """Operators' category corrections: the classifier's retraining data."""
    return context_of(request).store.corrections()


@router.get("/export.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def export(request: Request, session: Session = Depends(require(Role.SUPERVISOR, api=True))) -> Response:
    return csv_response(context_of(request).store, filter_from(dict(request.query_params)))


@router.get("/live", tags=["live"])
def live(request: Request, session: Session = Depends(require(api=True))) -> dict[str, Any]:
    """Calls in progress, the queue and callbacks (callers' numbers masked)."""
    snap = context_of(request).live.snapshot()
    return {
        "at": snap.at.isoformat(),
        "calls": [dict(c.__dict__, caller=mask_number(c.caller), started=c.started.isoformat()) for c in snap.calls],
        "queue": [dict(e.__dict__, caller=mask_number(e.caller)) for e in snap.queue],
        "callbacks": [dict(c.__dict__, caller=mask_number(c.caller), requested_at=c.requested_at.isoformat())
                      for c in snap.callbacks],
        "errors": list(snap.errors),
    }


@router.get("/users", response_model=list[UserOut], tags=["users"])
def users(request: Request, session: Session = Depends(require(Role.ADMIN, api=True))) -> list[UserOut]:
    return [UserOut(username=u.username, role=u.role.value, active=u.active, created_at=u.created_at)
            for u in context_of(request).users.list()]


@router.post("/users", response_model=UserOut, status_code=201, tags=["users"])
def add_user(request: Request, new: NewUser, session: Session = Depends(require(Role.ADMIN, api=True))) -> UserOut:
    try:
        u = context_of(request).users.add(new.username, new.password, new.role)
    except UserError as exc:
        raise HTTPException(422, str(exc)) from None
    return UserOut(username=u.username, role=u.role.value, active=u.active, created_at=u.created_at)
