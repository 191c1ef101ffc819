"""The policy knowledge base: entries in `kb/*.yaml`, checked at load, searched from what a caller said.

    KbError        a knowledge base that cannot be loaded: file, entry and reason (ivr.kb.model)
"""
from ivr.kb.loader import check_kb, load_kb
from ivr.kb.model import Entry, Finding, KbError, Source
from ivr.kb.registry import KbRegistry
from ivr.kb.search import DEFAULT_THRESHOLD, Hit, KnowledgeBase

__all__ = ["Entry", "Source", "Finding", "KbError", "KnowledgeBase", "Hit", "DEFAULT_THRESHOLD", "load_kb",
           "check_kb", "KbRegistry"]
