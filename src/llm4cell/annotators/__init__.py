"""Annotators: one protocol (queries -> annotations keyed by id), one registry that builds them."""

from __future__ import annotations

from ._consensus import ConsensusAnnotator, Vote, consensus_vote
from ._llm import HybridAnnotator, LLMAnnotator
from ._registry import (
    BACKENDS,
    Annotator,
    BackendSpec,
    KnowledgeAnnotator,
    check_answers,
    get_annotator,
    show,
)

__all__ = [
    "BACKENDS",
    "Annotator",
    "BackendSpec",
    "ConsensusAnnotator",
    "HybridAnnotator",
    "KnowledgeAnnotator",
    "LLMAnnotator",
    "Vote",
    "check_answers",
    "consensus_vote",
    "get_annotator",
    "show",
]
