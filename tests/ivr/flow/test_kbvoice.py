"""The knowledge base's prompts: `ivr prompts build` renders each entry speakable today (its answer, "您是想问…吗？",
its title) with the real espeak-ng, only what changed, recordings first; an edited entry is rendered again in the
background while calls keep the previous audio."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from asr.audio import read_wav
from ivr.cli import app
from ivr.flow.kbvoice import rerender_entry_later
from ivr.kb import load_kb
from prompts.files import FilePrompts
from prompts.voice_espeak import EspeakVoice

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

ENTRY = """\
  - id: {id}
    title: {title}
    questions: [{q}怎么办, {q}去哪里办, 我想问问{q}]
    synonyms: [{q}]
    spoken: {spoken}
    text: 给接线员看的说明。
    source: {{title: 测试用的来源}}
    status: {status}
{extra}"""
CHECKED = "    checked_on: 2026-12-01\n    checked_by: test\n"
KB = "topic: 测试\ndepartment: 测试部门\nentries:\n" + "".join([
    ENTRY.format(id="t_ok", title="社保卡补办", q="社保卡补办", spoken="带上身份证到服务网点补办。", status="checked",
                 extra=CHECKED + "    expires: 2099-12-31\n"),
    ENTRY.format(id="t_sample", title="供暖时间", q="供暖时间", spoken="每年十一月十五日开始供暖。", status="unverified",
                 extra=""),
    ENTRY.format(id="t_old", title="旧的政策", q="旧的政策", spoken="这是过期的说法。", status="checked",
                 extra=CHECKED + "    expires: 2020-01-01\n"),
])


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "test.yaml").write_text(KB, encoding="utf-8")
    (tmp_path / "recorded").mkdir()
    (tmp_path / "catalogue.yaml").write_text("welcome: 您好。\n", encoding="utf-8")
    return {"IVR_DATA_DIR": str(tmp_path / "data"), "IVR_PROMPTS_CATALOGUE": str(tmp_path / "catalogue.yaml"),
            "IVR_PROMPTS_RECORDED_DIR": str(tmp_path / "recorded"), "IVR_KB_DIR": str(tmp_path / "kb")}


def build_kb(env: dict[str, str]) -> str:
    result = CliRunner().invoke(app, ["prompts", "build", "--voice", "espeak"], env=env)
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("knowledge base: ")]
    return re.sub(r", [0-9.]+ s of speech\)$", ")", line)


def test_build_renders_only_speakable_entries_and_only_what_changed(env: dict[str, str], tmp_path: Path) -> None:
    cache = tmp_path / "data" / "prompts" / "kb"
    voice = EspeakVoice.name
    assert build_kb(env) == (f"knowledge base: 1 of 3 entries speakable; their prompts 15 rendered, 0 unchanged, "
                             f"0 recorded -> {cache} (voice {voice})")
    assert sorted(p.name for p in (cache / "standard").glob("*.wav")) == ["kb_t_ok.wav", "kbq_t_ok.wav",
                                                                          "kbt_t_ok.wav"]
    assert sorted(p.name for p in cache.iterdir()) == ["elderly", "loud", "manifest.json", "slow", "slow_loud",
                                                       "standard"]
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*.wav")}
    assert build_kb(env) == (f"knowledge base: 1 of 3 entries speakable; their prompts 0 rendered, 15 unchanged, "
                             f"0 recorded -> {cache} (voice {voice})")
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*.wav")} == before
    # a voice artist's recording of the answer wins over text-to-speech, in every style
    shutil.copy(cache / "standard" / "kbt_t_ok.wav", Path(env["IVR_PROMPTS_RECORDED_DIR"]) / "kb_t_ok.wav")
    assert build_kb(env).endswith("their prompts 0 rendered, 10 unchanged, 5 recorded -> "
                                  f"{cache} (voice {voice})")
    played = FilePrompts(cache, Path(env["IVR_PROMPTS_RECORDED_DIR"]))
    assert played.audio("kb_t_ok", "elderly") == read_wav(cache / "standard" / "kbt_t_ok.wav")
    assert played.audio("kb_t_sample") is None and played.audio("kb_t_old") is None  # never rendered


def test_build_without_the_knowledge_base_leaves_its_answers_unrendered_and_says_how(env: dict[str, str],
                                                                                     tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["prompts", "build", "--voice", "espeak", "--no-kb"], env=env)
    assert result.exit_code == 0, result.output
    assert "knowledge base: not rendered (--no-kb)" in result.output and "run `ivr prompts build`" in result.output
    assert not (tmp_path / "data" / "prompts" / "kb").exists()
    assert (tmp_path / "data" / "prompts" / "standard" / "welcome.wav").exists()


def test_an_edited_entry_is_rendered_again_in_the_background(env: dict[str, str], tmp_path: Path) -> None:
    build_kb(env)
    cache = tmp_path / "data" / "prompts" / "kb"
    played = FilePrompts(cache)
    old_answer, old_question = played.audio("kb_t_ok"), played.audio("kbq_t_ok")
    assert old_answer is not None and old_question is not None
    kb_file = Path(env["IVR_KB_DIR"]) / "test.yaml"
    kb_file.write_text(KB.replace("带上身份证到服务网点补办。", "带上本人身份证和照片，到就近的服务网点补办，当场就能拿到新卡。"),
                       encoding="utf-8")
    entry = load_kb(kb_file.parent).get("t_ok")
    assert entry is not None
    assert played.audio("kb_t_ok") == old_answer  # until the new audio is ready, calls hear the previous one
    rerender_entry_later(entry, cache, None, EspeakVoice).join()
    new_answer = played.audio("kb_t_ok")
    assert new_answer is not None and len(new_answer) > len(old_answer)  # the longer answer, read again from disk
    assert played.audio("kbq_t_ok") == old_question  # the title did not change: not rendered again
    assert not [p for p in cache.rglob("*") if p.name.startswith(".")]  # no half-written file left behind
    assert build_kb(env).endswith("their prompts 0 rendered, 15 unchanged, 0 recorded -> "
                                  f"{cache} (voice {EspeakVoice.name})")


def test_an_entry_that_is_not_speakable_is_not_rendered_again(env: dict[str, str], tmp_path: Path) -> None:
    cache = tmp_path / "data" / "prompts" / "kb"
    entry = load_kb(Path(env["IVR_KB_DIR"])).get("t_sample")
    assert entry is not None
    rerender_entry_later(entry, cache, None, EspeakVoice).join()
    assert not cache.exists() or not list(cache.rglob("*.wav"))


def test_a_bad_knowledge_base_is_one_clear_error(env: dict[str, str]) -> None:
    (Path(env["IVR_KB_DIR"]) / "test.yaml").write_text(KB.replace("    title: 供暖时间\n", ""), encoding="utf-8")
    result = CliRunner().invoke(app, ["prompts", "build", "--voice", "espeak"], env=env)
    assert result.exit_code == 1 and result.output.startswith("ivr: ") and "t_sample" in result.output
