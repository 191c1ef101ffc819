"""`ivr prompts`: render the prompt catalogue to telephone audio."""
from __future__ import annotations

import typer
from rich.progress import Progress

from ivr.commands import context
from prompts import PromptError, load_catalogue
from prompts.catalogue import STYLES
from prompts.render import render_catalogue

app = typer.Typer(help="Render and list the voice prompts.", no_args_is_help=True)


@app.command()
def build() -> None:
    """Render every prompt whose text changed (standard and elderly style) to 8 kHz WAV."""
    s = context.settings()
    try:
        catalogue = load_catalogue(s.prompts_catalogue)
        with Progress(transient=True) as progress:
            task = progress.add_task("rendering prompts", total=len(catalogue.prompts) * len(STYLES))
            stats = render_catalogue(catalogue, s.prompts_cache, s.prompts_recorded_dir,  # type: ignore[arg-type]
                                     progress=lambda _key: progress.advance(task))
    except PromptError as exc:
        raise context.fail(str(exc)) from None
    typer.echo(f"prompts: {stats.rendered} rendered, {stats.unchanged} unchanged, {stats.recorded} recorded "
               f"-> {s.prompts_cache}")


@app.command("list")
def list_prompts() -> None:
    """Every prompt id with its text."""
    catalogue = load_catalogue(context.settings().prompts_catalogue)
    for p in catalogue.prompts.values():
        typer.echo(f"{p.id}: {p.text}")
