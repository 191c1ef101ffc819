"""The node's transcription worker: the second-pass engine from the settings, and jobs taken only while live
recognition has room to spare."""
from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from asr.audio import read_wav, write_wav
from asr.errors import ModelNotFoundError
from ivr.config import ConfigError, load_settings
from ivr.hotline.transcription import run_worker_thread, second_pass_engine, second_pass_model
from ivr.tickets.jobs import JobState
from ivr.tickets.store import TicketStore

C01 = Path(__file__).resolve().parents[3] / "audio_fixtures" / "zh" / "c01.wav"


def test_whisper_base_is_joined_into_the_models_folder_when_configured(tmp_path: Path,
                                                                       whisper_base_dir: Path) -> None:
    settings = load_settings(overrides={"data_dir": tmp_path, "transcribe_engine": "whisper"}, environ={})
    assert second_pass_model(settings) == tmp_path / "models" / "whisper-base"
    assert (tmp_path / "models" / "whisper-base" / "model.bin").stat().st_size == 145_217_607
    named = load_settings(overrides={"data_dir": tmp_path, "transcribe_engine": "whisper",
                                     "transcribe_model": str(whisper_base_dir)}, environ={})
    engine = second_pass_engine(named)
    assert (engine.name, engine.model_name) == ("whisper", "whisper-base")
    missing = load_settings(overrides={"data_dir": tmp_path, "transcribe_engine": "whisper",
                                       "transcribe_model": "whisper-small"}, environ={})
    with pytest.raises(ModelNotFoundError, match=r"^transcribe_model: Whisper model 'whisper-small' not found"):
        second_pass_model(missing)


def test_a_bad_engine_setting_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^transcribe_engine: 'paraformer' is not one of vosk, whisper$"):
        load_settings(overrides={"data_dir": tmp_path}, environ={"IVR_TRANSCRIBE_ENGINE": "paraformer"})
    with pytest.raises(ConfigError, match=r"^transcribe_lease_s: 0.0 is not above 0$"):
        load_settings(overrides={"data_dir": tmp_path, "transcribe_lease_s": 0.0}, environ={})


def test_the_worker_waits_while_live_recognition_is_busy(tmp_path: Path, whisper_engine) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(overrides={"data_dir": tmp_path}, environ={})
    store = TicketStore(settings.database_url)
    t = store.create(caller="1", call_id="c", kind="complaint", menu_path=[], flags=[], recording="d/c01.wav")
    wav = Path(settings.recordings_dir) / "d" / "c01.wav"  # type: ignore[arg-type]
    wav.parent.mkdir(parents=True)
    write_wav(wav, read_wav(C01))
    store.complete_recording(t.number, audio_ms=4260, transcript=None,
                             sha256=hashlib.sha256(wav.read_bytes()).hexdigest())
    seen: list[str] = []

    def spare() -> bool:  # busy for three looks, then room to spare
        info = store.job(t.number)
        assert info is not None
        seen.append(info.state.value)
        return len(seen) > 3

    async def run() -> int:
        stop = asyncio.Event()
        task = asyncio.create_task(run_worker_thread(store, whisper_engine, settings, stop, spare, idle_s=0.05))
        while (info := store.job(t.number)) is None or info.state != JobState.DONE:
            await asyncio.sleep(0.05)
        stop.set()
        return await task

    assert asyncio.run(run()) == 1
    assert seen[:4] == ["queued"] * 4  # nothing taken while busy
    assert "垃圾" in store.get(t.number).text


def test_with_the_shared_folder_a_worker_reads_any_nodes_recordings(tmp_path: Path, whisper_engine) -> None:  # type: ignore[no-untyped-def]
    from ivr.hotline.transcription import worker_scope
    from ivr.tickets.transcriber import transcribe_one

    alone = load_settings(overrides={"data_dir": tmp_path, "node_id": "node-b"}, environ={})
    assert worker_scope(alone) == {"shared_dir": None, "node": "node-b"}
    shared = load_settings(overrides={"data_dir": tmp_path, "node_id": "node-b",
                                      "recordings_shared_dir": tmp_path / "shared"}, environ={})
    assert worker_scope(shared) == {"shared_dir": tmp_path / "shared", "node": None}
    store = TicketStore(shared.database_url)
    t = store.create(caller="1", call_id="c", kind="complaint", menu_path=[], flags=[], recording="d/c01.wav",
                     node="node-a")
    wav = tmp_path / "shared" / "d" / "c01.wav"  # node-a's recording, copied to the centre's folder
    wav.parent.mkdir(parents=True)
    write_wav(wav, read_wav(C01))
    store.complete_recording(t.number, audio_ms=4260, transcript=None,
                             sha256=hashlib.sha256(wav.read_bytes()).hexdigest())
    assert transcribe_one(store, whisper_engine, Path(alone.recordings_dir), "w-b", 60,  # type: ignore[arg-type]
                          **worker_scope(alone)) is None  # not node-b's, and not on its disk
    done = transcribe_one(store, whisper_engine, Path(shared.recordings_dir), "w-b", 60,  # type: ignore[arg-type]
                          **worker_scope(shared))
    assert done is not None and done.number == t.number and not done.error and "垃圾" in (done.text or "")


def test_serve_starts_the_configured_second_pass_and_says_when_it_cannot(settings, whisper_base_dir: Path,  # type: ignore[no-untyped-def]
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    import dataclasses

    from ivr.hotline.server import start_transcription
    from ivr.hotline.service import HotlineService

    whisper = dataclasses.replace(settings, transcribe_engine="whisper", transcribe_model=str(whisper_base_dir))
    service = HotlineService.from_settings(whisper, load_engine=False)  # no live model: keys-only calls
    t = service.store.create(caller="1", call_id="c", kind="complaint", menu_path=[], flags=[],
                             recording="d/c01.wav", node=whisper.node_id)
    wav = Path(whisper.recordings_dir) / "d" / "c01.wav"  # type: ignore[arg-type]
    wav.parent.mkdir(parents=True)
    write_wav(wav, read_wav(C01))
    service.store.complete_recording(t.number, audio_ms=4260, transcript=None,
                                     sha256=hashlib.sha256(wav.read_bytes()).hexdigest())

    async def serve_until_done() -> int:
        stop = asyncio.Event()
        task = start_transcription(service, whisper, stop)
        assert task is not None
        while service.store.get(t.number).transcription.value != "done":
            await asyncio.sleep(0.05)
        stop.set()
        return await task

    assert asyncio.run(serve_until_done()) == 1
    final = service.store.get(t.number)
    assert final.transcript is not None and final.transcript.engine == "whisper" and "垃圾" in final.text
    nothing = dataclasses.replace(settings, transcribe_engine="whisper", transcribe_model="whisper-medium")

    async def refused() -> object:
        return start_transcription(service, nothing, asyncio.Event())

    assert asyncio.run(refused()) is None
    assert any(r.getMessage().startswith("no transcription after calls on this node: transcribe_model: Whisper "
                                         "model 'whisper-medium' not found") for r in caplog.records)
