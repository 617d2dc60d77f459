"""The hybrid annotator: the knowledge engine's candidates and evidence, judged by an LLM."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .._records import Annotation, MarkerQuery, Progress
from ..llm._options import LLMOptions
from ._knowledge import KnowledgeAnnotator
from ._llm import LLMAnnotator

__all__ = ["HybridAnnotator"]


class HybridAnnotator:
    """The knowledge engine's candidates and evidence, judged by a language model.

    With ``options.llm_when == "uncertain"`` the model is asked only for clusters whose
    knowledge confidence is below ``options.uncertain_below``; the others keep the
    engine's answer. When the model gives no valid answer, the engine's answer stands
    (the evidence says so); a deliberate "unknown" from the model is kept.
    """

    def __init__(self, llm: LLMAnnotator, options: LLMOptions) -> None:
        self.llm = llm
        self.options = options
        self.knowledge = KnowledgeAnnotator()
        self.name = options.name or f"hybrid:{llm.name}"
        self.n_asked = 0

    def __repr__(self) -> str:
        return f"HybridAnnotator({self.name!r}, llm_when={self.options.llm_when!r})"

    @property
    def progress(self) -> Progress | None:
        """Progress callback of the LLM part."""
        return self.llm.progress

    @progress.setter
    def progress(self, value: Progress | None) -> None:
        self.llm.progress = value

    def check(self) -> None:
        """Fail fast when the model cannot answer."""
        self.llm.check()

    def _asked(self, kn: Annotation) -> bool:
        return self.options.llm_when == "always" or kn.confidence < self.options.uncertain_below

    def annotate(self, queries: Sequence[MarkerQuery]) -> list[Annotation]:
        """Knowledge first, then the model where asked (see the class docstring)."""
        queries = list(queries)
        kn = {a.id: a for a in self.knowledge.annotate(queries)}
        asked = [q for q in queries if self._asked(kn[q.id])]
        self.n_asked += len(asked)
        llm = {a.id: a for a in self.llm.annotate(asked, knowledge=kn)} if asked else {}
        out = []
        threshold = self.options.uncertain_below
        for q in queries:
            k = kn[q.id]
            k_text = (f"knowledge: {k.label} ({k.ontology_id}, confidence {k.confidence:.2f})"
                      if k.ontology_id else "knowledge: unknown")
            if q.id not in llm:
                out.append(k.model_copy(update={
                    "backend": self.name,
                    "evidence": f"LLM not asked (knowledge confidence {k.confidence:.2f} >= "
                                f"{threshold:.2f}); {k.evidence}",
                    "details": {"llm_asked": False, "knowledge_confidence": k.confidence},
                }))
                continue
            a = llm[q.id]
            failed = a.ontology_id is None and "no valid answer" in a.evidence
            if failed and k.ontology_id is not None:
                out.append(k.model_copy(update={
                    "backend": self.name,
                    "evidence": f"{a.evidence}; the knowledge answer stands: {k.evidence}",
                    "details": {"llm_asked": True, "llm_valid": False,
                                "knowledge_confidence": k.confidence},
                }))
                continue
            ids = {c.ontology_id for c in a.candidates}
            cands = list(a.candidates) + [c for c in k.candidates if c.ontology_id not in ids]
            if a.ontology_id is None:
                verdict = "the LLM found no cell type"
            elif a.ontology_id == k.ontology_id:
                verdict = "the LLM agrees with the knowledge engine"
            elif a.ontology_id in {c.ontology_id for c in k.candidates}:
                verdict = "the LLM chose another knowledge candidate"
            else:
                verdict = "the LLM proposed a type outside the knowledge candidates"
            out.append(a.model_copy(update={
                "backend": self.name, "candidates": tuple(cands),
                "evidence": f"{verdict}; {a.evidence}; {k_text}",
                "details": {"llm_asked": True, "llm_valid": True,
                            "knowledge_confidence": k.confidence},
            }))
        return out

    def reconsider(self, queries: Sequence[MarkerQuery], own: Mapping[str, Annotation],
                   others: Mapping[str, list[tuple[str, str, str]]]) -> list[Annotation]:
        """The consensus discussion round, answered by the model."""
        got = self.llm.reconsider(queries, own, others)
        return [a.model_copy(update={"backend": self.name}) for a in got]

    def provenance(self) -> dict[str, object]:
        """The LLM's provenance plus the hybrid settings and the knowledge base."""
        return {
            "backend": self.name,
            "llm": self.llm.provenance(),
            "llm_when": self.options.llm_when,
            "uncertain_below": self.options.uncertain_below,
            "n_asked": self.n_asked,
            "knowledge": self.knowledge.provenance(),
        }
