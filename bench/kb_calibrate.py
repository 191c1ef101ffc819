"""Fit the knowledge-base search's calibration and choose its threshold, on a labelled set of caller questions.

For each question the search's best two similarities are taken; a logistic regression on (similarity, lead over
the next entry) predicts whether the best entry is the one asked for (a question the knowledge base does not answer,
expected `-`, is never right). Prints the fitted `Calibration` for `ivr/kb/search.py`, how well the scores match
the accuracy (reliability by score band, Brier score), and per threshold the wrong and right answers that would be
spoken with every entry treated as checked; the threshold suggested is the lowest at which at most 0.5 % of the
questions (1 in 200) would hear a wrong answer. Fit on `bench/kb_dev_questions.tsv`, never on the evaluation set, together with
a misheard copy of each question: a quarter of its characters replaced at random (seeded) by others that sound alike
once tones and the usual confusions are set aside (社保 -> 设宝), as a recogniser would mishear them.
Usage: .venv/bin/python bench/kb_calibrate.py [--set bench/kb_dev_questions.tsv] [--misheard 0.25]
       [--check kb/eval/questions.tsv]
"""
from __future__ import annotations

import argparse
import random
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
from pypinyin import Style, lazy_pinyin

from asr.intents import fold_syllable

from ivr.config import load_settings
from ivr.kb import KnowledgeBase, load_kb
from ivr.kb.evaluate import NOT_ANSWERED, load_questions
from ivr.kb.search import Calibration

REPO = Path(__file__).resolve().parent.parent
WRONG_SPOKEN_LIMIT = 0.005
THRESHOLDS = [round(0.3 + 0.05 * i, 2) for i in range(14)]


def observations(kb: KnowledgeBase, path: Path) -> np.ndarray:
    """Rows of (similarity, lead, right) for each question of the set."""
    rows = []
    for q in load_questions(path, kb):
        ranked = kb.similarities(q.text, limit=2)
        best = ranked[0][1] if ranked else 0.0
        second = ranked[1][1] if len(ranked) > 1 else 0.0
        right = bool(ranked) and q.expected != NOT_ANSWERED and ranked[0][0].id == q.expected
        rows.append((best, best - second, float(right)))
    return np.array(rows)


def _sound_alikes() -> dict[str, list[str]]:
    """The common characters (GB2312 level 1) by folded toneless syllable."""
    table: dict[str, list[str]] = defaultdict(list)
    for high in range(0xB0, 0xD8):
        for low in range(0xA1, 0xFF):
            try:
                char = bytes([high, low]).decode("gb2312")
            except UnicodeDecodeError:
                continue
            table[fold_syllable(lazy_pinyin(char, style=Style.NORMAL)[0])].append(char)
    return table


def misheard(path: Path, rate: float, out: Path, seed: int = 7) -> Path:
    """A copy of the set with `rate` of each question's characters replaced by sound-alikes."""
    table, rnd = _sound_alikes(), random.Random(seed)
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [lines[0]]
    for line in lines[1:]:
        text, expected = line.split("\t")
        chars, sounds = list(text), lazy_pinyin(text, style=Style.NORMAL)
        if len(sounds) == len(chars):
            for i, char in enumerate(chars):
                if "\u4e00" <= char <= "\u9fff" and rnd.random() < rate:
                    others = [c for c in table.get(fold_syllable(sounds[i]), []) if c != char]
                    chars[i] = rnd.choice(others) if others else char
        rows.append("".join(chars) + "\t" + expected)
    out.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return out


def fit(obs: np.ndarray, l2: float = 1e-4, steps: int = 100_000, rate: float = 4.0) -> Calibration:
    x = np.c_[np.ones(len(obs)), obs[:, 0], obs[:, 1]]
    y = obs[:, 2]
    w = np.zeros(3)
    for _ in range(steps):
        p = 1 / (1 + np.exp(-x @ w))
        w -= rate * (x.T @ (p - y) / len(y) + l2 * np.r_[0.0, w[1:]])
    return Calibration(*(round(float(v), 2) for v in w))


def report(name: str, obs: np.ndarray, cal: Calibration) -> float:
    """Print reliability and the threshold sweep; return the suggested threshold."""
    p = np.array([cal.score(s, lead) for s, lead, _ in obs])
    right = obs[:, 2] == 1
    print(f"{name}: {len(obs)} questions, Brier score {np.mean((p - obs[:, 2]) ** 2):.3f}")
    for low in (0.0, 0.2, 0.4, 0.6, 0.8):
        band = (p >= low) & (p < low + 0.2 + (1e-9 if low == 0.8 else 0))
        if band.any():
            print(f"  score {low:.1f}-{low + 0.2:.1f}: {band.sum():>4} questions, mean score {p[band].mean():.2f}, "
                  f"best entry right {right[band].mean():.0%}")
    suggested = 1.0
    print("  threshold  wrong spoken  right spoken")
    for t in THRESHOLDS:
        wrong = np.sum((p >= t) & ~right) / len(obs)
        print(f"  {t:>9.2f}  {wrong:>12.1%}  {np.sum((p >= t) & right) / len(obs):>12.1%}")
        if wrong <= WRONG_SPOKEN_LIMIT and t < suggested:
            suggested = t
    return suggested


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", type=Path, default=None, help="knowledge base folder (default: kb_dir)")
    ap.add_argument("--set", type=Path, default=REPO / "bench" / "kb_dev_questions.tsv")
    ap.add_argument("--misheard", type=float, default=0.25, help="share of characters misheard in the copy; 0: none")
    ap.add_argument("--check", type=Path, default=None, help="a second set to report on with the fitted calibration")
    args = ap.parse_args()
    kb = load_kb(args.dir or load_settings().kb_dir)
    obs = observations(kb, args.set)
    name = str(args.set)
    if args.misheard > 0:
        with tempfile.TemporaryDirectory() as tmp:
            copy = misheard(args.set, args.misheard, Path(tmp) / "misheard.tsv")
            obs = np.r_[obs, observations(kb, copy)]
        name += f" and its misheard copy ({args.misheard:.0%} of characters)"
    cal = fit(obs)
    print(f"fitted on {name}: {cal}")
    threshold = report(name, obs, cal)
    print(f"suggested threshold (wrong answers spoken <= {WRONG_SPOKEN_LIMIT:.1%} of questions): {threshold:.2f}")
    if args.check:
        report(str(args.check), observations(kb, args.check), cal)


if __name__ == "__main__":
    main()
