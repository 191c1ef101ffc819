"""`ivr users`: the operators, supervisors and admins who sign in to the console."""
from __future__ import annotations

import sys

import typer

from ivr.commands import context
from ivr.commands.listing import print_json
from ivr.console.users import Role, UserError, UserStore
from ivr.tickets.store import TicketStore

app = typer.Typer(help="Add and manage console users (operator, supervisor, admin).", no_args_is_help=True)


def _users() -> UserStore:
    return UserStore(TicketStore(context.settings().database_url).engine)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))


@app.command("add")
def add(
    username: str = typer.Argument(..., help="Sign-in name (letters, digits, . _ -)."),
    role: str = typer.Option("operator", "--role", "-r", help="operator, supervisor or admin."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input."),
) -> None:
    """Add a user; the password is asked for (or read from stdin) and stored as a scrypt hash."""
    try:
        user = _users().add(username, _password(password_stdin), role)
    except UserError as exc:
        raise context.fail(str(exc)) from None
    typer.echo(f"added {user.username} ({user.role.value})")


@app.command("list")
def list_users(as_json: bool = typer.Option(False, "--json", help="Print JSON: one object per user.")) -> None:
    """Every user with role and state."""
    users = _users().list()
    if as_json:
        print_json([{"username": u.username, "role": u.role.value, "active": u.active, "created_at": u.created_at}
                    for u in users])
        return
    if not users:
        typer.echo("no users yet: ivr users add NAME --role admin")
    for u in users:
        typer.echo(f"{u.username:20} {u.role.value:10} {'active' if u.active else 'disabled'}")


@app.command("passwd")
def passwd(username: str, password_stdin: bool = typer.Option(False, "--password-stdin")) -> None:
    """Set a new password (ends the user's sessions)."""
    try:
        _users().set_password(username, _password(password_stdin))
    except UserError as exc:
        raise context.fail(str(exc)) from None
    typer.echo(f"password of {username} changed")


@app.command("role")
def set_role(username: str, role: str = typer.Argument(..., help="operator, supervisor or admin.")) -> None:
    """Change a user's role."""
    try:
        _users().set_role(username, role)
    except UserError as exc:
        raise context.fail(str(exc)) from None
    typer.echo(f"{username} is now {Role(role).value}")


@app.command("disable")
def disable(username: str) -> None:
    """Stop a user signing in (ends their sessions)."""
    try:
        _users().set_active(username, False)
    except UserError as exc:
        raise context.fail(str(exc)) from None
    typer.echo(f"{username} disabled")
