"""Annotators: one small protocol, several implementations, one registry.

Every annotator turns :class:`~llm4cell.MarkerQuery` objects into
:class:`~llm4cell.Annotation` objects keyed by query id; nothing downstream knows which
one ran. :func:`check_answers` enforces that every query got exactly one answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

import pandas as pd

from ._errors import BackendError, InputError
from ._records import Annotation, MarkerQuery
from .knowledge import KnowledgeBase, load_knowledge

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
]

_PLANNED = ("openai", "anthropic", "llamacpp", "hybrid", "consensus")


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


def get_annotator(spec: str | Annotator) -> Annotator:
    """The annotator for a backend spec string (``"knowledge"``) or an annotator object.

    Raises
    ------
    BackendError
        For unknown or not yet available backends.
    """
    if not isinstance(spec, str):
        if isinstance(spec, Annotator):
            return spec
        msg = f"backend must be a spec string or an Annotator, got {type(spec).__name__}"
        raise BackendError(msg)
    name = spec.split(":", 1)[0].strip().lower()
    if name == "knowledge":
        return KnowledgeAnnotator()
    if name in _PLANNED:
        msg = (
            f"backend {spec!r} is not available in this version of llm4cell; "
            "use --backend knowledge (offline)"
        )
        raise BackendError(msg)
    known = ", ".join(b.name for b in BACKENDS)
    msg = f"unknown backend {spec!r}; available: {known}"
    raise BackendError(msg)


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
