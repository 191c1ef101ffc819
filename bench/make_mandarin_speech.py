"""Synthetic Mandarin caller utterances for tests and benches: audio_fixtures/zh-kokoro/ from its texts.tsv.

Each text is read by Kokoro-82M (the default offline prompt voice, `prompts.voices.choose_voice`), the speakers
taken in turn so the set is not one voice, then put through a telephone channel as a caller's speech reaches us:
300-3400 Hz band (`prompts.shaping.telephone_band`), active speech levelled to -20 dBFS, G.711 µ-law coding,
a fifth of a second of line silence each side. 8 kHz mono µ-law WAVs (`asr.audio.read_wav` reads them); transcripts.tsv gets id, text, label,
seconds and voice. Deterministic for a given model and text.

    .venv/bin/python bench/make_mandarin_speech.py            # writes audio_fixtures/zh-kokoro/*.wav
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asr.audio import SAMPLE_RATE, write_ulaw_wav  # noqa: E402
from ivr.codecs.g711 import ulaw_decode, ulaw_encode  # noqa: E402
from prompts.shaping import level_pcm, telephone_band  # noqa: E402
from prompts.voices import choose_voice  # noqa: E402

SPEAKERS = ("jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
EDGE = bytes(SAMPLE_RATE // 5 * 2)


def line(pcm: bytes) -> bytes:
    """Speech as a telephone line carries it: band-limited, levelled, G.711 µ-law coded (kept coded: half the size
    of PCM16, and exactly what the line delivers)."""
    return ulaw_encode(EDGE + level_pcm(telephone_band(pcm), -20.0) + EDGE)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=ROOT / "audio_fixtures" / "zh-kokoro")
    ap.add_argument("--models", type=Path, default=ROOT / "var" / "voice-models", help="assembled voice models")
    args = ap.parse_args()
    with (args.dir / "texts.tsv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    voices = {s: choose_voice(f"kokoro/{s}", args.models)[0] for s in SPEAKERS}
    out = [("id", "text", "label", "seconds", "voice")]
    for i, row in enumerate(rows):
        speaker = SPEAKERS[i % len(SPEAKERS)]
        coded = line(voices[speaker].render(row["text"], 1.0))
        write_ulaw_wav(args.dir / f"{row['id']}.wav", coded)
        seconds = len(ulaw_decode(coded)) / 2 / SAMPLE_RATE
        out.append((row["id"], row["text"], row["label"], f"{seconds:.2f}", f"kokoro/{speaker}"))
        print(f"{row['id']} {seconds:5.2f} s kokoro/{speaker} {row['text']}")
    with (args.dir / "transcripts.tsv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, delimiter="\t", lineterminator="\n").writerows(out)


if __name__ == "__main__":
    main()
