"""The offline knowledge engine as an annotator."""

from __future__ import annotations

from collections.abc import Sequence

from .._records import Annotation, MarkerQuery
from ..knowledge._engine import KnowledgeBase, load_knowledge

__all__ = ["KnowledgeAnnotator"]


class KnowledgeAnnotator:
    """The offline knowledge engine as an :class:`~llm4cell.Annotator`."""

    name = "knowledge"

    def __init__(self, kb: KnowledgeBase | None = None) -> None:
        self.kb = kb or load_knowledge()

    def annotate(self, queries: Sequence[MarkerQuery]) -> list[Annotation]:
        """Score every query against every cell type (see :mod:`llm4cell.knowledge`)."""
        return [a.model_copy(update={"backend": self.name}) for a in self.kb.annotate(queries)]

    def provenance(self) -> dict[str, object]:
        """Backend name and knowledge base description."""
        return {"backend": self.name, **self.kb.provenance()}
