"""The knowledge base in the console: the search and entry pages, a supervisor's edit in the browser, and the
JSON API (`/api/kb/...`). Operators read and search; only supervisors (and admins) change entries (403)."""
from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel

from ivr.console.deps import context_of, html, require
from ivr.console.kbdesk import EntryView, KbDesk
from ivr.console.users import Role, Session
from ivr.kb import KbError
from ivr.kb.edit import KbConflict
from ivr.storage import problem

__all__ = ["pages", "api", "desk_of"]

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/kb", tags=["knowledge base"])
MAX_LIMIT = 20


def desk_of(request: Request) -> KbDesk:
    return context_of(request).kb


def _view_or_404(desk: KbDesk, entry_id: str) -> EntryView:
    view = desk.entry(entry_id, desk.today())
    if view is None:
        raise HTTPException(404, f"no knowledge base entry {entry_id}" if desk.registry is not None
                            else f"the knowledge base is not loaded: {desk.problem}")
    return view


def _save(desk: KbDesk, background: BackgroundTasks, entry_id: str, fields: dict[str, Any], user: str,
          base: str | None) -> None:
    """Save, reload, and queue the re-render after the response; HTTP 409 or 422 with the reason when refused."""
    try:
        _, stale = desk.save(entry_id, fields, user, base, desk.today())
    except KbConflict as exc:
        raise HTTPException(409, str(exc)) from None
    except KbError as exc:
        raise HTTPException(422, str(exc)) from None
    except OSError as exc:  # e.g. a full disk: the file and its history are as they were
        raise HTTPException(507, f"not saved: {problem(exc)}") from None
    if stale:
        background.add_task(desk.render, entry_id)


@pages.get("/kb", response_class=HTMLResponse)
def kb_page(request: Request, q: str = "", session: Session = Depends(require())) -> Response:
    desk = desk_of(request)
    views = desk.search(q, desk.today(), limit=10) if q.strip() else desk.entries(desk.today())
    return html(context_of(request), request, "kb_list.html", q=q, views=views, problem=desk.problem)


@pages.get("/kb/{entry_id}", response_class=HTMLResponse)
def entry_page(request: Request, entry_id: str, msg: str = "", session: Session = Depends(require())) -> Response:
    desk = desk_of(request)
    view = _view_or_404(desk, entry_id)
    return _entry_html(request, desk, view, msg=msg)


def _entry_html(request: Request, desk: KbDesk, view: EntryView, msg: str = "", error: str = "",
                form: dict[str, str] | None = None, status: int = 200) -> Response:
    e = view.entry
    values = form or {"spoken": e.spoken, "text": e.text, "questions": "\n".join(e.questions), "status": e.status,
                      "expires": e.expires.isoformat() if e.expires else "", "base": desk.version(e)}
    response = html(context_of(request), request, "kb_entry.html", v=view, e=e, values=values, msg=msg,
                    error=error, history=desk.history(e.id), render=desk.renders.get(e.id, ""))
    response.status_code = status
    return response


@pages.post("/kb/{entry_id}")
async def save_page(request: Request, entry_id: str, background: BackgroundTasks,
                    session: Session = Depends(require(Role.SUPERVISOR))) -> Response:
    desk = desk_of(request)
    view = _view_or_404(desk, entry_id)
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    fields = {"spoken": form.get("spoken", ""), "text": form.get("text", ""),
              "questions": form.get("questions", "").splitlines(), "status": form.get("status", ""),
              "expires": form.get("expires", "")}
    try:
        _save(desk, background, entry_id, fields, session.user.username, form.get("base") or None)
    except HTTPException as exc:
        return _entry_html(request, desk, view, error=str(exc.detail), form=form, status=exc.status_code)
    return RedirectResponse(f"/kb/{entry_id}?msg=saved", status_code=303)


class SourceOut(BaseModel):
    title: str
    url: str | None


class EntryOut(BaseModel):
    id: str
    title: str
    topic: str
    file: str
    department: str
    questions: list[str]
    synonyms: list[str]
    spoken: str
    text: str
    source: SourceOut
    status: str
    checked_on: date | None
    checked_by: str | None
    expires: date | None
    unverified: bool
    expired: bool
    speakable: bool
    score: float


class EntryChanges(BaseModel):
    """The fields to change; those left out stay. `expires` null removes the expiry. `base` is the version of the
    entry's file the editor started from (GET .../version); a file changed since is refused with 409."""

    spoken: str | None = None
    text: str | None = None
    questions: list[str] | None = None
    status: str | None = None
    expires: date | None = None
    base: str | None = None


def _out(view: EntryView) -> EntryOut:
    e = view.entry
    return EntryOut(id=e.id, title=e.title, topic=e.topic, file=e.file, department=e.department,
                    questions=list(e.questions), synonyms=list(e.synonyms), spoken=e.spoken, text=e.text,
                    source=SourceOut(title=e.source.title, url=e.source.url), status=e.status,
                    checked_on=e.checked_on, checked_by=e.checked_by, expires=e.expires,
                    unverified=view.unverified, expired=view.expired, speakable=view.speakable, score=view.score)


@api.get("/search", response_model=list[EntryOut])
def search(request: Request, q: str, limit: int = 3, session: Session = Depends(require(api=True))) -> list[EntryOut]:
    """The entries that best answer a question (a ticket's transcript, or what an operator types), best first;
    `score` (0..1) says how sure the search is."""
    if not 1 <= limit <= MAX_LIMIT:
        raise HTTPException(422, f"limit must be 1..{MAX_LIMIT}")
    desk = desk_of(request)
    if desk.kb() is None:
        raise HTTPException(503, f"the knowledge base is not loaded: {desk.problem}")
    return [_out(v) for v in desk.search(q, desk.today(), limit=limit)]


@api.get("/entries/{entry_id}", response_model=EntryOut)
def get_entry(request: Request, entry_id: str, session: Session = Depends(require(api=True))) -> EntryOut:
    return _out(_view_or_404(desk_of(request), entry_id))


@api.get("/entries/{entry_id}/version")
def get_version(request: Request, entry_id: str, session: Session = Depends(require(api=True))) -> dict[str, str]:
    """The version of the entry's file, to send back as `base` with an edit."""
    desk = desk_of(request)
    return {"base": desk.version(_view_or_404(desk, entry_id).entry)}


@api.patch("/entries/{entry_id}", response_model=EntryOut)
def edit_entry(request: Request, entry_id: str, changes: EntryChanges, background: BackgroundTasks,
               session: Session = Depends(require(Role.SUPERVISOR, api=True))) -> EntryOut:
    """Change an entry: its file is written anew (the previous version kept, the change audited), the knowledge
    base reloaded and the spoken answer re-rendered in the background. 422 with the reason for a bad edit."""
    desk = desk_of(request)
    _view_or_404(desk, entry_id)
    fields = changes.model_dump(exclude_unset=True)
    base = fields.pop("base", None)
    _save(desk, background, entry_id, fields, session.user.username, base)
    return _out(_view_or_404(desk, entry_id))
