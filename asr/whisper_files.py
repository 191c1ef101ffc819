"""CTranslate2 Whisper models (for faster-whisper) in the models folder: the catalogue, install from a folder or a
zip, download file by file, verify.

A Whisper model is a folder of a few files (model.bin, config.json, tokenizer.json, vocabulary), published file by
file rather than as one archive, so the catalogue pins every file's size and SHA-256 at one revision of its
repository. Installing copies (or unpacks) the files into a work folder, checks them against the catalogue entry
of that name (if there is one), writes the install manifest (`asr.model_files.MANIFEST_NAME`, so `verify_model`
checks sizes and, deep, SHA-256) and renames the folder into place.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from asr.download import (
    ArchiveError, ChecksumError, DownloadError, ProgressCallback, exclusive, fetch, swap_in,
)
from asr.errors import ModelError, ModelInvalidError
from asr.model_files import MANIFEST_NAME, file_sha256, whisper_model_problem

__all__ = ["WhisperFile", "WhisperSpec", "WHISPER_CATALOGUE", "install_whisper", "download_whisper",
           "check_against"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WhisperFile:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class WhisperSpec:
    """One downloadable Whisper model: its files at `base_url` (a pinned revision) and what each must be."""

    name: str
    base_url: str
    files: tuple[WhisperFile, ...]
    description: str

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


_TOKENIZER = WhisperFile("tokenizer.json", 2_203_239, "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab")
_VOCABULARY = WhisperFile("vocabulary.txt", 459_861, "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913")

WHISPER_CATALOGUE: dict[str, WhisperSpec] = {
    spec.name: spec
    for spec in (
        WhisperSpec(
            name="whisper-small",
            base_url="https://huggingface.co/Systran/faster-whisper-small/resolve/536b0662742c02347bc0e980a01041f333bce120",
            files=(WhisperFile("model.bin", 483_546_902,
                               "3e305921506d8872816023e4c273e75d2419fb89b24da97b4fe7bce14170d671"),
                   WhisperFile("config.json", 2_370, "b55496ac7940a7ae47d2c01eab40edfd8701feec1229d9cce3b40014383fb828"),
                   _TOKENIZER, _VOCABULARY),
            description="Whisper small (CTranslate2, multilingual): second-pass transcription",
        ),
        WhisperSpec(
            name="whisper-medium",
            base_url="https://huggingface.co/Systran/faster-whisper-medium/resolve/08e178d48790749d25932bbc082711ddcfdfbc4f",
            files=(WhisperFile("model.bin", 1_527_906_378,
                               "9b45e1009dcc4ab601eff815b61d80e60ce3fd8c74c1a14f4a282258286b51ae"),
                   WhisperFile("config.json", 2_257, "3622a2ddc41ec0e0fd4e68c13c6830f03b90c38d89aaad184de02c8c642cf807"),
                   _TOKENIZER, _VOCABULARY),
            description="Whisper medium (CTranslate2, multilingual): more accurate, about 3x slower than small",
        ),
    )
}
"""OpenAI's Whisper (MIT) converted by the faster-whisper project; sizes and SHA-256 as published for the pinned
revisions."""


def check_against(folder: Path, spec: WhisperSpec) -> list[str]:
    """How the files in `folder` differ from the catalogue entry (sizes, then SHA-256); empty when they match."""
    problems = []
    for f in spec.files:
        path = folder / f.name
        if not path.is_file():
            problems.append(f"{f.name} is missing")
        elif path.stat().st_size != f.size:
            problems.append(f"{f.name}: {path.stat().st_size} bytes, expected {f.size}")
        elif file_sha256(path) != f.sha256:
            problems.append(f"{f.name}: SHA-256 is {file_sha256(path)}, expected {f.sha256}")
    return problems


def _model_files(root: Path) -> list[Path]:
    """The model's files in an unpacked source: at its top, or in its single top-level folder."""
    inner = [p for p in root.iterdir() if not p.name.startswith(".")]
    if len(inner) == 1 and inner[0].is_dir():
        root = inner[0]
    return [p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")]


def install_whisper(source: str | Path, models_dir: str | Path, name: str | None = None, *, force: bool = False,
                    progress: ProgressCallback | None = None, origin: str | None = None) -> Path:
    """Install a CTranslate2 Whisper model from a folder or a zip into `models_dir` as `name` (default: the
    folder's or zip's name); a name in `WHISPER_CATALOGUE` must match its pinned files. Returns the folder."""
    src = Path(source).expanduser()
    if not src.exists():
        raise ArchiveError(f"{src}: no such file or folder")
    model_name = name or src.name.removesuffix(".zip")
    if not model_name or model_name.startswith(".") or "/" in model_name:
        raise ArchiveError(f"{src}: cannot use {model_name!r} as a model name")
    mdir = Path(models_dir).expanduser()
    target = mdir / model_name
    if target.exists() and not force:
        raise ModelError(f"{target} already exists; pass --force to replace it")
    mdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".installing-{model_name}-{os.getpid()}-", dir=mdir))
    try:
        unpacked = work / "src"
        if src.is_dir():
            files = _model_files(src)
        else:
            try:
                with zipfile.ZipFile(src) as zf:
                    zf.extractall(unpacked)
            except (zipfile.BadZipFile, OSError) as exc:
                raise ArchiveError(f"{src.name}: not a readable zip archive ({exc})") from None
            files = _model_files(unpacked)
        model = work / "model"
        model.mkdir()
        total = sum(p.stat().st_size for p in files)
        done = 0
        for p in files:
            shutil.copyfile(p, model / p.name)
            done += p.stat().st_size
            if progress is not None:
                progress("unpack", done, total)
        problem = whisper_model_problem(model)
        if problem:
            raise ModelInvalidError(f"{src.name}: {problem.split(': ', 1)[-1]}")
        spec = WHISPER_CATALOGUE.get(model_name)
        if spec is not None:
            problems = check_against(model, spec)
            if problems:
                raise ChecksumError(f"{src.name} is not {model_name}: {'; '.join(problems)}")
        manifest = {
            "name": model_name, "kind": "whisper", "source": origin or str(src.resolve()),
            "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "files": {p.name: [p.stat().st_size, file_sha256(p)] for p in sorted(model.iterdir())},
        }
        (model / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
        swap_in(model, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("installed Whisper model %s at %s", model_name, target)
    return target


def download_whisper(spec: WhisperSpec, models_dir: str | Path, cache_dir: str | Path, *, base_url: str | None = None,
                     force: bool = False, progress: ProgressCallback | None = None, timeout: float = 60.0) -> Path:
    """Download every file of `spec` (resumable; each checked against its pinned SHA-256, a wrong one discarded)
    into `cache_dir`, then install them. `base_url`: a mirror holding the same files."""
    target = Path(models_dir).expanduser() / spec.name
    if target.exists() and not force:
        raise ModelError(f"{target} already exists; pass --force to replace it")
    folder = Path(cache_dir) / f"{spec.name}.parts"
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    needed = sum(f.size - ((folder / f.name).stat().st_size if (folder / f.name).exists() else 0) for f in spec.files)
    if needed > free:
        raise DownloadError(f"{spec.name}: the download needs {needed} more bytes, {folder} has {free} free")
    source = (base_url or spec.base_url).rstrip("/")
    with exclusive(folder / ".lock", spec.name):
        for f in spec.files:
            dest = folder / f.name
            fetch(f"{source}/{f.name}", dest, f.size, progress=progress, timeout=timeout)
            digest = file_sha256(dest)
            if digest != f.sha256:
                dest.unlink()
                raise ChecksumError(f"{source}/{f.name}: SHA-256 is {digest}, expected {f.sha256}; "
                                    "the download was discarded")
        path = install_whisper(folder, models_dir, spec.name, force=force, progress=progress, origin=source)
    shutil.rmtree(folder, ignore_errors=True)
    return path
