"""The walking skeleton end to end: `ivr simulate` -> flow -> VAD -> Vosk -> ticket in the store."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import wave
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from asr.audio import read_wav
from ivr.cli import app
from ivr.tickets import TicketStore

REPO = Path(__file__).resolve().parents[2]
C01 = REPO / "audio_fixtures" / "zh" / "c01.wav"


@pytest.fixture
def env(tmp_path: Path, prompt_cache: Path) -> dict[str, str]:
    return {"IVR_DATA_DIR": str(tmp_path / "data"), "IVR_PROMPTS_CACHE": str(prompt_cache)}


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


def store(env: dict[str, str]) -> TicketStore:
    return TicketStore(f"sqlite:///{env['IVR_DATA_DIR']}/ivr.db")


def test_complaint_call_with_real_vosk_model(env: dict[str, str], ko_model_dir: Path) -> None:
    code, out = run(env, "simulate", "--keys", "1", "--caller", str(C01), "--model", str(ko_model_dir))
    assert code == 0, out
    assert "main_menu=complaint" in out
    [ticket] = store(env).list()
    assert ticket.kind == "complaint" and ticket.transcription.value == "done"
    assert ticket.menu_path[:3] == ("welcome", "main_menu=complaint", "complaint")
    assert ticket.caller == "13800138000"
    t = ticket.transcript
    assert t is not None and t.words and t.engine == "vosk"
    assert all(0 <= w.start < w.end <= t.audio_ms / 1000 + 0.1 and 0 <= w.conf <= 1 for w in t.words)
    # the words lie inside the caller's speech: c01 lasts 4.26 s
    assert 4.0 < t.words[-1].end - t.words[0].start < 4.6
    wav = Path(env["IVR_DATA_DIR"]) / "recordings" / ticket.recording
    assert hashlib.sha256(wav.read_bytes()).hexdigest() == ticket.recording_sha256
    with wave.open(str(wav)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert w.getnframes() * 1000 // 8000 == ticket.audio_ms
    assert ticket.number in out and "transcript" in out
    assert ticket.suggestion is not None and len(ticket.suggestion["categories"]) == 3  # dispatch ran on arrival


def test_without_a_model_the_ticket_waits_for_transcription(env: dict[str, str]) -> None:
    code, out = run(env, "simulate", "--keys", "1", "--caller", str(C01))
    assert code == 0, out
    assert "ivr models download vosk-model-small-cn-0.22" in out
    assert out.count("no Vosk model is installed") == 1
    [ticket] = store(env).list()
    assert ticket.transcription.value == "pending" and ticket.transcript is None
    audio = read_wav(Path(env["IVR_DATA_DIR"]) / "recordings" / ticket.recording)
    assert len(audio) >= len(read_wav(C01))  # the whole complaint was kept
    code, out = run(env, "tickets", "list", "--pending")
    assert ticket.number in out and "138****8000" in out
    code, out = run(env, "tickets", "show", ticket.number, "--json")
    assert json.loads(out)["transcription"] == "pending"
    code, out = run(env, "tickets", "show", ticket.number)  # on the hotline's clock, as the list and console are
    assert f"created    {ticket.created_at.astimezone(ZoneInfo('Asia/Shanghai')):%Y-%m-%d %H:%M:%S} CST\n" in out, out


@pytest.mark.parametrize("content", [b"", b"RIFF\x00\x00\x00\x00WAVEjunk", b"not a wav at all" * 10])
def test_corrupt_or_empty_wav_writes_nothing(env: dict[str, str], tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(content)
    code, out = run(env, "simulate", "--keys", "1", "--caller", str(bad))
    assert code == 2
    assert f"{bad}: not a readable WAV file" in out or f"{bad}: the file holds no audio" in out
    assert not (Path(env["IVR_DATA_DIR"]) / "ivr.db").exists()
    assert not (Path(env["IVR_DATA_DIR"]) / "recordings").exists()


def test_header_only_wav_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    with wave.open(str(empty), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
    code, out = run(env, "simulate", "--caller", str(empty))
    assert code == 2 and f"{empty}: the file holds no audio" in out


def test_missing_caller_file_and_bad_script(env: dict[str, str]) -> None:
    code, out = run(env, "simulate", "--caller", "/nonexistent.wav")
    assert code == 2 and "/nonexistent.wav: no such file" in out
    code, out = run(env, "simulate", "--script", "press:1")
    assert code == 2 and "unknown kind 'press'" in out


def test_caller_hanging_up_after_speaking_keeps_the_complaint(env: dict[str, str], ko_model_dir: Path) -> None:
    code, out = run(env, "simulate", "--script", f"keys:1; say:{C01}; hangup", "--model", str(ko_model_dir))
    assert code == 0, out
    assert "caller_hung_up" in out
    [ticket] = store(env).list()
    assert ticket.transcription.value == "done" and ticket.transcript and ticket.transcript.words
    assert ticket.audio_ms >= 4000


def test_recording_and_ticket_survive_a_crash(tmp_path: Path, prompt_cache: Path) -> None:
    """The process dies (os._exit) in the middle of a complaint: the ticket and the audio so far are on disk."""
    data = tmp_path / "data"
    script = textwrap.dedent(f"""
        import asyncio, os
        from ivr.channel.file import FileChannel, parse_script
        from ivr.config import load_settings
        from ivr.hotline.service import HotlineService
        s = load_settings(overrides={{"data_dir": {str(data)!r}, "prompts_cache": {str(prompt_cache)!r}}}, environ={{}})
        svc = HotlineService.from_settings(s, load_engine=False)
        class Dying(FileChannel):
            async def exchange(self, out):
                inbound = await super().exchange(out)
                if svc.store.list() and self.frames_after_open() > 150:  # 3 s into the complaint
                    os._exit(9)
                return inbound
            n = 0
            def frames_after_open(self):
                self.n += 1
                return self.n
        ch = Dying(parse_script("keys:1; say:{C01}"))
        asyncio.run(svc.handle_call(ch))
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 9, proc.stderr
    [ticket] = TicketStore(f"sqlite:///{data}/ivr.db").list()
    assert ticket.transcription.value == "recording"  # the call died while the caller spoke
    from ivr.media.recording import repair

    wav = data / "recordings" / ticket.recording
    assert repair(wav) >= 2 * 8000  # at least 2 s of the caller survived
    assert len(read_wav(wav)) >= 2 * 16000


