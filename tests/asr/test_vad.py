"""The endpointer on real speech (the Mandarin caller fixtures), silence, line noise, coughs and clicks."""
from __future__ import annotations

import numpy as np
import pytest

from asr.audio import FRAME_BYTES, FRAME_MS, SILENCE_FRAME, frames
from asr.errors import AudioFormatError, VadConfigError
from asr.vad import (BargeIn, Endpointer, NoInput, SpeechAudio, SpeechEnd, SpeechStart, VadAnalyser, VadConfig,
                     VadEvent, VadState, frame_dbfs)

from .conftest import fixture_pcm

RNG_SEED = 12345


def pad(pcm: bytes, before_ms: int = 1000, after_ms: int = 1200) -> bytes:
    return SILENCE_FRAME * (before_ms // FRAME_MS) + pcm + SILENCE_FRAME * (after_ms // FRAME_MS)


def noise(ms: int, dbfs: float, seed: int = RNG_SEED, samples: int | None = None) -> np.ndarray:
    """Steady white (broadband) noise with the given RMS level."""
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 32768.0 * 10 ** (dbfs / 20.0), 8 * ms if samples is None else samples)


def to_pcm(x: np.ndarray) -> bytes:
    return np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes()


def add_noise(pcm: bytes, dbfs: float) -> bytes:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return to_pcm(x + noise(0, dbfs, samples=len(x)))


def run(pcm: bytes, config: VadConfig | None = None) -> list[VadEvent]:
    ep = Endpointer(config or VadConfig())
    events: list[VadEvent] = []
    for f in frames(pcm):
        events += ep.process(f)
    return events


def kinds(events: list[VadEvent]) -> list[str]:
    return [type(e).__name__ for e in events if not isinstance(e, SpeechAudio)]


def utterance_audio(events: list[VadEvent]) -> list[bytes]:
    """The audio a recogniser would get for each utterance: SpeechStart's audio plus the following frames."""
    out: list[bytes] = []
    for e in events:
        if isinstance(e, SpeechStart):
            out.append(e.audio)
        elif isinstance(e, SpeechAudio):
            out[-1] += e.audio
    return out


@pytest.mark.parametrize("name", ["c01", "c05", "q02", "m01", "m04", "n01", "e01"])
@pytest.mark.parametrize("noise_db", [None, -45.0, -35.0])
def test_one_utterance_per_fixture(name: str, noise_db: float | None) -> None:
    speech = fixture_pcm(name)
    audio = pad(speech)
    if noise_db is not None:
        audio = add_noise(audio, noise_db)
    events = run(audio)
    assert kinds(events) == ["SpeechStart", "BargeIn", "SpeechEnd"]
    start = next(e for e in events if isinstance(e, SpeechStart))
    end = next(e for e in events if isinstance(e, SpeechEnd))
    assert end.reason == "silence"
    speech_ms = len(speech) // 16
    assert 1000 - 300 <= start.t_ms <= 1000 + speech_ms // 2
    # the end comes after the speech, within the hang-over plus a little
    assert 1000 + speech_ms - 400 <= end.t_ms <= 1000 + speech_ms + VadConfig().stop_ms + 200


