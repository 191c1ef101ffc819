"""The menus' understanding through a real Mandarin recogniser: caller phrasings of flows/hotline.eval.tsv spoken by
a neural voice, cut to the telephone band, transcribed by Whisper base (asr.whisper), then matched by keywords alone
and by keywords with meaning, as `ivr flows evaluate` does on the written set.

    .venv/bin/python bench/menus_heard.py [--every 5] [--voice auto] [--models DIR]

Needs the voice extra (Kokoro) and the Whisper base packages (dev extras). The voice is synthetic and the
recogniser small: the figures show what recogniser errors do to each way of matching, not how real callers fare.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from asr.whisper import WhisperEngine  # noqa: E402
from asr.whisper_model import WHISPER_BASE, assemble  # noqa: E402
from bench.asr_resample import edit_distance  # noqa: E402
from ivr.flow import load_flow  # noqa: E402
from ivr.flow.evaluate import Phrasing, evaluate_menus, format_scores, load_phrasings  # noqa: E402
from prompts.shaping import shape  # noqa: E402
from prompts.voices import choose_voice  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--every", type=int, default=5, help="take every n-th phrasing of each menu")
    ap.add_argument("--voice", default="auto")
    ap.add_argument("--models", type=Path, default=None, help="where Whisper base is assembled (default: a temp dir)")
    args = ap.parse_args()
    flow = load_flow(REPO / "flows" / "hotline.yaml")
    written = load_phrasings(REPO / "flows" / "hotline.eval.tsv", flow)
    by_menu: dict[str, list[Phrasing]] = {}
    for p in written:
        by_menu.setdefault(p.menu, []).append(p)
    chosen = [p for items in by_menu.values() for p in items[:: args.every]]
    models = args.models or Path(tempfile.mkdtemp(prefix="menus-heard-"))
    voice, notices = choose_voice(args.voice, models / "voices")
    for notice in notices:
        print(f"voice: {notice}", file=sys.stderr)
    engine = WhisperEngine(assemble(WHISPER_BASE, models / "whisper"), device="cpu")
    heard: list[Phrasing] = []
    cer_edits = cer_chars = 0
    for p in chosen:
        pcm = shape(voice.render(p.text, 1.0), -20.0)
        rec = engine.recognizer()
        rec.accept(pcm)
        text = rec.final().text
        engine.release(rec)
        heard.append(Phrasing(p.menu, p.expect, text or "。"))
        cer_edits += edit_distance(list(text), list(p.text))
        cer_chars += len(p.text)
        print(f"{p.menu:<13} {p.expect:<17} said {p.text}  heard {text}")
    print(f"\n{len(chosen)} phrasings, voice {voice.name}, Whisper base; character error rate "
          f"{cer_edits / cer_chars:.1%}\n")
    print("as written:")
    print(format_scores(evaluate_menus(flow, [p for p in chosen]), flow, max_confusions=5))
    print("\nas heard:")
    print(format_scores(evaluate_menus(flow, heard), flow, max_confusions=5))


if __name__ == "__main__":
    main()
