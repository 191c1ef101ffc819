"""`ivr call --local`: talk to the hotline flow with this machine's microphone and speaker."""
from __future__ import annotations

import asyncio
import sys
import threading
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer

from asr.engine import ModelLoadError
from asr.errors import ModelError
from ivr.channel.base import CallInfo
from ivr.channel.local import BACKENDS, HANGUP_KEY, LocalChannel, SoundDeviceError, list_devices, open_backend
from ivr.commands import context
from ivr.flow import FlowError
from ivr.hotline.service import HotlineService, no_model_message
from prompts import PromptError

app = typer.Typer(help="Call the hotline from this machine (a desk softphone).")


def _device(value: Optional[str]) -> int | str | None:
    if value is None:
        return None
    return int(value) if value.isdigit() else value


@app.callback(invoke_without_command=True)
def call(
    local: bool = typer.Option(False, "--local", help="Use this machine's microphone and speaker."),
    list_only: bool = typer.Option(False, "--list-devices", help="List the sound devices and exit."),
    input_device: Optional[str] = typer.Option(None, "--input", help="Microphone: device number or name."),
    output_device: Optional[str] = typer.Option(None, "--output", help="Speaker: device number or name."),
    backend: str = typer.Option("sounddevice", "--backend", help="sounddevice, or pyaudio (the fallback)."),
    number: str = typer.Option("local", "--from", help="The caller number the flow sees (try an elderly number)."),
    flow: Optional[Path] = typer.Option(None, "--flow", help="Flow file (default: the configured one)."),
    model: Optional[str] = typer.Option(None, "--model", help="Vosk model directory or name."),
) -> None:
    """Keys: type 0-9 * # and press Enter; type q and Enter to hang up."""
    if backend not in BACKENDS:
        raise context.fail(f"--backend {backend!r}: use one of {', '.join(BACKENDS)}", 2)
    if list_only:
        try:
            devices = list_devices(backend)
        except (ImportError, OSError) as exc:
            raise context.fail(f"no audio library ({exc})") from None
        if not devices:
            typer.echo("no sound devices")
        for d in devices:
            typer.echo(f"{d.index}: {d.name} ({d.inputs} in, {d.outputs} out, {d.default_rate:.0f} Hz)")
        return
    if not local:
        raise context.fail("only --local calls are supported here; SIP calls come in through `ivr serve`", 2)
    settings = context.settings()
    overrides = {k: v for k, v in {"flow": flow, "vosk_model": model}.items() if v is not None}
    if overrides:
        settings = replace(settings, **overrides)  # type: ignore[arg-type]
    try:
        audio = open_backend(backend, _device(input_device), _device(output_device))
    except SoundDeviceError as exc:
        raise context.fail(str(exc)) from None
    try:
        service = HotlineService.from_settings(settings)
    except (FlowError, PromptError, ModelLoadError, ModelError) as exc:
        audio.close()
        raise context.fail(str(exc), 2) from None
    if service.engine is None:
        typer.secho("note: " + no_model_message(), fg="yellow", err=True)
    channel = LocalChannel(audio, CallInfo(call_id=f"local-{uuid.uuid4().hex[:12]}", caller=number))
    typer.echo(f"connected ({audio.name}, {audio.rate} Hz): speak, or type keys and Enter; {HANGUP_KEY} hangs up",
               err=True)

    def read_keys() -> None:
        for line in sys.stdin:
            channel.press(line.strip())

    threading.Thread(target=read_keys, name="keys", daemon=True).start()
    try:
        record = asyncio.run(service.handle_call(channel))
    finally:
        channel.close()
    typer.echo(f"call {record.call_id}: {record.outcome}; path: {' > '.join(record.path)}")
    typer.echo(f"played {channel.played_ms / 1000:.1f} s of prompts, heard {channel.heard_ms / 1000:.1f} s "
               f"of microphone audio")
