"""`ivr prompts build` with the real espeak-ng: only changed prompts render; slow, loud and elderly styles slower
and louder.

The same behaviour with the default neural voice is in test_voices.py."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from asr.audio import read_wav
from ivr.cli import app
from prompts.voice_espeak import EspeakVoice

ESPEAK = EspeakVoice.name

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

CATALOGUE = """\
welcome:
  text: 您好，这里是12345市民服务热线。
menu:
  text: 投诉举报请按1，政策咨询请按2。
  elderly: 反映问题，请按1。
num_5: 五
"""


def rms_dbfs(pcm: bytes) -> float:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    x = x[np.abs(x) > 30]  # speech, not the padding
    return 20 * np.log10(np.sqrt(np.mean(x * x)) / 32768)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "catalogue.yaml").write_text(CATALOGUE, encoding="utf-8")
    (tmp_path / "recorded").mkdir()
    (tmp_path / "kb").mkdir()  # no knowledge base: its prompts are tested in tests/ivr/flow/test_kbvoice.py
    return {"IVR_DATA_DIR": str(tmp_path / "data"), "IVR_PROMPTS_CATALOGUE": str(tmp_path / "catalogue.yaml"),
            "IVR_PROMPTS_RECORDED_DIR": str(tmp_path / "recorded"), "IVR_KB_DIR": str(tmp_path / "kb")}


def build(env: dict[str, str], voice: str = "espeak") -> str:
    """The catalogue's summary line, without the render timing (which varies)."""
    result = CliRunner().invoke(app, ["prompts", "build", "--voice", voice], env=env)
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("prompts: ")]
    return re.sub(r", [0-9.]+ s of speech in [0-9.]+ s\)$", ")", line)


def test_build_renders_only_what_changed(env: dict[str, str], tmp_path: Path) -> None:
    cache = tmp_path / "data" / "prompts"
    assert build(env) == f"prompts: 15 rendered, 0 unchanged, 0 recorded -> {cache} (voice {ESPEAK})"
    manifest = json.loads((cache / "manifest.json").read_text())
    assert sorted(manifest) == [f"{style}/{pid}" for style in ("elderly", "loud", "slow", "slow_loud", "standard")
                                for pid in ("menu", "num_5", "welcome")]
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*.wav")}
    assert build(env) == f"prompts: 0 rendered, 15 unchanged, 0 recorded -> {cache} (voice {ESPEAK})"
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*.wav")} == before
    # change only the elderly text of one prompt: exactly one file is rendered again
    cat = Path(env["IVR_PROMPTS_CATALOGUE"])
    cat.write_text(CATALOGUE.replace("反映问题，请按1。", "反映问题，请按1。找人工，请按0。"), encoding="utf-8")
    assert build(env) == f"prompts: 1 rendered, 14 unchanged, 0 recorded -> {cache} (voice {ESPEAK})"
    changed = [p.relative_to(cache) for p in cache.rglob("*.wav") if p.stat().st_mtime_ns != before[p]]
    assert changed == [Path("elderly/menu.wav")]
    # a voice artist's recording replaces TTS for that prompt
    shutil.copy(cache / "standard" / "num_5.wav", Path(env["IVR_PROMPTS_RECORDED_DIR"]) / "num_5.wav")
    assert build(env) == f"prompts: 0 rendered, 10 unchanged, 5 recorded -> {cache} (voice {ESPEAK})"


@pytest.mark.parametrize("voice", ["espeak", "auto"])
def test_elderly_style_is_slower_and_louder(env: dict[str, str], tmp_path: Path, voice: str) -> None:
    build(env, voice)
    cache = tmp_path / "data" / "prompts"
    std, old = read_wav(cache / "standard" / "welcome.wav"), read_wav(cache / "elderly" / "welcome.wav")
    ratio = len(old) / len(std)
    assert 1.1 < ratio < 1.45  # ~0.8x speaking rate: 1.25x as long
    assert rms_dbfs(old) > rms_dbfs(std) + 2.5  # louder (target +4 dB, the soft limiter takes some)
    assert all(np.max(np.abs(np.frombuffer(p, dtype="<i2"))) < 32767 for p in (std, old))  # never clipped


def test_slow_and_loud_styles_are_the_standard_text_slower_louder_or_both(env: dict[str, str], tmp_path: Path) -> None:
    """What a caller who says 说慢点 or 大声点 hears for the rest of the call: rendered beforehand, never during it."""
    build(env)
    cache = tmp_path / "data" / "prompts"
    std, slow, loud, both = (read_wav(cache / s / "menu.wav") for s in ("standard", "slow", "loud", "slow_loud"))
    assert 1.1 < len(slow) / len(std) < 1.45 and 1.1 < len(both) / len(std) < 1.45  # ~0.8x speaking rate
    assert abs(len(loud) - len(std)) < len(std) * 0.02  # the same rate
    assert abs(rms_dbfs(slow) - rms_dbfs(std)) < 1.0  # the same level
    assert rms_dbfs(loud) > rms_dbfs(std) + 2.5 and rms_dbfs(both) > rms_dbfs(std) + 2.5  # target +4 dB
    elderly = read_wav(cache / "elderly" / "menu.wav")
    assert len(elderly) < len(slow)  # the elderly text is shorter (反映问题，请按1。), not the standard one


