"""Prompts outside the catalogue, kept as files: audio rendered from data (the knowledge base's answers).

A file is read when it is first played and read again once it changed on disk, so a prompt rendered again reaches
the next call while a call already playing the old audio keeps it (renderers replace files atomically). Recorded
WAVs win over rendered ones, as for catalogue prompts.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from asr.audio import read_wav
from asr.errors import AudioFormatError
from prompts.render import recorded_path

__all__ = ["FilePrompts"]

KEEP = 64  # prompts kept in memory (an answer of 30 s is 480 kB)


class FilePrompts:
    """Prompt id + style -> 8 kHz PCM from `<recorded_dir>` or `<cache_dir>/<style>/<id>.wav`, None when neither
    has it. Safe to call from several threads."""

    def __init__(self, cache_dir: Path, recorded_dir: Path | None = None, keep: int = KEEP) -> None:
        self.cache_dir = cache_dir
        self.recorded_dir = recorded_dir
        self.keep = keep
        self._lock = threading.Lock()
        self._held: OrderedDict[tuple[str, str], tuple[tuple[Path, int, int], bytes]] = OrderedDict()

    def path(self, prompt_id: str, style: str) -> Path | None:
        """The file a call would play: recorded first, then rendered in this style, then the standard one."""
        if self.recorded_dir is not None:
            found = recorded_path(self.recorded_dir, prompt_id, style)
            if found is not None:
                return found
        for candidate in (self.cache_dir / style / f"{prompt_id}.wav", self.cache_dir / "standard" /
                          f"{prompt_id}.wav"):
            if candidate.is_file():
                return candidate
        return None

    def audio(self, prompt_id: str, style: str = "standard") -> bytes | None:
        path = self.path(prompt_id, style)
        if path is None:
            return None
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        stamp = (path, st.st_mtime_ns, st.st_size)
        key = (prompt_id, style)
        with self._lock:
            held = self._held.get(key)
            if held is not None and held[0] == stamp:
                self._held.move_to_end(key)
                return held[1]
        try:
            pcm = read_wav(path)
        except AudioFormatError:
            return None
        with self._lock:
            self._held[key] = (stamp, pcm)
            self._held.move_to_end(key)
            while len(self._held) > self.keep:
                self._held.popitem(last=False)
        return pcm
