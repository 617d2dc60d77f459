"""The knowledge engine: curated markers + Cell Ontology -> scored cell types."""

from __future__ import annotations

from ._engine import UNKNOWN, KnowledgeBase, KnowledgeParams, load_knowledge

__all__ = [
    "UNKNOWN",
    "KnowledgeBase",
    "KnowledgeParams",
    "load_knowledge",
]