@pytest.mark.parametrize("name", ["c02", "m02", "q01"])
def test_preroll_keeps_the_onset(name: str) -> None:
    speech = fixture_pcm(name)
    x = np.frombuffer(speech, dtype="<i2").astype(np.float64)
    # the first 100 ms frame whose energy is within 20 dB of the loudest: the first syllable
    win = 800
    energy = np.array([np.mean(x[i:i + win] ** 2) for i in range(0, len(x) - win, win)])
    onset = int(np.argmax(energy > energy.max() / 100.0)) * win
    first_syllable = to_pcm(x[onset:onset + win])
    before = 1000
    events = run(pad(speech, before))
    (audio,) = utterance_audio(events)
    start_ms = next(e for e in events if isinstance(e, SpeechEnd)).start_ms
    assert start_ms <= before + onset // 8  # the utterance begins at or before the first syllable
    offset = (before + onset // 8 - start_ms) * 16
    assert audio[offset:offset + len(first_syllable)] == first_syllable
    # and without pre-roll the start would have been cut: the start event comes after the onset
    start_event = next(e for e in events if isinstance(e, SpeechStart))
    assert start_event.t_ms > start_ms


def test_preroll_length_follows_the_config() -> None:
    speech = pad(fixture_pcm("c03"))
    for preroll in (0, 200, 300, 500):
        events = run(speech, VadConfig(preroll_ms=preroll))
        start = next(e for e in events if isinstance(e, SpeechStart))
        end = next(e for e in events if isinstance(e, SpeechEnd))
        assert start.t_ms - end.start_ms == max(preroll, FRAME_MS)  # a one-frame deque when pre-roll is off
        assert len(start.audio) % FRAME_BYTES == 0


def test_digital_silence_gives_only_no_input() -> None:
    events = run(SILENCE_FRAME * 400, VadConfig(no_input_ms=5000))
    assert kinds(events) == ["NoInput"]
    assert events[0].t_ms == 5000


def test_no_input_zero_disables_it() -> None:
    assert run(SILENCE_FRAME * 400, VadConfig(no_input_ms=0)) == []


def test_no_input_not_sent_after_speech() -> None:
    events = run(pad(fixture_pcm("m03"), 500, 8000), VadConfig(no_input_ms=3000))
    assert "NoInput" not in kinds(events)


@pytest.mark.parametrize("dbfs", [-60.0, -50.0, -40.0, -30.0, -20.0])
def test_steady_line_noise_is_not_speech(dbfs: float) -> None:
    events = run(to_pcm(noise(10_000, dbfs)), VadConfig(no_input_ms=8000))
    assert kinds(events) == ["NoInput"]


def test_webrtcvad_alone_calls_line_noise_speech() -> None:
    """Why the energy gate exists: without it the same noise is 'speech' most of the time."""
    import webrtcvad

    vad = webrtcvad.Vad(2)
    pcm = to_pcm(noise(4000, -30.0))
    voiced = sum(vad.is_speech(f, 8000) for f in frames(pcm))
    assert voiced > 0.5 * len(pcm) / FRAME_BYTES
    analyser = VadAnalyser(VadConfig())
    gated = [analyser.is_speech(f) for f in frames(pcm)]
    assert sum(gated[10:]) == 0  # once the floor has one frame of history


def test_speech_after_noise_is_found() -> None:
    speech = fixture_pcm("c04")
    audio = add_noise(SILENCE_FRAME * 150 + speech + SILENCE_FRAME * 60, -40.0)
    events = run(audio)
    assert kinds(events) == ["SpeechStart", "BargeIn", "SpeechEnd"]
    assert next(e for e in events if isinstance(e, SpeechStart)).t_ms >= 3000 - 300


def cough(ms: int, seed: int = 7) -> bytes:
    """A cough-like burst: loud noise shaped by a fast attack and exponential decay."""
    x = noise(ms, -12.0, seed)
    t = np.arange(len(x)) / 8000.0
    env = (1 - np.exp(-t / 0.01)) * np.exp(-t / (ms / 4000.0))
    return to_pcm(x * env)


def click() -> bytes:
    x = np.zeros(160)
    x[5:12] = [20000, -20000, 15000, -12000, 8000, -4000, 2000]
    return to_pcm(x)


@pytest.mark.parametrize("ms", [80, 120, 160])
def test_cough_does_not_barge_in(ms: int) -> None:
    audio = SILENCE_FRAME * 50 + cough(ms) + SILENCE_FRAME * 100
    assert "BargeIn" not in kinds(run(audio))


def test_clicks_do_not_barge_in() -> None:
    audio = b"".join(SILENCE_FRAME * 12 + click() for _ in range(20)) + SILENCE_FRAME * 50
    events = run(audio)
    assert "BargeIn" not in kinds(events)
    assert "SpeechStart" not in kinds(events)


def test_coughs_among_line_noise_do_not_barge_in() -> None:
    bed = noise(6000, -40.0, seed=3)
    burst = np.frombuffer(cough(120), dtype="<i2").astype(np.float64)
    for at in (1000, 3000, 4500):
        bed[8 * at:8 * at + len(burst)] += burst
    assert "BargeIn" not in kinds(run(to_pcm(bed)))


@pytest.mark.parametrize("barge_in_ms", [160, 240, 400])
def test_barge_in_timing(barge_in_ms: int) -> None:
    events = run(pad(fixture_pcm("c06")), VadConfig(barge_in_ms=barge_in_ms))
    start = next(e for e in events if isinstance(e, SpeechStart))
    barge = [e for e in events if isinstance(e, BargeIn)]
    assert len(barge) == 1
    # voiced frames since the start attempt began reach the setting; speech has few gaps, so barely later
    lag = barge[0].t_ms + FRAME_MS - start.t_ms
    assert barge_in_ms <= lag <= barge_in_ms + 200


def test_barge_in_comes_before_the_end_and_once_per_utterance() -> None:
    audio = pad(fixture_pcm("m05"), 600, 1200) + fixture_pcm("m06") + SILENCE_FRAME * 60
    ks = kinds(run(audio))
    assert ks == ["SpeechStart", "BargeIn", "SpeechEnd"] * 2


def test_max_length_cuts_a_long_utterance() -> None:
    speech = b"".join(fixture_pcm(n) for n in ("c01", "c02", "c03"))
    events = run(pad(speech), VadConfig(max_utterance_ms=3000))
    ends = [e for e in events if isinstance(e, SpeechEnd)]
    assert ends[0].reason == "max_length"
    assert ends[0].t_ms - ends[0].start_ms == 3000
    assert len(utterance_audio(events)[0]) == 3000 * 16


def test_hang_over_bridges_short_pauses() -> None:
    gap = SILENCE_FRAME * 25  # 500 ms
    audio = pad(fixture_pcm("m07") + gap + fixture_pcm("m08"))
    assert kinds(run(audio, VadConfig(stop_ms=800))).count("SpeechEnd") == 1
    assert kinds(run(audio, VadConfig(stop_ms=300))).count("SpeechEnd") == 2


@pytest.mark.parametrize(("stop_ms", "tail_ms"), [(800, 200), (800, 0), (1200, 300), (400, 400), (300, 600)])
def test_only_the_tail_of_the_final_pause_reaches_the_recogniser(stop_ms: int, tail_ms: int) -> None:
    audio = add_noise(pad(fixture_pcm("c04"), 1000, 2000), -50.0)
    events = run(audio, VadConfig(stop_ms=stop_ms, tail_ms=tail_ms))
    end = next(e for e in events if isinstance(e, SpeechEnd))
    (utterance,) = utterance_audio(events)
    last_voiced_end = end.t_ms - stop_ms  # the hang-over is unvoiced frames counted back from the end
    assert len(utterance) // 16 == last_voiced_end + min(tail_ms, stop_ms) - end.start_ms
    assert utterance == audio[end.start_ms * 16:end.start_ms * 16 + len(utterance)]  # contiguous, nothing lost


def test_a_held_pause_is_passed_on_when_speech_resumes() -> None:
    gap = SILENCE_FRAME * 30  # 600 ms: longer than the tail, shorter than the hang-over
    audio = pad(fixture_pcm("m07") + gap + fixture_pcm("m08"))
    events = run(audio, VadConfig(stop_ms=800, tail_ms=200))
    assert kinds(events).count("SpeechEnd") == 1
    resumed = [e for e in events if isinstance(e, SpeechAudio) and len(e.audio) > FRAME_BYTES]
    assert resumed and all(len(e.audio) % FRAME_BYTES == 0 for e in resumed)
    first = resumed[0]
    assert first.audio == audio[first.t_ms * 16:first.t_ms * 16 + len(first.audio)]  # starts where the hold began
    end = next(e for e in events if isinstance(e, SpeechEnd))
    (utterance,) = utterance_audio(events)
    assert utterance == audio[end.start_ms * 16:end.start_ms * 16 + len(utterance)]  # the pause is all there
    assert len(utterance) // 16 > 600 + len(fixture_pcm("m07")) // 16


def test_max_length_during_a_held_pause_passes_the_held_audio() -> None:
    audio = pad(fixture_pcm("m07") + SILENCE_FRAME * 40)
    plain = run(audio, VadConfig(stop_ms=2000))
    cut_at = next(e for e in plain if isinstance(e, SpeechEnd)).t_ms - 600  # 1.4 s into the 2 s trailing pause
    start = next(e for e in plain if isinstance(e, SpeechEnd)).start_ms
    events = run(audio, VadConfig(stop_ms=2000, max_utterance_ms=cut_at - start))
    end = next(e for e in events if isinstance(e, SpeechEnd))
    assert end.reason == "max_length"
    (utterance,) = utterance_audio(events)
    assert utterance == audio[start * 16:end.t_ms * 16]


def test_start_delay_is_respected() -> None:
    speech = pad(fixture_pcm("q03"))
    early = next(e for e in run(speech, VadConfig(start_ms=60)) if isinstance(e, SpeechStart))
    late = next(e for e in run(speech, VadConfig(start_ms=300)) if isinstance(e, SpeechStart))
    assert early.t_ms == late.t_ms  # the start is placed where the voiced run began
    ep = Endpointer(VadConfig(start_ms=300))
    states = []
    for f in frames(speech):
        ep.process(f)
        states.append(ep.state)
    first_starting = states.index(VadState.STARTING)
    first_speaking = states.index(VadState.SPEAKING)
    assert first_speaking - first_starting >= 300 // FRAME_MS - 1


def test_states_go_round() -> None:
    ep = Endpointer()
    seen = []
    for f in frames(pad(fixture_pcm("c07"))):
        ep.process(f)
        if not seen or seen[-1] is not ep.state:
            seen.append(ep.state)
    assert seen[0] is VadState.QUIET and seen[-1] is VadState.QUIET
    assert {VadState.STARTING, VadState.SPEAKING, VadState.STOPPING} <= set(seen)


def test_config_validation_messages() -> None:
    with pytest.raises(VadConfigError, match=r"^VadConfig.mode must be 0..3, not 5$"):
        VadConfig(mode=5)
    with pytest.raises(VadConfigError, match=r"^VadConfig.stop_ms must be a non-negative multiple of 20 ms, not 810$"):
        VadConfig(stop_ms=810)
    with pytest.raises(VadConfigError, match=r"^VadConfig.tail_ms must be a non-negative multiple of 20 ms, not 5$"):
        VadConfig(tail_ms=5)
    with pytest.raises(ValueError):  # VadConfigError is a ValueError too
        VadConfig(preroll_ms=-20)


def test_wrong_frame_size() -> None:
    with pytest.raises(AudioFormatError, match=r"^a frame must be 320 bytes \(20 ms at 8 kHz\), not 10$"):
        Endpointer().process(bytes(10))


def test_frame_dbfs() -> None:
    assert frame_dbfs(SILENCE_FRAME) == -120.0
    full = to_pcm(np.full(160, 32767.0))
    assert frame_dbfs(full) == pytest.approx(0.0, abs=0.01)
    assert isinstance(NoInput(0), VadEvent)


def test_noise_floor_is_the_minimum_over_the_window() -> None:
    rng = np.random.default_rng(5)
    analyser = VadAnalyser(VadConfig(noise_window_ms=400))
    levels: list[float] = []
    for _ in range(300):
        frame = to_pcm(rng.normal(0.0, 10 ** rng.uniform(1.0, 4.0), 160))
        levels.append(frame_dbfs(frame))
        analyser.is_speech(frame)
        assert analyser.noise_floor_dbfs == min(levels[-20:])
