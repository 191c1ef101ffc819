"""The prompt catalogue file: prompt id -> Mandarin text, with an optional elderly-style text."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = ["STYLES", "PromptText", "Catalogue", "PromptError", "VoiceUnavailable", "load_catalogue"]

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
class Catalogue:
    path: Path
    prompts: dict[str, PromptText]

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
    for pid, entry in raw.items():
        if isinstance(entry, str):
            entry = {"text": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str) or not entry["text"].strip():
            raise PromptError(f"{path}: prompt {pid!r} needs a non-empty text")
        elderly = entry.get("elderly", entry["text"])
        if not isinstance(elderly, str) or not elderly.strip():
            raise PromptError(f"{path}: prompt {pid!r} has an empty elderly text")
        prompts[str(pid)] = PromptText(str(pid), entry["text"].strip(), elderly.strip())
    return Catalogue(path, prompts)
