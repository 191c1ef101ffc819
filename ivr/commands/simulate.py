"""`ivr simulate`: one call through the flow with a file-driven caller, printing the ticket."""
from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Optional

import typer

from asr.audio import write_wav
from asr.engine import ModelLoadError
from asr.errors import AudioFormatError, ModelError
from ivr.channel.base import CallInfo
from ivr.channel.file import FileChannel, ScriptError, parse_script
from ivr.commands import context
from ivr.commands.tickets import print_ticket
from ivr.flow import FlowError
from ivr.hotline.service import HotlineService, no_model_message
from ivr.hotline.transcription import second_pass_engine
from prompts import PromptError


def simulate(
    caller: list[Path] = typer.Option(
        [], "--caller", help="WAV of what the caller says (after the keys); repeat for several turns.", metavar="WAV"
    ),
    keys: str = typer.Option("", "--keys", help="Keys the caller presses first, e.g. 1 for a complaint."),
    script: Optional[str] = typer.Option(
        None, "--script",
        help="Full caller script instead of --keys/--caller: 'keys:1; say:a.wav; wait:2000; hangup' "
             "(prefix a step with ! to barge in).",
    ),
    number: str = typer.Option("13800138000", "--from", help="The caller's number."),
    flow: Optional[Path] = typer.Option(None, "--flow", help="Flow file (default: the configured one)."),
    model: Optional[str] = typer.Option(None, "--model", help="Model directory or name (default: the configured "
                                        "Vosk model; with --engine whisper, whisper-base)."),
    engine_name: str = typer.Option("vosk", "--engine", help="vosk, or whisper: faster-whisper decodes each "
                                    "answer whole (slow, but the simulated call's time is virtual)."),
    save_audio: Optional[Path] = typer.Option(None, "--save-audio", help="Write what the system played to this WAV."),
) -> None:
    from dataclasses import replace

    settings = context.settings()
    if engine_name not in ("vosk", "whisper"):
        raise context.fail(f"--engine: {engine_name!r} is not vosk or whisper", 2)
    whisper = engine_name == "whisper"
    settings = replace(settings, flow=flow or settings.flow,
                       vosk_model=settings.vosk_model if whisper else (model or settings.vosk_model))
    try:
        if script is not None:
            steps = parse_script(script)
        else:
            text = "; ".join(([f"keys:{keys}"] if keys else []) + [f"say:{p}" for p in caller])
            steps = parse_script(text)
        if not steps:
            raise context.fail("give the caller something to do: --keys, --caller or --script", 2)
        service = HotlineService.from_settings(settings, load_engine=not whisper)
        if whisper:
            service.use_engine(second_pass_engine(replace(settings, transcribe_engine="whisper",
                                                          transcribe_model=model or ""), model))
    except (ScriptError, AudioFormatError, FlowError, PromptError, ModelLoadError, ModelError) as exc:
        raise context.fail(str(exc), 2) from None
    if service.engine is None:
        typer.secho("note: " + no_model_message(), fg="yellow", err=True)
    channel = FileChannel(steps, CallInfo(call_id=f"sim-{uuid.uuid4().hex[:12]}", caller=number))
    record = asyncio.run(service.handle_call(channel))
    if save_audio:
        write_wav(save_audio, bytes(channel.played))
    typer.echo(f"call {record.call_id}: {record.outcome}; path: {' > '.join(record.path)}")
    for entry in record.heard:
        typer.echo(f"  heard at {entry['node']}: {entry}")
    if not record.tickets:
        typer.echo("no ticket: the caller left no message on this path")
    for number_ in record.tickets:
        print_ticket(service.store.get(number_))
