"""Helpers for knowledge-base tests: a copy of the fixture knowledge base to edit."""
from __future__ import annotations

import shutil
from pathlib import Path

FIXTURE = Path(__file__).parent / "fixture_kb"


def fixture_copy(tmp_path: Path) -> Path:
    """A copy of the fixture knowledge base (two files, six entries) in `tmp_path/kb`."""
    target = tmp_path / "kb"
    shutil.copytree(FIXTURE, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    """Replace one exact piece of a file's text (fails if it is not there once)."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is in {path.name} {text.count(old)} times"
    path.write_text(text.replace(old, new), encoding="utf-8")
