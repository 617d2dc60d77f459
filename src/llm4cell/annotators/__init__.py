"""Annotators: one protocol (queries -> annotations keyed by id), one registry that builds
every backend for every task.

``_base`` (the :class:`Annotator` protocol, :func:`check_answers`), ``_registry``
(:data:`BACKENDS`, :func:`show`, :func:`build_backend`, :func:`get_annotator`),
``_knowledge``, ``_llm``, ``_hybrid``, ``_consensus`` and ``_baselines`` (one per backend).
"""

from __future__ import annotations

from ._base import Annotator, check_answers
from ._baselines import VocabBaseline
from ._consensus import ConsensusAnnotator, Vote, consensus_vote
from ._hybrid import HybridAnnotator
from ._knowledge import KnowledgeAnnotator
from ._llm import LLMAnnotator
from ._registry import BACKENDS, TASKS, BackendSpec, build_backend, get_annotator, show

__all__ = [
    "BACKENDS",
    "TASKS",
    "Annotator",
    "BackendSpec",
    "ConsensusAnnotator",
    "HybridAnnotator",
    "KnowledgeAnnotator",
    "LLMAnnotator",
    "VocabBaseline",
    "Vote",
    "build_backend",
    "check_answers",
    "consensus_vote",
    "get_annotator",
    "show",
]
