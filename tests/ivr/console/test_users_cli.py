"""`ivr users`: adding and managing console users from the command line."""
from __future__ import annotations

import os
from pathlib import Path

from typer.testing import CliRunner

from ivr.commands.users import app
from ivr.commands import context
from ivr.console.users import Role, UserStore
from ivr.tickets.store import TicketStore


def run(data: Path, *args: str, stdin: str = "") -> tuple[int, str]:
    context.configure(None, {"data_dir": data}, 0)
    result = CliRunner().invoke(app, list(args), input=stdin, env={"IVR_DATA_DIR": str(data)})
    return result.exit_code, result.output


def test_add_list_and_sign_in(tmp_path: Path) -> None:
    code, out = run(tmp_path, "add", "wang.li", "--role", "supervisor", "--password-stdin", stdin="s3cret-pass\n")
    assert code == 0 and out.strip() == "added wang.li (supervisor)"
    users = UserStore(TicketStore(f"sqlite:///{tmp_path / 'ivr.db'}").engine)
    assert users.authenticate("wang.li", "s3cret-pass").role is Role.SUPERVISOR  # type: ignore[union-attr]
    assert users.authenticate("wang.li", "wrong-pass") is None
    code, out = run(tmp_path, "list")
    assert "wang.li" in out and "supervisor" in out and "active" in out


def test_errors_are_one_clear_line(tmp_path: Path) -> None:
    run(tmp_path, "add", "zhang", "--password-stdin", stdin="long enough\n")
    code, out = run(tmp_path, "add", "zhang", "--password-stdin", stdin="long enough\n")
    assert code == 1 and "ivr: user 'zhang' exists already" in out
    code, out = run(tmp_path, "add", "li", "--password-stdin", stdin="short\n")
    assert code == 1 and "ivr: a password needs at least 8 characters" in out
    code, out = run(tmp_path, "add", "li", "--role", "boss", "--password-stdin", stdin="long enough\n")
    assert code == 1 and "ivr: role 'boss' is not one of operator, supervisor, admin" in out
    code, out = run(tmp_path, "add", "bad name!", "--password-stdin", stdin="long enough\n")
    assert code == 1 and "use 2-64 letters, digits" in out


def test_disable_and_password_change_end_sessions(tmp_path: Path) -> None:
    run(tmp_path, "add", "zhang", "--password-stdin", stdin="long enough\n")
    users = UserStore(TicketStore(f"sqlite:///{tmp_path / 'ivr.db'}").engine)
    s = users.start_session(users.get("zhang"))
    assert run(tmp_path, "passwd", "zhang", "--password-stdin", stdin="another one\n")[0] == 0
    assert users.session(s.token) is None and users.authenticate("zhang", "another one")
    s = users.start_session(users.get("zhang"))
    assert run(tmp_path, "role", "zhang", "admin")[1].strip() == "zhang is now admin"
    assert users.session(s.token).user.role is Role.ADMIN  # type: ignore[union-attr]
    assert run(tmp_path, "disable", "zhang")[0] == 0
    assert users.session(s.token) is None and users.authenticate("zhang", "another one") is None
    assert run(tmp_path, "disable", "nobody")[1].strip() == "ivr: no user 'nobody'"


def test_ivr_console_serves_the_sign_in_page(tmp_path: Path) -> None:
    """`ivr console` as a real process on a free port: migrates the database and serves over HTTP."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = "from ivr.commands.console import app; app()"
    proc = subprocess.Popen([sys.executable, "-c", code, "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env={**os.environ, "IVR_DATA_DIR": str(tmp_path)}, text=True)
    try:
        body = ""
        for _ in range(600):  # start-up only; no timing is asserted
            if proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login") as r:
                    body = r.read().decode()
                    break
            except OSError:
                time.sleep(0.2)
        assert 'name="password"' in body, proc.stdout.read() if proc.poll() is not None else "no answer"  # type: ignore[union-attr]
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/tickets")
            raise AssertionError("the API answered without a session")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
    finally:
        proc.terminate()
        out = proc.communicate()[0]
    assert "no console users yet: add one with `ivr users add NAME --role admin`" in out
    assert (tmp_path / "ivr.db").exists()
