"""The second pass with the real Whisper base: a worker gives a ticket its final transcript and dispatch fields,
and `ivr transcribe worker` killed with -9 mid-job leaves the job to the next worker, which commits it once."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from asr.audio import SAMPLE_RATE, read_wav, write_wav
from asr.results import Transcript, Word
from ivr.tickets.jobs import JobState
from ivr.tickets.store import TicketStore
from ivr.tickets.transcriber import transcribe_one, work_off
from ivr.triage.suggest import dispatch_suggester

REPO = Path(__file__).resolve().parents[3]
ZH = REPO / "audio_fixtures" / "zh"
IVR = Path(sys.executable).parent / "ivr"
LIVE = Transcript("我要反应一下我们小区门口的拉机", words=(Word("我要", 0.0, 0.4, 0.5),), engine="vosk",
                  model="vosk-model-small-cn-0.22")


def ticket_with_recording(store: TicketStore, recordings: Path, pcm: bytes, live: Transcript | None) -> str:
    t = store.create(caller="13800138000", call_id="c", kind="complaint", menu_path=["main", "complaint"], flags=[],
                     recording=lambda n: f"20260305/{n}.wav", now=datetime(2026, 3, 5, tzinfo=timezone.utc))
    path = recordings / t.recording
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, pcm)
    store.complete_recording(t.number, audio_ms=len(pcm) // 16, transcript=live,
                             sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    return t.number


@pytest.fixture(scope="module")
def real_suggester(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return dispatch_suggester(tmp_path_factory.mktemp("dispatch"))


def test_the_second_pass_gives_the_final_transcript_and_dispatch(tmp_path: Path, whisper_engine,  # type: ignore[no-untyped-def]
                                                                 real_suggester) -> None:
    store = TicketStore(f"sqlite:///{tmp_path / 'ivr.db'}", suggest=real_suggester)
    recordings = tmp_path / "recordings"
    complaint = ticket_with_recording(store, recordings, read_wav(ZH / "c01.wav"), LIVE)
    shed = ticket_with_recording(store, recordings, read_wav(ZH / "c03.wav"), None)  # no live transcript at all
    outcomes = work_off(store, whisper_engine, recordings, owner="w1", lease_s=600, stop=threading.Event(),
                        until_empty=True)
    assert [(o.number, o.error, o.stored) for o in outcomes] == [(complaint, "", True), (shed, "", True)]
    t = store.get(complaint)
    assert t.transcript is not None and t.live_transcript == LIVE
    assert (t.transcript.engine, t.transcript.model) == ("whisper", "whisper-base")
    assert "垃圾" in t.text and "小区" in t.text, t.text
    assert t.category == "环境卫生" and t.suggestion is not None and t.suggestion["category"] == "环境卫生"
    lift = store.get(shed)
    assert lift.transcription.value == "done" and "电梯" in lift.text and lift.live_transcript is None
    assert lift.suggestion is not None and lift.category == lift.suggestion["category"] != ""
    assert store.job_counts() == {"queued": 0, "running": 0, "done": 2, "failed": 0}
    assert transcribe_one(store, whisper_engine, recordings, "w1", 600) is None  # nothing left


def test_a_killed_worker_leaves_its_job_to_the_next_which_commits_it_once(tmp_path: Path,
                                                                         whisper_base_dir: Path) -> None:
    data = tmp_path / "data"
    store = TicketStore(f"sqlite:///{data / 'ivr.db'}")
    gap = bytes(SAMPLE_RATE)  # half a second
    pcm = (read_wav(ZH / "c01.wav") + gap) * 4  # about 19 s: several seconds of decoding to be killed in
    number = ticket_with_recording(store, data / "recordings", pcm, LIVE)
    env = dict(os.environ, IVR_DATA_DIR=str(data), IVR_TRANSCRIBE_ENGINE="whisper",
               IVR_TRANSCRIBE_MODEL=str(whisper_base_dir), IVR_TRANSCRIBE_LEASE_S="2")
    first = subprocess.Popen([str(IVR), "-v", "transcribe", "worker", "--once"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert first.stderr is not None
        for line in first.stderr:
            if f"ticket {number}: transcribing" in line:
                break
        else:
            pytest.fail(f"the worker ended before transcribing: {first.wait()}")
        os.kill(first.pid, signal.SIGKILL)
    finally:
        first.kill()
        first.wait()
        first.stdout.close()  # type: ignore[union-attr]
        first.stderr.close()
    held = store.job(number)
    assert held is not None and (held.state, held.attempts) == (JobState.RUNNING, 1)
    assert store.get(number).live_transcript is None and store.get(number).transcript == LIVE  # nothing committed
    assert held.lease_until is not None
    time.sleep(max(0.0, (held.lease_until - datetime.now(timezone.utc)).total_seconds()) + 0.2)  # the lease runs out
    second = subprocess.run([str(IVR), "transcribe", "worker", "--once"], env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith(f"{number}  我要反映一下"), second.stdout
    assert "transcribed 1, failed 0" in second.stderr
    done = store.job(number)
    assert done is not None and (done.state, done.attempts, done.error) == (JobState.DONE, 2, "")
    assert done.owner != held.owner  # another process committed it
    t = store.get(number)
    assert t.live_transcript == LIVE and t.transcript is not None and t.transcript.engine == "whisper"
    assert t.text.count("垃圾") >= 3, t.text
    shown = subprocess.run([str(IVR), "tickets", "show", number], env=env, capture_output=True, text=True)
    assert f"  live       {LIVE.text}  (vosk vosk-model-small-cn-0.22; replaced by the final transcript above)" \
        in shown.stdout.splitlines(), shown.stdout
    again = subprocess.run([str(IVR), "transcribe", "worker", "--once"], env=env, capture_output=True, text=True)
    assert again.returncode == 0 and again.stdout == "" and "transcribed 0, failed 0" in again.stderr
    assert store.get(number).transcript == t.transcript
