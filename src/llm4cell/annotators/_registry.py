"""Annotators: one small protocol, several implementations, one registry.

Every annotator turns :class:`~llm4cell.MarkerQuery` objects into
:class:`~llm4cell.Annotation` objects keyed by query id; nothing downstream knows which
one ran. :func:`check_answers` enforces that every query got exactly one answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import pandas as pd

from .._errors import BackendError, InputError
from .._records import Annotation, MarkerQuery
from ..knowledge._engine import KnowledgeBase, load_knowledge

if TYPE_CHECKING:
    from ..llm._options import LLMOptions, ParsedSpec

__all__ = [
    "BACKENDS",
    "Annotator",
    "BackendSpec",
    "KnowledgeAnnotator",
    "check_answers",
    "get_annotator",
    "show",
]


@runtime_checkable
class Annotator(Protocol):
    """What every backend provides."""

    name: str

    def annotate(self, queries: Sequence[MarkerQuery]) -> list[Annotation]:
        """One annotation per query, keyed by ``query.id``."""
        ...

    def provenance(self) -> dict[str, object]:
        """What ran, with which parameters and data versions."""
        ...


@dataclass(frozen=True)
class BackendSpec:
    """A registered backend: name, description, network need and reference."""

    name: str
    desc: str
    needs_network: bool
    reference: str


#: The backends this version of llm4cell can run.
BACKENDS: list[BackendSpec] = [
    BackendSpec(
        name="knowledge",
        desc="Deterministic marker-enrichment scoring over the cellconsensus database, "
        "grounded in the Cell Ontology (offline).",
        needs_network=False,
        reference="cellconsensus (tansey-lab); Cell Ontology via cellxgene-ontology-guide",
    ),
    BackendSpec(
        name="openai:MODEL",
        desc="Any OpenAI-compatible chat server: OpenAI, vLLM, Ollama, llama.cpp, "
        "OpenRouter, LM Studio (base URL and key from flags or OPENAI_BASE_URL / "
        "OPENAI_API_KEY). Needs llm4cell[llm].",
        needs_network=True,
        reference="OpenAI Chat Completions API",
    ),
    BackendSpec(
        name="anthropic:MODEL",
        desc="Anthropic's Messages API (key from ANTHROPIC_API_KEY); structured answers "
        "through a forced tool call. Needs llm4cell[llm].",
        needs_network=True,
        reference="Anthropic Messages API",
    ),
    BackendSpec(
        name="llamacpp:PATH.gguf",
        desc="A local GGUF model file run in-process by llama-cpp-python (offline). "
        "Needs llm4cell[local].",
        needs_network=False,
        reference="llama.cpp / llama-cpp-python",
    ),
    BackendSpec(
        name="hybrid:SPEC",
        desc="The knowledge engine's candidates, matched markers and answer given to an "
        "LLM, which chooses or proposes another; optionally only where the engine is "
        "uncertain.",
        needs_network=True,
        reference="llm4cell",
    ),
    BackendSpec(
        name="consensus:SPEC,SPEC,...",
        desc="Several annotators; consensus, proportion and entropy measured on the Cell "
        "Ontology, with one discussion round where they disagree.",
        needs_network=True,
        reference="llm4cell (after mLLMCelltype's multi-model consensus)",
    ),
]


def show() -> pd.DataFrame:
    """The backend registry as a table (one row per backend)."""
    return pd.DataFrame([asdict(b) for b in BACKENDS])


class KnowledgeAnnotator:
    """The offline knowledge engine as an :class:`Annotator`."""

    name = "knowledge"

    def __init__(self, kb: KnowledgeBase | None = None) -> None:
        self.kb = kb or load_knowledge()

    def annotate(self, queries: Sequence[MarkerQuery]) -> list[Annotation]:
        """Score every query against every cell type (see :mod:`llm4cell.knowledge`)."""
        return [a.model_copy(update={"backend": self.name}) for a in self.kb.annotate(queries)]

    def provenance(self) -> dict[str, object]:
        """Backend name and knowledge base description."""
        return {"backend": self.name, **self.kb.provenance()}


def get_annotator(
    spec: str | Annotator,
    options: LLMOptions | Mapping[str, object] | None = None,
    *,
    check: bool = True,
) -> Annotator:
    """The annotator for a backend spec string or an annotator object.

    Parameters
    ----------
    spec
        ``"knowledge"``, ``"openai:MODEL"``, ``"anthropic:MODEL"``, ``"llamacpp:PATH.gguf"``,
        ``"hybrid:<llm spec>"``, ``"consensus:<spec>,<spec>,..."`` (see
        :mod:`llm4cell.llm._options` for ``?key=value`` options), or an annotator.
    options
        How LLM backends are called (:class:`~llm4cell.llm.LLMOptions` or a dict of its
        fields); ignored by the knowledge backend.
    check
        Check at once that every LLM backend can answer (key present, server reachable,
        model served, model file loads), so that a bad setup fails before any work.

    Raises
    ------
    BackendError
        For unknown specs, bad options, missing packages, keys or servers.
    """
    if not isinstance(spec, str):
        if isinstance(spec, Annotator):
            return spec
        msg = f"backend must be a spec string or an Annotator, got {type(spec).__name__}"
        raise BackendError(msg)
    from ..llm._options import parse_spec

    parsed = parse_spec(spec)
    opts = as_options(options)
    return _build(parsed, opts, check)


def as_options(options: LLMOptions | Mapping[str, object] | None) -> LLMOptions:
    """LLMOptions from None, an LLMOptions or a dict of its fields.

    Raises
    ------
    BackendError
        When the dict holds unknown fields or bad values.
    """
    from ..llm._options import LLMOptions

    if options is None:
        return LLMOptions()
    if isinstance(options, LLMOptions):
        return options
    try:
        return LLMOptions.model_validate(dict(options))
    except ValueError as e:
        msg = f"bad LLM options: {' '.join(str(e).split())[:300]}"
        raise BackendError(msg) from None


def _build(parsed: ParsedSpec, opts: LLMOptions, check: bool) -> Annotator:
    from ..llm._options import merge_options, parse_spec
    from ._consensus import ConsensusAnnotator
    from ._llm import HybridAnnotator, LLMAnnotator

    if parsed.kind == "knowledge":
        return KnowledgeAnnotator()
    if parsed.kind == "hybrid":
        inner = parse_spec(parsed.members[0])
        llm = _build(inner, opts.model_copy(update={"name": None}), check)
        return HybridAnnotator(llm, opts)  # type: ignore[arg-type]
    if parsed.kind == "consensus":
        members = [_build(parse_spec(m), opts.model_copy(update={"name": None}), check)
                   for m in parsed.members]
        return ConsensusAnnotator(members, opts)
    annotator = LLMAnnotator(parsed, merge_options(opts, parsed.options))
    if check:
        annotator.check()
    return annotator


def check_answers(
    queries: Sequence[MarkerQuery], annotations: Sequence[Annotation]
) -> dict[str, Annotation]:
    """Annotations by query id, after checking every query got exactly one answer.

    Raises
    ------
    InputError
        On duplicate query ids.
    BackendError
        When an answer is missing, duplicated or for an id that was not asked.
    """
    ids = [q.id for q in queries]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        msg = f"duplicate query ids {dup}; every group needs a unique id"
        raise InputError(msg)
    by_id: dict[str, Annotation] = {}
    for a in annotations:
        if a.id in by_id:
            msg = f"the backend answered query {a.id!r} twice"
            raise BackendError(msg)
        by_id[a.id] = a
    missing = [i for i in ids if i not in by_id]
    extra = [i for i in by_id if i not in set(ids)]
    if missing or extra:
        msg = f"the backend's answers do not match the queries (missing {missing}, extra {extra})"
        raise BackendError(msg)
    return by_id
