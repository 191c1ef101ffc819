"""`ivr serve`: answer SIP calls, run the call flow on each, and serve the operator console beside it.

The server itself is `ivr.hotline.server.serve_hotline`; `--demo` answers with a beep and logs the keys instead.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

import typer

from ivr.commands import context
from ivr.flow import FlowError
from ivr.hotline.server import serve_hotline
from ivr.hotline.sip_endpoint import demo_handler, run_server, server_config
from prompts import PromptError

__all__ = ["app", "serve"]

app = typer.Typer(help="Run the SIP/RTP endpoint that answers hotline calls.")


@app.callback(invoke_without_command=True)
def serve(
    host: str | None = typer.Option(None, help="SIP listen address (default: the sip_host setting)."),
    port: int | None = typer.Option(None, help="SIP UDP port (default: the sip_port setting)."),
    allow: list[str] = typer.Option([], "--allow", metavar="ADDR", help=(
        "Take SIP only from this address or network (CIDR), repeatable (default: the sip_allow setting, else "
        "everyone).")),
    trust: list[str] = typer.Option([], "--trust", metavar="ADDR", help=(
        "A trusted trunk or proxy (SBC, Kamailio), address or CIDR, repeatable: allowed, and no per-source INVITE "
        "limit, only the global one (default: the sip_trusted setting).")),
    advertise: str | None = typer.Option(None, help="Address to put in SDP/Contact (default: route to caller)."),
    ring_seconds: float = typer.Option(0.0, help="Ring this long (180) before answering."),
    max_calls_per_source: int | None = typer.Option(None, help=(
        "Calls at once from one untrusted address (default: sip_max_calls_per_source, 0 = no cap).")),
    drain: float | None = typer.Option(None, metavar="SECONDS", help=(
        "On Ctrl-C/SIGTERM calls may go on this long; then the rest are hung up and the server exits "
        "(default: the drain_s setting, 30).")),
    console: bool = typer.Option(True, "--console/--no-console", help="Run the operator console beside SIP."),
    secure_cookies: bool = typer.Option(False, "--secure-cookies", help="Mark the console's cookies Secure (behind "
                                        "HTTPS; default: the console_secure_cookies setting)."),
    demo: bool = typer.Option(False, "--demo", help="Answer with a beep and log keys instead of running the flow."),
) -> None:
    """Answer SIP calls over UDP, run the call flow on each and write tickets; Ctrl-C drains calls, SIGHUP
    reloads the operators from the configuration."""
    flags: dict[str, Any] = {
        "sip_host": host, "sip_port": port, "sip_allow": tuple(allow) or None, "sip_trusted": tuple(trust) or None,
        "sip_max_calls_per_source": max_calls_per_source, "drain_s": drain,
        "console_secure_cookies": secure_cookies or None}
    settings = replace(context.settings(), **{k: v for k, v in flags.items() if v is not None})
    if settings.log_level == "WARNING":
        logging.getLogger().setLevel(logging.INFO)  # a server says what it is doing
    cfg = server_config(settings, ring_seconds, advertise)
    try:
        if demo:
            asyncio.run(run_server(cfg, demo_handler, drain_seconds=settings.drain_s))
        else:
            asyncio.run(serve_hotline(settings, cfg, console=console, drain_seconds=settings.drain_s,
                                      reload=context.reload))
    except (FlowError, PromptError) as exc:
        raise context.fail(str(exc), 2) from None
    except OSError as exc:  # e.g. a full disk at start-up: one line, no traceback
        raise context.fail(str(exc)) from None
