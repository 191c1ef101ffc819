"""`ivr prompts`: render the prompt catalogue to telephone audio."""
from __future__ import annotations

from datetime import datetime

import typer
from rich.progress import Progress

from ivr.commands import context
from ivr.flow.kbvoice import kb_cache_dir, render_kb
from ivr.kb import KbError, load_kb
from prompts import PromptError, load_catalogue
from prompts.catalogue import STYLES
from prompts.render import render_catalogue
from prompts.voices import Voice, choose_voice, voice_names

app = typer.Typer(help="Render and list the voice prompts.", no_args_is_help=True)


@app.command()
def build(
    voice: str = typer.Option("", help=f"{' | '.join(voice_names())} (or kokoro/SPEAKER); auto: the best "
                                        "installed voice a public hotline may use, else espeak-ng (default: the "
                                        "prompts_voice setting, auto)"),
    with_kb: bool = typer.Option(True, "--kb/--no-kb", help="also the knowledge base's answers (about an hour of "
                                 "speech: most of an hour with the neural voice on two cores the first time)"),
) -> None:
    """Render every prompt whose text or voice changed (standard, slow, loud, slow_loud and elderly style) to
    8 kHz WAV, and the knowledge base's: each entry speakable today, its answer, "您是想问…吗？" and title."""
    s = context.settings()
    made: list[Voice] = []
    try:
        catalogue = load_catalogue(s.prompts_catalogue)
        kb = load_kb(s.kb_dir) if with_kb and any(s.kb_dir.glob("*.yaml")) else None

        def make_voice() -> Voice:  # made once, when something needs the voice
            if not made:
                chosen, notices = choose_voice(voice or s.prompts_voice, s.data_dir / "voices")
                for notice in notices:
                    typer.echo(f"prompts: {notice}", err=True)
                made.append(chosen)
            return made[0]

        today = datetime.now(s.tz).date()  # the hotline's date: which entries may be spoken
        with Progress(transient=True) as progress:
            every = len(catalogue.prompts) + len(catalogue.sentences())
            kb_prompts = 3 * len(kb.speakable(today)) if kb is not None else 0
            task = progress.add_task("rendering prompts", total=(every + kb_prompts) * len(STYLES))
            stats = render_catalogue(catalogue, s.prompts_cache, s.prompts_recorded_dir,  # type: ignore[arg-type]
                                     engine_factory=make_voice, progress=lambda _key: progress.advance(task))
            kb_stats = render_kb(kb, today, kb_cache_dir(s.prompts_cache), s.prompts_recorded_dir,  # type: ignore[arg-type]
                                 make_voice, progress=lambda _key: progress.advance(task)) if kb is not None else None
    except (PromptError, KbError) as exc:
        raise context.fail(str(exc)) from None
    said = f", {stats.audio_seconds:.1f} s of speech in {stats.render_seconds:.1f} s" if stats.rendered else ""
    typer.echo(f"prompts: {stats.rendered} rendered, {stats.unchanged} unchanged, {stats.recorded} recorded "
               f"-> {s.prompts_cache} (voice {stats.voice or 'none needed'}{said})")
    if not with_kb:
        typer.echo("knowledge base: not rendered (--no-kb); its nodes send callers to a person for an answer not "
                   "rendered yet: run `ivr prompts build` to render them")
        return
    if kb is None or kb_stats is None:
        typer.echo(f"knowledge base: no files in {s.kb_dir}; nothing to render")
        return
    said = f", {kb_stats.audio_seconds:.1f} s of speech" if kb_stats.rendered else ""
    typer.echo(f"knowledge base: {len(kb.speakable(today))} of {len(kb)} entries speakable; their prompts "
               f"{kb_stats.rendered} rendered, {kb_stats.unchanged} unchanged, {kb_stats.recorded} recorded "
               f"-> {kb_cache_dir(s.prompts_cache)} (voice {kb_stats.voice or 'none needed'}{said})")  # type: ignore[arg-type]


@app.command("list")
def list_prompts() -> None:
    """Every prompt id with its text; counted sentences with the counts rendered whole."""
    catalogue = load_catalogue(context.settings().prompts_catalogue)
    for p in catalogue.prompts.values():
        typer.echo(f"{p.id}: {p.text}")
    for c in catalogue.counted.values():
        typer.echo(f"{c.id}: {c.text} (whole for {c.values[0]}-{c.values[-1]}, else "
                   f"{' + '.join(p for p in (c.before, 'n', c.after) if p)})")
