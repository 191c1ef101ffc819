"""The decoding settings we run a Vosk model with, whatever its own `conf/` says.

Vosk reads a model's settings only from `conf/mfcc.conf` and `conf/model.conf`, and a model's files are not ours to
change (a package or a verified install holds them). So the model is loaded from an overlay: a folder whose entries
link to the model's, with those two files rewritten. Two settings are changed, both so that the same audio always
gives the same transcript, however busy the node is:

- **No dither.** Kaldi adds random noise to every frame before its features (`--dither`, 1.0 unless a model says
  otherwise), drawn from one random state per process; so a transcript depended on what else the process had decoded
  before (the same 12 s decoded twice in a row: 5 of 21 words differ). With `--dither=0` it is a function of the
  audio alone.
- **No endpoints of Vosk's own.** Our endpointer decides where an utterance ends. Vosk's rules (a pause of 0.5-2 s, or
  20 s of speech) cut an utterance into segments; a cut on the last chunk before `final()` left the feature pipeline
  of that utterance alive in a pooled recogniser, and the next caller's words were decoded on it. The rules are set
  never to fire (a minimum utterance length no utterance reaches), so each utterance is decoded whole, with its
  language-model context across pauses, and its pipeline is dropped at `final()`.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import threading
from pathlib import Path

__all__ = ["OVERRIDES", "rewrite_conf", "overlay_dir"]

OVERRIDES: dict[str, tuple[str, ...]] = {
    "mfcc.conf": ("--dither=0",),
    "fbank.conf": ("--dither=0",),
    "model.conf": tuple(f"--endpoint.rule{i}.min-utterance-length=1e9" for i in range(1, 6)),
}
"""The lines each of the model's `conf/` files gets if it has that file (Vosk picks MFCC or filter-bank features
by which file exists, so none is added); an option the file sets itself is replaced, not repeated."""

_OPTION = re.compile(r"^\s*(--[\w.-]+)=")


def rewrite_conf(text: str, overrides: tuple[str, ...]) -> str:
    """A Kaldi options file with `overrides` (`--name=value` lines) in place of the options of those names."""
    names = {m.group(1) for line in overrides if (m := _OPTION.match(line))}
    kept = [line for line in text.splitlines() if not ((m := _OPTION.match(line)) and m.group(1) in names)]
    return "\n".join([*kept, *overrides]) + "\n"


_root: tempfile.TemporaryDirectory[str] | None = None
_lock = threading.Lock()


def overlay_dir(model_dir: Path) -> Path:
    """A folder that is `model_dir` with our decoding settings (see the module's docstring); made once per process,
    removed when it exits."""
    global _root
    with _lock:
        if _root is None:
            _root = tempfile.TemporaryDirectory(prefix="ivr-vosk-")
        model_dir = model_dir.resolve()
        target = Path(_root.name) / hashlib.sha1(str(model_dir).encode()).hexdigest()[:16] / model_dir.name
        if target.is_dir():
            return target
        (target / "conf").mkdir(parents=True)  # an old layout's root mfcc.conf is linked as it is
        for entry in model_dir.iterdir():
            if entry.name != "conf":
                (target / entry.name).symlink_to(entry)
        conf = model_dir / "conf"
        for entry in conf.iterdir() if conf.is_dir() else ():
            if entry.name in OVERRIDES:
                text = rewrite_conf(entry.read_text(encoding="utf-8"), OVERRIDES[entry.name])
                (target / "conf" / entry.name).write_text(text, encoding="utf-8")
            else:
                shutil.copy2(entry, target / "conf" / entry.name)
        return target
