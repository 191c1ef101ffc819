from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from ivr.flow import Flow, load_flow  # noqa: E402
from prompts import PromptLibrary, load_catalogue  # noqa: E402

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def catalogue():
    return load_catalogue(REPO / "prompts" / "catalogue.yaml")


@pytest.fixture(scope="session")
def library(catalogue, prompt_cache: Path) -> PromptLibrary:
    return PromptLibrary(catalogue, prompt_cache, REPO / "prompts" / "recorded")


@pytest.fixture(scope="session")
def hotline(catalogue) -> Flow:
    return load_flow(REPO / "flows" / "hotline.yaml", catalogue.prompts)


@pytest.fixture(scope="session")
def fake_engine():
    from flow_harness import FixtureEngine

    return FixtureEngine()