def test_bad_catalogue_is_one_clear_error(env: dict[str, str]) -> None:
    Path(env["IVR_PROMPTS_CATALOGUE"]).write_text("welcome:\n  text: ''\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["prompts", "build", "--voice", "espeak"], env=env)
    assert result.exit_code == 1
    assert result.output.strip() == f"ivr: {env['IVR_PROMPTS_CATALOGUE']}: prompt 'welcome' needs a non-empty text"


def test_rate_applies_to_each_render() -> None:
    from prompts.voice_espeak import EspeakVoice

    engine = EspeakVoice()
    text = "您好，这里是12345市民服务热线。"
    lengths = [len(engine.render(text, r)) for r in (1.0, 0.8, 1.0, 0.8)]
    assert abs(lengths[0] - lengths[2]) < lengths[0] * 0.01 and abs(lengths[1] - lengths[3]) < lengths[1] * 0.01
    assert 1.15 < lengths[1] / lengths[0] < 1.4


COUNTED = """\
queue_ahead: 您前面还有
queue_callers: 位来电在等待
queue_position:
  text: 您前面还有{n}位来电在等待
  values: 1-2
  pieces: [queue_ahead, queue_callers]
"""


def test_counted_sentences_are_rendered_whole_and_cached(env: dict[str, str], tmp_path: Path) -> None:
    cat, cache = Path(env["IVR_PROMPTS_CATALOGUE"]), tmp_path / "data" / "prompts"
    cat.write_text(COUNTED, encoding="utf-8")
    assert build(env) == f"prompts: 20 rendered, 0 unchanged, 0 recorded -> {cache} (voice {ESPEAK})"  # 2 + 2 a style
    two = read_wav(cache / "standard" / "queue_position_2.wav")
    assert len(two) > len(read_wav(cache / "standard" / "queue_ahead.wav"))  # the whole sentence
    # one more count: only its sentence is rendered, in each style
    cat.write_text(COUNTED.replace("1-2", "1-3"), encoding="utf-8")
    assert build(env) == f"prompts: 5 rendered, 20 unchanged, 0 recorded -> {cache} (voice {ESPEAK})"
    assert read_wav(cache / "standard" / "queue_position_2.wav") == two
    # a voice artist's recording of a piece: the sentence is spliced from it, never rendered whole beside it
    shutil.copy(cache / "standard" / "queue_ahead.wav", Path(env["IVR_PROMPTS_RECORDED_DIR"]) / "queue_ahead.wav")
    assert build(env) == f"prompts: 0 rendered, 5 unchanged, 20 recorded -> {cache} (voice {ESPEAK})"
    listed = CliRunner().invoke(app, ["prompts", "list"], env=env).output.splitlines()
    assert listed[-1] == "queue_position: 您前面还有{n}位来电在等待 (whole for 1-3, else queue_ahead + n + queue_callers)"


def test_styles_that_differ_only_in_level_share_one_rendering(tmp_path: Path) -> None:
    """loud is standard louder, slow_loud is slow louder, elderly is slow_loud with its own text: the voice is asked
    once per text and rate, and each style's file is levelled from that."""
    from prompts import load_catalogue
    from prompts.render import render_catalogue

    (tmp_path / "catalogue.yaml").write_text(CATALOGUE, encoding="utf-8")
    asked: list[tuple[str, float]] = []

    class Counting(EspeakVoice):
        def render(self, text: str, rate: float) -> bytes:
            asked.append((text, rate))
            return super().render(text, rate)

    stats = render_catalogue(load_catalogue(tmp_path / "catalogue.yaml"), tmp_path / "cache", engine_factory=Counting)
    assert stats.rendered == 15 and stats.voice_calls == len(asked) == len(set(asked)) == 7
    assert sorted(asked) == sorted([("您好，这里是幺二三四五市民服务热线。", r) for r in (1.0, 0.8)]
                                   + [("投诉举报请按一，政策咨询请按二。", r) for r in (1.0, 0.8)]
                                   + [("反映问题，请按一。", 0.8)] + [("五", r) for r in (1.0, 0.8)])
    loud, standard = (read_wav(tmp_path / "cache" / s / "welcome.wav") for s in ("loud", "standard"))
    assert abs(len(loud) - len(standard)) < 160 and rms_dbfs(loud) - rms_dbfs(standard) > 3  # trimmed at its level


def test_a_voice_made_on_another_thread_leaves_this_threads_voice_working() -> None:
    """The console re-renders an edited knowledge-base answer on a worker thread; a later render on this thread must
    still finish (pyttsx3's shared engine, first run on another thread, never did)."""
    import threading

    rendered: list[bytes] = []
    worker = threading.Thread(target=lambda: rendered.append(EspeakVoice().render("你好", 1.0)))
    worker.start()
    worker.join()
    rendered.append(EspeakVoice().render("你好", 1.0))
    assert len(rendered) == 2 and all(len(pcm) > 1600 for pcm in rendered)
