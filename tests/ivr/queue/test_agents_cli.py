"""`ivr queue agents` and `ivr queue agent ID STATE`, and a server-style loop in another process picking up
the changes (and the CLI showing the queue's own)."""
from __future__ import annotations

import gc
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ivr.commands import context
from ivr.commands.queue import app


@pytest.fixture(autouse=True)
def _collect_engines() -> Iterator[None]:
    """Close the SQLite files of the directories a test made now, not during a later test that counts fds."""
    yield
    gc.collect()


HERE = Path(__file__).resolve().parent
CONFIG = """data_dir = "{data}"
[[queue.agents]]
id = "op1"
name = "王芳"
uri = "sip:op1@127.0.0.1:5071"
groups = ["general", "elderly"]
[[queue.agents]]
id = "op2"
uri = "sip:13800138000@pbx.local"
groups = ["general"]
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    cfg = tmp_path / "ivr.toml"
    cfg.write_text(CONFIG.format(data=tmp_path / "data"), encoding="utf-8")
    context.configure(cfg, {}, 0)
    return cfg


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return res.exit_code, res.output


def agent_states() -> dict[str, str]:
    code, out = run("agents", "--json")
    assert code == 0, out
    return {a["agent_id"]: a["state"] for a in json.loads(out)}


def test_agents_table_shows_uri_groups_state(config: Path) -> None:
    code, out = run("agents")
    assert code == 0, out
    for text in ("op1", "王芳", "sip:op1@127.0.0.1:5071", "general,elderly", "available", "config",
                 "sip:13800138000@pbx.local"):  # URIs are shown whole: they are operators' lines
        assert text in out
    assert agent_states() == {"op1": "available", "op2": "available"}


def test_set_state_and_history(config: Path) -> None:
    assert run("agent", "op2", "signed-out", "--by", "alice") == (0, "op2: available -> signed_out (by alice)\n")
    code, out = run("agent", "op2", "wrap-up")
    assert code == 0 and out.startswith("op2: signed_out -> wrap_up (by cli:")
    assert agent_states()["op2"] == "wrap_up"
    code, out = run("agents", "--history", "--json")
    assert [(e["user"], e["before"], e["after"]) for e in json.loads(out)][1] == ("alice", "available", "signed_out")
    code, out = run("agents", "--history")
    assert code == 0 and "alice" in out and "signed_out" in out


@pytest.mark.parametrize(("args", "message"), [
    (("op9", "available"), "ivr: no agent 'op9' (agents: op1, op2)\n"),
    (("op1", "busy"), "ivr: unknown state 'busy': use available, signed-out or wrap-up\n"),
    (("op1", "on-call"), "ivr: state on_call is set by the queue, not by hand\n"),
])
def test_clear_errors(config: Path, args: tuple[str, str], message: str) -> None:
    res = CliRunner().invoke(app, ["agent", *args])
    assert (res.exit_code, res.stderr) == (1, message)


def test_no_operators_configured(tmp_path: Path) -> None:
    context.configure(None, {"data_dir": tmp_path}, 0)
    assert run("agents") == (0, "no operators configured: add [[queue.agents]] to the settings file\n")


def test_a_running_server_loop_picks_up_cli_changes(config: Path) -> None:
    assert run("agent", "op1", "signed-out")[0] == 0  # the elderly desk has nobody: the caller waits
    proc = subprocess.Popen([sys.executable, str(HERE / "agents_proc.py"), str(config)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None

    def expect(line: str) -> None:
        got = proc.stdout.readline().strip()  # type: ignore[union-attr]
        assert got == line

    try:
        expect("ready")
        assert agent_states()["op1"] == "signed_out"
        assert run("agent", "op1", "available")[0] == 0
        expect("op1 on_call")  # the server applied the CLI's change and gave op1 the waiting elderly caller
        until_on_call = time.monotonic() + 120  # a guard against hanging, not a timing check
        while agent_states()["op1"] != "on_call":
            assert time.monotonic() < until_on_call, "the server never wrote on_call back"
            time.sleep(0.05)
        assert run("agent", "op1", "signed-out") == (
            0, "op1: on_call -> signed_out (by cli:" + _login() + "); applies when the current call ends\n")
        proc.stdin.write("end op1\n")
        proc.stdin.flush()
        expect("op1 signed_out")  # at the end of the call (wrap-up, then the sign-out in the same loop)
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdin.close()
        proc.stdout.close()
    assert agent_states()["op1"] == "signed_out"


def _login() -> str:
    from ivr.commands.queue import _login as login
    return login()
