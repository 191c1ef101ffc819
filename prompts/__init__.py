"""Prompt catalogue (id -> Mandarin text, standard and elderly style), renderer and the library calls play from."""
from prompts.catalogue import Catalogue, PromptError, PromptText, load_catalogue
from prompts.library import PromptLibrary

__all__ = ["Catalogue", "PromptError", "PromptText", "load_catalogue", "PromptLibrary"]
