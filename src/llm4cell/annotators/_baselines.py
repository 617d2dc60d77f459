"""Baselines over a dataset's label set: ``random`` and ``most-frequent``.

They know nothing of the queries: ``random`` draws one of the dataset's true types per
query (seeded by the seed and the query id, so a re-run draws the same), and
``most-frequent`` answers the dataset's most frequent true type everywhere. They answer
clusters only when given the label set (a bench dataset gives it); their puzzle face is
:class:`~llm4cell.puzzles._solvers.RandomSolver` /
:class:`~llm4cell.puzzles._solvers.MostFrequentSolver`.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from .._records import Annotation, MarkerQuery
from ..llm._options import BASELINES
from ..ontology._graph import load_ontology

__all__ = ["BASELINES", "Labels", "VocabBaseline", "by_frequency"]

#: A dataset's label set: (label as written, CL ID or None, weight), one per distinct label.
Labels = Sequence[tuple[str, str | None, float]]


def by_frequency(labels: Labels) -> list[tuple[str, str | None, float]]:
    """The label set, most frequent first (ties by label)."""
    return sorted(labels, key=lambda v: (-v[2], v[0]))


class VocabBaseline:
    """``random`` / ``most-frequent`` over a dataset's true types, as an annotator.

    Parameters
    ----------
    kind
        ``"random"`` or ``"most-frequent"``.
    labels
        The dataset's label set (see :data:`Labels`).
    seed
        Seed of ``random``.
    """

    def __init__(self, kind: str, labels: Labels, seed: int = 0) -> None:
        self.kind = kind
        self.name = kind
        self.seed = seed
        onto = load_ontology()
        vocab = by_frequency(labels)
        # shown as the CL term name when there is one (truth columns may hold bare IDs)
        self.labels = [(onto.label(tid) if tid else lab, tid) for lab, tid, _ in vocab]

    def _rng(self, uid: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, zlib.crc32(uid.encode())])

    def annotate(self, queries: Sequence[MarkerQuery]) -> list[Annotation]:
        """One baseline answer per query (confidence 0: a baseline states none)."""
        out = []
        for q in queries:
            if self.kind == "random":
                lab, tid = self.labels[int(self._rng(q.id).integers(len(self.labels)))]
                how = f"random choice among the dataset's {len(self.labels)} true types"
            else:
                lab, tid = self.labels[0]
                how = "the dataset's most frequent true type"
            out.append(Annotation(id=q.id, label=lab, ontology_id=tid, confidence=0.0,
                                  evidence=how, backend=self.name))
        return out

    def provenance(self) -> dict[str, object]:
        """Kind and seed."""
        return {"backend": self.name, "seed": self.seed}
