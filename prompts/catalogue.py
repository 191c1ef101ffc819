"""The prompt catalogue file: prompt id -> Mandarin text, with an optional elderly-style text.

An entry whose text holds ``{n}`` is a counted sentence (您前面还有{n}位来电在等待): `values` says which counts
`ivr prompts build` renders whole, and `pieces` names the prompts said before and after the count when a call
needs a count outside them (spliced from pieces at run time).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from prompts.numbers import normalise

__all__ = ["STYLES", "PromptText", "CountedText", "Catalogue", "PromptError", "VoiceUnavailable", "load_catalogue"]

STYLES = ("standard", "slow", "loud", "slow_loud", "elderly")
"""How prompts are rendered: the standard text at the normal rate and level, slower, louder or both (for a caller
who asked, 说慢点 / 大声点, for the rest of the call), and the elderly path's simpler text, slower and louder."""


class PromptError(ValueError):
    """A bad prompt catalogue, or a prompt that cannot be rendered or played."""


class VoiceUnavailable(PromptError):
    """The voice asked for is not installed; the message says how to install it."""


@dataclass(frozen=True)
class PromptText:
    id: str
    text: str
    elderly_text: str

    def for_style(self, style: str) -> str:
        return self.elderly_text if style == "elderly" else self.text

    def digest(self, style: str) -> str:
        """Key of the rendered file: changes when the text or style changes."""
        return hashlib.sha256(f"{style}\n{self.for_style(style)}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CountedText:
    """A sentence with a count in it: rendered whole for each of `values`, else said as `before`, the count, `after`
    (prompt ids, "" for nothing)."""

    id: str
    text: str  # with {n}
    elderly_text: str
    values: tuple[int, ...]
    before: str
    after: str

    @property
    def counting(self) -> bool:
        """Whether 2 is said 两 here (两位, 两分钟), as the normaliser reads the whole sentence."""
        return normalise(self.text.replace("{n}", "2")) == self.text.replace("{n}", "两")

    def sentence_id(self, n: int) -> str:
        return f"{self.id}_{n}"

    def sentences(self) -> list[PromptText]:
        """The whole sentence for each value, as prompts of their own (e.g. queue_position_15)."""
        return [PromptText(self.sentence_id(n), self.text.replace("{n}", str(n)),
                           self.elderly_text.replace("{n}", str(n))) for n in self.values]


@dataclass(frozen=True)
class Catalogue:
    path: Path
    prompts: dict[str, PromptText]
    counted: dict[str, CountedText] = field(default_factory=dict)

    def sentences(self) -> dict[str, tuple[CountedText, PromptText]]:
        """Every counted sentence's whole renderings by id: queue_position_15 -> (queue_position, its text)."""
        return {s.id: (c, s) for c in self.counted.values() for s in c.sentences()}

    def __contains__(self, prompt_id: str) -> bool:
        return prompt_id in self.prompts

    def __getitem__(self, prompt_id: str) -> PromptText:
        try:
            return self.prompts[prompt_id]
        except KeyError:
            raise PromptError(f"prompt {prompt_id!r} is not in {self.path}") from None


def load_catalogue(path: Path) -> Catalogue:
    """Load and check a catalogue file: every entry needs a non-empty `text`."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PromptError(f"{path}: prompt catalogue not found") from None
    except yaml.YAMLError as exc:
        raise PromptError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise PromptError(f"{path}: expected a mapping of prompt id -> text")
    prompts: dict[str, PromptText] = {}
    counted: dict[str, dict[str, object]] = {}
    for pid, entry in raw.items():
        if isinstance(entry, str):
            entry = {"text": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str) or not entry["text"].strip():
            raise PromptError(f"{path}: prompt {pid!r} needs a non-empty text")
        elderly = entry.get("elderly", entry["text"])
        if not isinstance(elderly, str) or not elderly.strip():
            raise PromptError(f"{path}: prompt {pid!r} has an empty elderly text")
        prompts[str(pid)] = PromptText(str(pid), entry["text"].strip(), elderly.strip())
        if "{n}" in entry["text"] or "values" in entry or "pieces" in entry:
            counted[str(pid)] = entry
    catalogue = Catalogue(path, prompts)
    return Catalogue(path, {k: v for k, v in prompts.items() if k not in counted},
                     {pid: _counted(catalogue, prompts[pid], entry) for pid, entry in counted.items()})


_RANGE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")


def _counted(catalogue: Catalogue, prompt: PromptText, entry: dict[str, object]) -> CountedText:
    where = f"{catalogue.path}: prompt {prompt.id!r}"
    if prompt.text.count("{n}") != 1 or prompt.elderly_text.count("{n}") != 1:
        raise PromptError(f"{where} needs {{n}} once in its text (and its elderly text), where the count is said")
    raw_values = entry.get("values")
    span = _RANGE.match(raw_values) if isinstance(raw_values, str) else None
    if span is None or not 0 <= int(span[1]) <= int(span[2]):
        raise PromptError(f"{where} has values {raw_values!r}: expected the counts rendered whole, like 1-30")
    pieces = entry.get("pieces")
    if not isinstance(pieces, list) or len(pieces) != 2 or not all(p is None or isinstance(p, str) for p in pieces):
        raise PromptError(f"{where} needs pieces: [before, after], the prompts said around a count outside its "
                          f"values (null for none)")
    before, after = (p or "" for p in pieces)
    for piece in (before, after):
        if piece and piece not in catalogue:
            raise PromptError(f"{where} names the piece {piece!r}, which is not in the catalogue")
    for style in ("standard", "elderly"):
        spliced = "{n}".join(catalogue[p].for_style(style) if p else "" for p in (before, after))
        if spliced != prompt.for_style(style):
            raise PromptError(f"{where}: its pieces say {spliced!r}, not {prompt.for_style(style)!r} ({style})")
    return CountedText(prompt.id, prompt.text, prompt.elderly_text, tuple(range(int(span[1]), int(span[2]) + 1)),
                       before, after)
