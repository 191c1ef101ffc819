"""CLI listings a script can read: piped into another program a table keeps every column whole (it is not squeezed
to 80 columns), and `--json` gives the same rows as data."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from asr.results import Transcript
from ivr.commands import context
from ivr.commands.models import app as models_app
from ivr.commands.users import app as users_app
from ivr.config import load_settings
from ivr.console.users import UserStore
from ivr.tickets import TicketStore

IVR = Path(sys.executable).parent / "ivr"
TEXT = "我家暖气一点都不热屋里才十四度已经一个星期了物业一直说在修可是到现在也没有人来看过麻烦你们尽快派人处理一下"


def a_ticket(data: Path) -> str:
    store = TicketStore(load_settings(overrides={"data_dir": data}, environ={}).database_url)
    ticket = store.create(caller="13812345678", call_id="c-1", kind="complaint", menu_path=["menu=complaint"],
                          flags=[], recording="x.wav")
    store.complete_recording(ticket.number, audio_ms=8000, sha256="", transcript=Transcript(text=TEXT))
    store.update(ticket.number, "alice", {"category": "供暖", "district": "朝阳区"})
    return ticket.number


def ivr(data: Path, *args: str) -> str:
    """`ivr ARGS` as a separate process, its output read through a pipe (as `| grep` or a script would)."""
    env = {**os.environ, "IVR_DATA_DIR": str(data), "COLUMNS": "80"}
    done = subprocess.run([str(IVR), *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_piped_ticket_list_keeps_every_column_whole(tmp_path: Path) -> None:
    number = a_ticket(tmp_path / "data")
    out = ivr(tmp_path / "data", "tickets", "list")
    [line] = [line for line in out.splitlines() if number in line]  # one line for the ticket, not folded
    for cell in ("complaint", "open", "供暖", "朝阳区", "done", "138****5678", TEXT[:40] + "…"):
        assert cell in line, (cell, line)
    assert "…" not in line.replace(TEXT[:40] + "…", "")  # nothing else cut short


def test_ticket_list_as_json(tmp_path: Path) -> None:
    number = a_ticket(tmp_path / "data")
    data = json.loads(ivr(tmp_path / "data", "tickets", "list", "--json"))
    assert data["total"] == 1
    [row] = data["items"]
    assert (row["number"], row["kind"], row["status"], row["transcription"], row["category"], row["district"],
            row["caller"], row["text"], row["audio_ms"]) == (number, "complaint", "open", "done", "供暖", "朝阳区",
                                                             "138****5678", TEXT, 8000)
    assert row["created_at"].startswith(number[:4] + "-")
    full = json.loads(ivr(tmp_path / "data", "tickets", "list", "--json", "--full-numbers"))
    assert full["items"][0]["caller"] == "13812345678"


def test_users_and_models_as_json(tmp_path: Path) -> None:
    settings = load_settings(overrides={"data_dir": tmp_path / "data"}, environ={})
    UserStore(TicketStore(settings.database_url).engine).add("alice", "a long passphrase 1", "supervisor")
    context.configure(None, {"data_dir": tmp_path / "data"}, 0)
    users = CliRunner().invoke(users_app, ["list", "--json"])
    assert users.exit_code == 0, users.output
    [alice] = json.loads(users.output)
    assert (alice["username"], alice["role"], alice["active"]) == ("alice", "supervisor", True)
    models = CliRunner().invoke(models_app, ["list", "--json"], obj=settings)
    assert models.exit_code == 0, models.output
    listed = {m["name"]: m for m in json.loads(models.output)}
    default = [m for m in listed.values() if m["default"]]
    assert len(default) == 1 and default[0]["state"] == "not installed" and default[0]["zip_bytes"] > 0
