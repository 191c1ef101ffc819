from __future__ import annotations

from pathlib import Path

import pytest

from ivr.flow import Flow, load_flow
from ivr.flow.model import Kb
from ivr.kb import KnowledgeBase, load_kb
from prompts import PromptLibrary, load_catalogue
from prompts.files import FilePrompts

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def catalogue():
    return load_catalogue(REPO / "prompts" / "catalogue.yaml")


@pytest.fixture(scope="session")
def shipped_kb() -> KnowledgeBase:
    return load_kb(REPO / "kb")


@pytest.fixture(scope="session")
def hotline(catalogue, shipped_kb: KnowledgeBase) -> Flow:
    return load_flow(REPO / "flows" / "hotline.yaml", catalogue.prompts, shipped_kb.by_id)


@pytest.fixture(scope="session")
def library(catalogue, prompt_cache: Path, hotline: Flow, shipped_kb: KnowledgeBase,
            tmp_path_factory: pytest.TempPathFactory) -> PromptLibrary:
    """The shipped prompts, and those of the entries the shipped flow's kb nodes offer by key."""
    from flow_harness import rendered_kb

    top = [eid for node in hotline.nodes.values() if isinstance(node, Kb) for eid in node.top]
    cache = rendered_kb(shipped_kb, top, tmp_path_factory.mktemp("kb-prompts"))
    return PromptLibrary(catalogue, prompt_cache, REPO / "prompts" / "recorded", extra=FilePrompts(cache))


@pytest.fixture(scope="session")
def fake_engine():
    from flow_harness import FixtureEngine

    return FixtureEngine()
