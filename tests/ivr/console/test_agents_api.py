"""GET/PUT /api/agents: roles and CSRF as the rest of the API, audited, and seen by a server's queue."""
from __future__ import annotations

import gc
from collections.abc import Iterator

import dataclasses
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ivr.config import AgentConfig, load_settings
from ivr.console import create_app
from ivr.live import LiveState
from ivr.queue import AgentState, CallQueue
from ivr.queue.directory import directory_for
from ivr.tickets.store import TicketStore

from .conftest import PASSWORD


@pytest.fixture(autouse=True)
def _collect_engines() -> Iterator[None]:
    """Close the SQLite files of the directories a test made now, not during a later test that counts fds."""
    yield
    gc.collect()


AGENTS = (AgentConfig("op1", "王芳", "sip:op1@127.0.0.1:5071", ("general", "elderly"), "wangfang"),
          AgentConfig("op2", "op2", "sip:op2@127.0.0.1:5072", ("general",)))


@pytest.fixture
def setup(tmp_path: Path, suggester):  # type: ignore[no-untyped-def]
    settings = dataclasses.replace(load_settings(overrides={"data_dir": tmp_path / "data"}, environ={}),
                                   queue_agents=AGENTS)
    app = create_app(settings, store=TicketStore(settings.database_url, suggest=suggester), live=LiveState(),
                     suggester=suggester)
    for role in ("operator", "supervisor", "admin"):
        app.state.console.users.add(role, PASSWORD, role)
    app.state.console.users.add("wangfang", PASSWORD, "operator")  # op1's console user

    def api(user: str) -> tuple[TestClient, str]:
        c = TestClient(app)
        r = c.post("/api/session", json={"username": user, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return c, r.json()["csrf"]

    return settings, app, api


def test_list_needs_a_session(setup) -> None:  # type: ignore[no-untyped-def]
    _, app, api = setup
    assert TestClient(app).get("/api/agents").status_code == 401
    c, _ = api("operator")
    r = c.get("/api/agents")
    assert r.status_code == 200
    assert [(a["id"], a["name"], a["uri"], a["groups"], a["user"], a["state"], a["changed_by"])
            for a in r.json()] == [
        ("op1", "王芳", "sip:op1@127.0.0.1:5071", ["general", "elderly"], "wangfang", "available", "config"),
        ("op2", "op2", "sip:op2@127.0.0.1:5072", ["general"], "", "available", "config")]


def test_setting_a_state_needs_a_supervisor_and_the_csrf_token(setup) -> None:  # type: ignore[no-untyped-def]
    _, _, api = setup
    c, csrf = api("operator")
    r = c.put("/api/agents/op1", json={"state": "signed_out"}, headers={"X-CSRF-Token": csrf})
    assert (r.status_code, r.json()["detail"]) == (
        403, "this needs the supervisor role: an operator sets only their own state")
    c, csrf = api("supervisor")
    r = c.put("/api/agents/op1", json={"state": "signed_out"})
    assert (r.status_code, r.json()["detail"]) == (403, "CSRF token missing or wrong")
    r = c.put("/api/agents/op1", json={"state": "signed_out"}, headers={"X-CSRF-Token": "wrong"})
    assert r.status_code == 403
    r = c.put("/api/agents/op1", json={"state": "signed_out"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["changed_by"]) == ("signed_out", "supervisor")
    c, csrf = api("admin")
    r = c.put("/api/agents/op1", json={"state": "wrap_up"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["state"] == "wrap_up"
    audit = c.get("/api/agents/op1/audit").json()
    assert [(e["user"], e["before"], e["after"]) for e in audit] == [
        ("admin", "signed_out", "wrap_up"), ("supervisor", "available", "signed_out")]


def test_unknown_agent_and_state(setup) -> None:  # type: ignore[no-untyped-def]
    _, _, api = setup
    c, csrf = api("supervisor")
    r = c.put("/api/agents/op9", json={"state": "available"}, headers={"X-CSRF-Token": csrf})
    assert (r.status_code, r.json()["detail"]) == (404, "no agent 'op9' (agents: op1, op2)")
    assert c.get("/api/agents/op9/audit").status_code == 404
    for bad in ("on_call", "busy"):
        r = c.put("/api/agents/op1", json={"state": bad}, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 422
    assert c.get("/api/agents/op1/audit").json() == []


def test_in_openapi(setup) -> None:  # type: ignore[no-untyped-def]
    _, _, api = setup
    c, _ = api("operator")
    paths = c.get("/api/openapi.json").json()["paths"]
    assert set(paths["/api/agents"]) == {"get"} and set(paths["/api/agents/{agent_id}"]) == {"put"}
    assert "supervisors" in paths["/api/agents/{agent_id}"]["put"]["description"]
    assert "own operator" in paths["/api/agents/{agent_id}"]["put"]["description"]
    assert set(paths["/api/agents/me"]) == {"get"}
    assert "signed-in user's operator" in paths["/api/agents/me"]["get"]["description"]


def test_an_operator_sets_their_own_state_only(setup) -> None:  # type: ignore[no-untyped-def]
    settings, _, api = setup
    c, csrf = api("wangfang")
    r = c.put("/api/agents/op1", json={"state": "wrap_up"})
    assert (r.status_code, r.json()["detail"]) == (403, "CSRF token missing or wrong")
    r = c.put("/api/agents/op1", json={"state": "wrap_up"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    assert (r.json()["id"], r.json()["state"], r.json()["changed_by"]) == ("op1", "wrap_up", "wangfang")
    r = c.put("/api/agents/op1", json={"state": "available"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["state"] == "available"
    for other in ("op2", "op9"):
        r = c.put(f"/api/agents/{other}", json={"state": "signed_out"}, headers={"X-CSRF-Token": csrf})
        assert (r.status_code, r.json()["detail"]) == (
            403, "this needs the supervisor role: an operator sets only their own state")
    assert [(e["user"], e["before"], e["after"]) for e in c.get("/api/agents/op1/audit").json()] == [
        ("wangfang", "wrap_up", "available"), ("wangfang", "available", "wrap_up")]
    assert c.get("/api/agents/op2/audit").json() == []
    assert {s.agent_id: s.state for s in directory_for(settings).statuses()} == {
        "op1": AgentState.AVAILABLE, "op2": AgentState.AVAILABLE}


def test_my_operator(setup) -> None:  # type: ignore[no-untyped-def]
    _, app, api = setup
    assert TestClient(app).get("/api/agents/me").status_code == 401
    c, _ = api("operator")
    r = c.get("/api/agents/me")
    assert (r.status_code, r.json()["detail"]) == (404, "no operator is configured for user 'operator'")
    s, csrf = api("supervisor")
    assert s.get("/api/agents/me").status_code == 404
    s.put("/api/agents/op1", json={"state": "signed_out"}, headers={"X-CSRF-Token": csrf})
    c, _ = api("wangfang")
    r = c.get("/api/agents/me")
    assert r.status_code == 200, r.text
    me = r.json()
    assert (me["id"], me["name"], me["user"], me["state"], me["changed_by"]) == (
        "op1", "王芳", "wangfang", "signed_out", "supervisor")


def test_the_live_page_shows_my_state_to_a_mapped_user_only(setup) -> None:  # type: ignore[no-untyped-def]
    _, _, api = setup
    c, csrf = api("wangfang")
    c.put("/api/agents/op1", json={"state": "wrap_up"}, headers={"X-CSRF-Token": csrf})
    page = c.get("/live").text
    assert '<section id="me" data-agent="op1"><h2>我的状态 My state</h2>' in page
    assert '<strong id="me-state">wrap_up</strong>' in page
    assert [b in page for b in ('data-state="available">就绪', 'data-state="wrap_up">小休',
                                'data-state="signed_out">签出')] == [True, True, True]
    for user in ("operator", "supervisor"):
        c, _ = api(user)
        page = c.get("/live").text
        assert 'id="agents"' in page and 'id="me"' not in page and "我的状态" not in page


def test_a_servers_queue_picks_up_an_api_change(setup) -> None:  # type: ignore[no-untyped-def]
    settings, _, api = setup
    server = directory_for(settings)  # what `ivr serve` holds, on the same database
    queue = CallQueue(list(settings.queue_groups), lambda: 0.0)
    server.populate(queue)
    c, csrf = api("supervisor")
    assert c.put("/api/agents/op2", json={"state": "signed_out"}, headers={"X-CSRF-Token": csrf}).status_code == 200
    server.sync(queue)
    assert queue.agents["op2"].state == AgentState.SIGNED_OUT
    queue.enqueue("c1", "general")
    queue.tick()
    server.sync(queue)
    assert {a["id"]: a["state"] for a in c.get("/api/agents").json()} == {"op1": "on_call", "op2": "signed_out"}


def test_live_page_lists_the_operators(setup) -> None:  # type: ignore[no-untyped-def]
    _, app, api = setup
    c, csrf = api("supervisor")
    c.put("/api/agents/op2", json={"state": "signed_out"}, headers={"X-CSRF-Token": csrf})
    page = c.get("/live").text
    assert 'id="agents"' in page and '<span id="n-agents">2</span>' in page
    assert "<td>op1</td><td>王芳</td><td>general,elderly</td><td>available</td>" in page
    assert "<td>op2</td><td>op2</td><td>general</td><td>signed_out</td>" in page
    assert app.state.console.live.snapshot().errors == ()


def test_an_operator_ready_after_a_referred_call_ends_it(setup) -> None:  # type: ignore[no-untyped-def]
    settings, _, api = setup
    server = directory_for(settings)
    queue = CallQueue(list(settings.queue_groups), lambda: 0.0)
    server.populate(queue)
    queue.enqueue("c1", "elderly")  # only op1 serves the elderly desk
    queue.tick()
    queue.connected("c1")
    queue.handed_off("op1", busy_s=600)  # transferred by REFER: the server does not see the call end
    server.sync(queue)
    c, csrf = api("wangfang")
    assert c.get("/api/agents/me").json()["state"] == "on_call"
    r = c.put("/api/agents/op1", json={"state": "available"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    server.sync(queue)
    assert queue.agents["op1"].state == AgentState.AVAILABLE and not queue.out_of_sight("op1")
    assert (c.get("/api/agents/me").json()["state"], server.get("op1").changed_by) == ("available", "wangfang")