def test_a_configured_model_that_is_missing_is_an_error(env: dict[str, str], tmp_path: Path) -> None:
    code, out = run(env, "simulate", "--keys", "1", "--caller", str(C01), "--model", str(tmp_path / "nomodel"))
    assert code == 2
    assert f"Vosk model '{tmp_path / 'nomodel'}' (from the configured vosk_model) not found" in out
    assert not (Path(env["IVR_DATA_DIR"]) / "ivr.db").exists()


def test_in_band_keys_are_heard_when_the_channel_has_no_out_of_band_digits(settings, tmp_path: Path) -> None:
    """A caller whose phone sends keys only as tones: the flow still takes key 1."""
    import asyncio

    import numpy as np

    from asr.audio import write_wav
    from ivr.channel.file import FileChannel, parse_script
    from ivr.hotline.service import HotlineService

    t = np.arange(int(0.12 * 8000)) / 8000
    tone = (6000 * (np.sin(2 * np.pi * 697 * t) + np.sin(2 * np.pi * 1209 * t))).astype("<i2")  # key 1
    key = tmp_path / "key1.wav"
    write_wav(key, np.concatenate([tone, np.zeros(1600, "<i2")]).tobytes())
    svc = HotlineService.from_settings(settings, load_engine=False)
    channel = FileChannel(parse_script(f"say:{key}; say:{C01}"), inband_dtmf=True)
    record = asyncio.run(svc.handle_call(channel))
    assert record.path[1] == "main_menu=complaint"
    assert [t.kind for t in svc.store.list()] == ["complaint"]


def test_an_edited_flow_serves_new_calls_while_a_bad_edit_keeps_the_last_good_one(settings, tmp_path: Path) -> None:
    import asyncio
    import dataclasses
    import hashlib
    import shutil

    from ivr.channel.file import FileChannel, parse_script
    from ivr.hotline.service import HotlineService

    flow = tmp_path / "hotline.yaml"
    shutil.copy(settings.flow, flow)
    svc = HotlineService.from_settings(dataclasses.replace(settings, flow=flow), load_engine=False)
    first = asyncio.run(svc.handle_call(FileChannel(parse_script("keys:0"))))
    assert first.path == ["welcome", "main_menu=elderly", "elderly_agent"]

    edited = flow.read_text(encoding="utf-8").replace('elderly: {key: "0"', 'elderly: {key: "9"')
    flow.write_text(edited + "# edited\n", encoding="utf-8")
    second = asyncio.run(svc.handle_call(FileChannel(parse_script("keys:9"))))
    assert second.path == ["welcome", "main_menu=elderly", "elderly_agent"]
    assert second.flow_digest == hashlib.sha256(flow.read_bytes()).hexdigest() != first.flow_digest

    flow.write_text("nodes: {}\n", encoding="utf-8")  # a broken edit: rejected, the last good version serves
    third = asyncio.run(svc.handle_call(FileChannel(parse_script("keys:0"))))
    assert third.flow_digest == second.flow_digest and svc.flows.last_error


def test_the_live_page_follows_the_call_through_the_flow(settings) -> None:
    import asyncio

    from ivr.channel.file import FileChannel, parse_script
    from ivr.hotline.service import HotlineService

    svc = HotlineService.from_settings(settings, load_engine=False)
    states: list[tuple[str, bool]] = []

    class Watched(FileChannel):
        async def exchange(self, out):  # type: ignore[no-untyped-def]
            for call in svc.live.snapshot().calls:
                if not states or states[-1] != (call.state, call.elderly):
                    states.append((call.state, call.elderly))
            return await super().exchange(out)

    asyncio.run(svc.handle_call(Watched(parse_script("keys:0"))))
    assert states == [("welcome", False), ("main_menu", False), ("elderly_agent", True)]
    assert svc.live.snapshot().calls == ()


def test_menus_by_voice_and_the_ticket_with_the_real_whisper_model(env: dict[str, str], whisper_base_dir: Path) -> None:
    """Mandarin end to end with Whisper base: 投诉 said at the main menu leads to the complaint, whose recording is
    transcribed by Whisper and dispatched on that text."""
    m01 = REPO / "audio_fixtures" / "zh" / "m01.wav"
    code, out = run(env, "simulate", "--engine", "whisper", "--model", str(whisper_base_dir),
                    "--script", f"say:{m01}; wait:1500; say:{C01}")
    assert code == 0, out
    assert "main_menu=complaint" in out and "'text': '投诉'" in out
    [ticket] = store(env).list()
    assert ticket.menu_path[:3] == ("welcome", "main_menu=complaint", "complaint")
    t = ticket.transcript
    assert t is not None and (t.engine, t.model) == ("whisper", "whisper-base")
    assert "垃圾" in t.text and "清理" in t.text, t.text
    assert ticket.category == "环境卫生" and ticket.suggestion is not None
    code, out = run(env, "simulate", "--engine", "paraformer", "--keys", "1")
    assert code == 2 and "--engine: 'paraformer' is not vosk or whisper" in out
