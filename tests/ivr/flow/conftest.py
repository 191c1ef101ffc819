from __future__ import annotations

from pathlib import Path

import pytest

from ivr.flow import Flow, load_flow
from prompts import PromptLibrary, load_catalogue

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
