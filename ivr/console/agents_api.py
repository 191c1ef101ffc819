"""The operators' availability in the JSON API: list them, and set their state (supervisors and admins any
operator's, an operator-role user their own).

States set here go to the callbacks database (`AgentDirectory`); the running server applies them at its next
tick. A console user is an operator when a `[[queue.agents]]` table names them as its `user`.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, Field

from ivr.config import AgentConfig
from ivr.console.deps import require
from ivr.console.users import Role, Session
from ivr.live import AgentEntry
from ivr.queue.directory import AgentAudit, AgentDirectory, AgentStatus
from ivr.queue.model import UnknownAgent

__all__ = ["router", "install", "operator_of", "status_of"]

router = APIRouter(prefix="/api", tags=["agents"])


class AgentOut(BaseModel):
    id: str
    name: str
    uri: str
    groups: list[str]
    user: str = Field(description="the console user who signs in as this operator (empty: none)")
    state: str = Field(description="available, on_call, wrap_up or signed_out")
    since: datetime
    changed_by: str


class AgentStateIn(BaseModel):
    state: Literal["available", "signed_out", "wrap_up"] = Field(
        description="available (signed in), signed_out, or wrap_up (a pause of the desk's wrap-up time)")


class AgentAuditOut(BaseModel):
    at: datetime
    user: str
    before: str
    after: str


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


def _agent(s: AgentStatus) -> AgentOut:
    return AgentOut(id=s.agent_id, name=s.name, uri=s.uri, groups=list(s.groups), user=s.user,
                    state=s.state.value, since=_at(s.since), changed_by=s.changed_by)


def _audit(e: AgentAudit) -> AgentAuditOut:
    return AgentAuditOut(at=_at(e.at), user=e.user, before=e.before.value, after=e.after.value)


def install(app: FastAPI, d: AgentDirectory) -> None:
    """Serve the operator directory `d` on the routes, and list the operators on the live page."""
    app.state.agents = d
    live = app.state.console.live
    if live.agents_source is None:
        live.agents_source = lambda: [AgentEntry(s.agent_id, s.name, s.groups, s.state.value, _at(s.since))
                                      for s in d.statuses()]


def directory(request: Request) -> AgentDirectory:
    return request.app.state.agents


def operator_of(d: AgentDirectory, username: str) -> AgentConfig | None:
    """The operator whose `[[queue.agents]]` table names this console user, if any."""
    return next((a for a in d.agents.values() if a.user and a.user == username), None)


def status_of(request: Request, username: str) -> AgentOut | None:
    """This console user's operator with their state, or None when no operator names them as its user."""
    d = directory(request)
    mine = operator_of(d, username)
    return None if mine is None else _agent(d.get(mine.agent_id))


@router.get("/agents", response_model=list[AgentOut])
def agents(request: Request, session: Session = Depends(require(api=True))) -> list[AgentOut]:
    """Every configured operator with their state, as the running server sees it."""
    d = directory(request)
    return [_agent(s) for s in d.statuses()]


@router.get("/agents/me", response_model=AgentOut)
def my_agent(request: Request, session: Session = Depends(require(api=True))) -> AgentOut:
    """The signed-in user's operator (the `[[queue.agents]]` table naming them as its `user`) with their state."""
    mine = status_of(request, session.user.username)
    if mine is None:
        raise HTTPException(404, f"no operator is configured for user {session.user.username!r}")
    return mine


@router.put("/agents/{agent_id}", response_model=AgentOut)
def set_agent_state(request: Request, agent_id: str, change: AgentStateIn,
                    session: Session = Depends(require(api=True))) -> AgentOut:
    """Sign an operator in or out, or give them a wrap-up pause (supervisors and admins any operator, an
    operator-role user their own operator, the one whose `user` they are; audited).
    Signing out an operator on a call takes effect when the call ends; any state set ends a call handed over
    by REFER."""
    d = directory(request)
    mine = operator_of(d, session.user.username)
    if not session.user.role.allows(Role.SUPERVISOR) and (mine is None or mine.agent_id != agent_id):
        raise HTTPException(403, "this needs the supervisor role: an operator sets only their own state")
    try:
        d.set_state(agent_id, change.state, session.user.username)
    except UnknownAgent as exc:
        raise HTTPException(404, str(exc)) from None
    return _agent(d.get(agent_id))


@router.get("/agents/{agent_id}/audit", response_model=list[AgentAuditOut])
def agent_audit(request: Request, agent_id: str,
                session: Session = Depends(require(api=True))) -> list[AgentAuditOut]:
    """The operator's state changes, newest first."""
    try:
        return [_audit(e) for e in directory(request).history(agent_id)]
    except UnknownAgent as exc:
        raise HTTPException(404, str(exc)) from None
