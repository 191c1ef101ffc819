"""`ivr cluster`: the nodes sharing the centre's queue (`queue_database_url`): their state, heartbeats and load."""
from __future__ import annotations

import time
from typing import Any

import typer
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from ivr.commands import context
from ivr.commands.listing import console, print_json
from ivr.queue.centre import Centre
from ivr.storage import problem

app = typer.Typer(help="The nodes of a centre sharing one queue.", no_args_is_help=True)


def centre_view() -> dict[str, Any]:
    """The centre's queue, operators and nodes now, from its database; one error line when there is none."""
    settings = context.settings()
    if not settings.queue_database_url:
        raise context.fail("no centre: set queue_database_url (the PostgreSQL the nodes share) to see one")
    try:
        return Centre.open(settings.queue_database_url, settings.node_id).view(time.time())
    except SQLAlchemyError as exc:
        raise context.fail(f"the queue database cannot be reached: {problem(exc)}") from None


@app.command("status")
def status(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the nodes: up, lost (stopped beating) or stopped; the age of their last heartbeat; their calls and
    callers waiting; callers lost with them."""
    view = centre_view()
    if as_json:
        print_json(view["nodes"])
        return
    t = Table("node", "state", "heartbeat", "calls", "waiting", "lost callers", "console", title="nodes")
    for n in view["nodes"]:
        t.add_row(n["node"], n["state"], f"{n['heartbeat_age_s']:.1f} s ago", str(n["calls"]), str(n["queued"]),
                  str(n["lost_callers"]), n["console"] or "-")
    console().print(t)
    up = sum(n["state"] == "up" for n in view["nodes"])
    waiting = sum(q["status"] == "waiting" for q in view["queue"])
    console().print(f"{up} of {len(view['nodes'])} node(s) up; {waiting} waiting in the centre's queue")
