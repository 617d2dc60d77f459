"""Language-model transport: OpenAI-compatible servers, Anthropic and local GGUF clients,
the request runner (retries, concurrency, accounting), the response cache, prompts and
structured answers. The annotators built on it live in :mod:`llm4cell.annotators`.

Most users only pass a backend spec (``llm4cell.annotate(adata, backend="openai:gpt-4o")``)
and, to change how the model is called, :class:`LLMOptions`
(``backend_options=LLMOptions(strategy="cot")``). See ``docs/llm.md``.
"""

from __future__ import annotations

from ._answers import ClusterAnswer, answer_schema, parse_answers
from ._cache import ResponseCache
from ._options import LLMOptions, default_cache_path, parse_spec
from ._runner import RunStats, load_prices

__all__ = [
    "ClusterAnswer",
    "LLMOptions",
    "ResponseCache",
    "RunStats",
    "answer_schema",
    "default_cache_path",
    "load_prices",
    "parse_answers",
    "parse_spec",
]
