"""`ivr prompts`: render the prompt catalogue to telephone audio."""
from __future__ import annotations

import typer
from rich.progress import Progress

from ivr.commands import context
from prompts import PromptError, load_catalogue
from prompts.catalogue import STYLES
from prompts.render import render_catalogue
from prompts.voices import Voice, choose_voice, voice_names

app = typer.Typer(help="Render and list the voice prompts.", no_args_is_help=True)


@app.command()
def build(
    voice: str = typer.Option("auto", help=f"{' | '.join(voice_names())} (or kokoro/SPEAKER); auto: the best "
                                            "installed voice a public hotline may use, else espeak-ng"),
) -> None:
    """Render every prompt whose text or voice changed (standard, slow, loud, slow_loud and elderly style) to
    8 kHz WAV."""
    s = context.settings()
    try:
        catalogue = load_catalogue(s.prompts_catalogue)

        def make_voice() -> Voice:
            made, notices = choose_voice(voice, s.data_dir / "voices")
            for notice in notices:
                typer.echo(f"prompts: {notice}", err=True)
            return made

        with Progress(transient=True) as progress:
            every = len(catalogue.prompts) + len(catalogue.sentences())
            task = progress.add_task("rendering prompts", total=every * len(STYLES))
            stats = render_catalogue(catalogue, s.prompts_cache, s.prompts_recorded_dir,  # type: ignore[arg-type]
                                     engine_factory=make_voice, progress=lambda _key: progress.advance(task))
    except PromptError as exc:
        raise context.fail(str(exc)) from None
    said = f", {stats.audio_seconds:.1f} s of speech in {stats.render_seconds:.1f} s" if stats.rendered else ""
    typer.echo(f"prompts: {stats.rendered} rendered, {stats.unchanged} unchanged, {stats.recorded} recorded "
               f"-> {s.prompts_cache} (voice {stats.voice or 'none needed'}{said})")


@app.command("list")
def list_prompts() -> None:
    """Every prompt id with its text; counted sentences with the counts rendered whole."""
    catalogue = load_catalogue(context.settings().prompts_catalogue)
    for p in catalogue.prompts.values():
        typer.echo(f"{p.id}: {p.text}")
    for c in catalogue.counted.values():
        typer.echo(f"{c.id}: {c.text} (whole for {c.values[0]}-{c.values[-1]}, else "
                   f"{' + '.join(p for p in (c.before, 'n', c.after) if p)})")
