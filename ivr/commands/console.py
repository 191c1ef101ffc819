"""`ivr console`: serve the operator console alone (``ivr serve`` also starts it beside the SIP endpoint)."""
from __future__ import annotations

import typer

from ivr.commands import context

app = typer.Typer(help="The operator web console.", invoke_without_command=True)


@app.callback()
def console(
    host: str = typer.Option(None, "--host", help="Address to listen on (default: console_host, 127.0.0.1)."),
    port: int = typer.Option(None, "--port", "-p", help="Port (default: console_port, 8080)."),
    secure_cookies: bool = typer.Option(False, "--secure-cookies",
                                        help="Mark cookies Secure (behind HTTPS; default: console_secure_cookies)."),
) -> None:
    """Serve the console: sign in, tickets, the live view, the knowledge base and the JSON API (/api, OpenAPI at
    /api/openapi.json). An entry a supervisor edits has its prompts rendered again here, into the prompts cache."""
    from dataclasses import replace

    import uvicorn

    from ivr.console import create_app
    from ivr.console.users import UserStore
    from ivr.hotline.kb import entry_rerenderer

    settings = context.settings()
    if secure_cookies:
        settings = replace(settings, console_secure_cookies=True)
    app_ = create_app(settings, rerender=entry_rerenderer(settings))
    if not UserStore(app_.state.console.store.engine).list():
        typer.secho("no console users yet: add one with `ivr users add NAME --role admin`", fg="yellow", err=True)
    host = host or settings.console_host
    port = port or settings.console_port
    typer.echo(f"console on http://{host}:{port}/")
    uvicorn.run(app_, host=host, port=port, log_level=settings.log_level.lower())
