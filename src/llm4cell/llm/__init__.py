"""Language-model backends: OpenAI-compatible servers, Anthropic, local GGUF files,
hybrid with the knowledge engine, and consensus.

Most users only pass a backend spec (``llm4cell.annotate(adata, backend="openai:gpt-4o")``)
and, to change how the model is called, :class:`LLMOptions`
(``backend_options=LLMOptions(strategy="cot")``). See ``docs/llm.md``.
"""

from __future__ import annotations

from ._annotator import HybridAnnotator, LLMAnnotator
from ._answers import ClusterAnswer, answer_schema, parse_answers
from ._cache import ResponseCache
from ._consensus import ConsensusAnnotator, Vote, consensus_vote
from ._options import LLMOptions, default_cache_path, parse_spec
from ._runner import RunStats, load_prices

__all__ = [
    "ClusterAnswer",
    "ConsensusAnnotator",
    "HybridAnnotator",
    "LLMAnnotator",
    "LLMOptions",
    "ResponseCache",
    "RunStats",
    "Vote",
    "answer_schema",
    "consensus_vote",
    "default_cache_path",
    "load_prices",
    "parse_answers",
    "parse_spec",
]
