"""`ivr dtmf detect FILE.wav`: print the in-band DTMF keys found in a recording, with their times."""
from __future__ import annotations

from pathlib import Path

import typer

from asr.audio import read_wav
from asr.errors import AudioFormatError
from ivr.commands import context
from ivr.dtmf.inband import detect_digits

app = typer.Typer(help="DTMF tools: find the keys pressed in a recording.")


@app.callback()
def _group() -> None:
    """DTMF tools."""


@app.command("detect")
def detect(wav: Path = typer.Argument(..., help="a WAV recording (any rate; mixed to 8 kHz mono)")) -> None:
    """Print each key found in WAV as `<seconds>\t<key>`, then a summary line with all keys."""
    try:
        pcm = read_wav(wav)
    except AudioFormatError as exc:
        raise context.fail(str(exc), 2) from None
    found = detect_digits(pcm)
    for d in found:
        typer.echo(f"{d.t_ms / 1000:.2f}\t{d.digit}")
    keys = "".join(d.digit for d in found)
    typer.echo(f"{len(found)} key(s): {keys}" if found else "no keys found")
