"""The local softphone: a clear message without a sound device, and real calls on a PulseAudio null sink."""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from asr.audio import FRAME_BYTES, SILENCE_FRAME
from ivr.channel.base import CallerHungUp
from ivr.channel.local import LocalChannel, _Resampler
from prompts.library import beep

REPO = Path(__file__).resolve().parents[3]
# `ivr` with the call command added if the lead has not wired it into ivr/cli.py yet
IVR = [sys.executable, "-c", (
    "from ivr.cli import app, main\n"
    "from ivr.commands.call import app as call_app\n"
    "if not any(g.name == 'call' for g in app.registered_groups): app.add_typer(call_app, name='call')\n"
    "main()")]


class LoopBackend:
    """A backend that returns what was played (for the channel's own logic)."""

    name, rate = "loop", 8000

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def exchange(self, out: bytes) -> bytes:
        self.written.append(out)
        return out

    def close(self) -> None:
        pass


def test_keys_and_hangup_and_frames() -> None:
    backend = LoopBackend()
    ch = LocalChannel(backend)
    tone = beep(20, 500)

    async def go():
        ch.press("1x*#a")
        first = await ch.exchange(tone)
        second = await ch.exchange(None)
        ch.press("q")
        with pytest.raises(CallerHungUp):
            await ch.exchange(None)
        return first, second

    first, second = asyncio.run(go())
    assert first.digits == ("1", "*", "#", "A") and first.audio == tone and first.t_ms == 0
    assert second.digits == () and second.audio == SILENCE_FRAME and second.t_ms == 20
    assert (ch.played_ms, ch.heard_ms) == (20, 40)


def test_resampler_keeps_whole_frames() -> None:
    rs = _Resampler(48000)
    frames = [rs.from_device(rs.to_device(beep(20, 400))) for _ in range(50)]
    assert all(len(f) == FRAME_BYTES for f in frames)
    assert len(rs.to_device(SILENCE_FRAME)) == 960 * 2


def _env(tmp_path: Path, prompt_cache: Path, runtime: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "PULSE"))}
    env.update(HOME=str(runtime / "home"), XDG_RUNTIME_DIR=str(runtime / "run"),
               IVR_DATA_DIR=str(tmp_path / "data"), IVR_PROMPTS_CACHE=str(prompt_cache))
    return env


def test_no_sound_device_is_one_clear_message(tmp_path: Path, prompt_cache: Path) -> None:
    env = _env(tmp_path, prompt_cache, tmp_path)
    env["PULSE_SERVER"] = f"unix:{tmp_path}/no-such-socket"
    out = subprocess.run(IVR + ["call", "--local"], env=env, capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == (
        "ivr: no sound device: sounddevice finds no microphone and speaker; plug in a headset, or on a server "
        "start a PulseAudio null sink (see STACK-NOTES), or use `ivr simulate` with WAV files")


@pytest.fixture
def null_sink(tmp_path: Path) -> Iterator[Path]:
    """A PulseAudio daemon of our own with a null sink and a null source."""
    if shutil.which("pulseaudio") is None:
        pytest.skip("pulseaudio is not installed (apt-get install --no-install-recommends pulseaudio "
                    "libasound2-plugins)")
    runtime = tmp_path / "pa"
    (runtime / "home").mkdir(parents=True)
    (runtime / "run").mkdir(mode=0o700)
    env = dict(os.environ, HOME=str(runtime / "home"), XDG_RUNTIME_DIR=str(runtime / "run"))
    proc = subprocess.Popen(
        ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "-L", "module-native-protocol-unix",
         "-L", "module-null-sink sink_name=nullsink", "-L", "module-null-source source_name=nullsrc"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    socket = runtime / "run" / "pulse" / "native"
    for _ in range(200):
        if socket.exists() or proc.poll() is not None:
            break
        time.sleep(0.05)
    if not socket.exists():
        proc.kill()
        pytest.skip("pulseaudio did not start here")
    yield runtime
    proc.terminate()
    proc.wait()


@pytest.mark.parametrize("backend", ["sounddevice", "pyaudio"])
def test_call_on_a_null_sink(backend: str, null_sink: Path, tmp_path: Path, prompt_cache: Path) -> None:
    env = _env(tmp_path, prompt_cache, null_sink)
    listed = subprocess.run(IVR + ["call", "--list-devices", "--backend", backend], env=env, capture_output=True,
                            text=True, cwd=REPO)
    assert listed.returncode == 0 and "pulse" in listed.stdout, listed.stdout + listed.stderr
    # the elderly key straight away: welcome and menu are cut, the transfer prompt plays through the sound card
    out = subprocess.run(IVR + ["call", "--local", "--backend", backend], env=env, input="0\n",
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert f"connected ({backend}, 8000 Hz)" in out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].endswith("transferred:elderly; path: welcome > main_menu=elderly > elderly_agent")
    played = float(lines[1].split()[1])
    assert played > 1.0  # the elderly "connecting you" prompt went out, frame by frame


def test_device_choice_on_a_null_sink(null_sink: Path, tmp_path: Path, prompt_cache: Path) -> None:
    env = _env(tmp_path, prompt_cache, null_sink)
    listed = subprocess.run(IVR + ["call", "--list-devices"], env=env, capture_output=True, text=True, cwd=REPO)
    index = next(line.split(":")[0] for line in listed.stdout.splitlines() if ": pulse" in line)
    out = subprocess.run(IVR + ["call", "--local", "--input", "pulse", "--output", index], env=env, input="q\n",
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert "caller_hung_up; path: welcome" in out.stdout
    bad = subprocess.run(IVR + ["call", "--local", "--output", "no-such-speaker"], env=env, capture_output=True,
                         text=True, cwd=REPO)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1] == (
        "ivr: cannot open the sound device (No output device matching 'no-such-speaker'); plug in a headset, or on "
        "a server start a PulseAudio null sink (see STACK-NOTES), or use `ivr simulate` with WAV files")
