"""What every metric shares: resolving IDs, missing values, the harmonic mean.

Before scoring, the predicted and the true ID are *resolved*: a live term is kept, an
obsolete term is replaced by its ``replaced_by`` term (following the chain when the
replacement is itself obsolete) and everything else counts as **missing**: ``None``,
NaN, an empty string, an ID that is not in the ontology, an obsolete term without a live
replacement. Then, for every metric of :mod:`llm4cell.metrics`:

* **truth missing** -> ``nan``: the row cannot be scored (:func:`summarize` leaves it
  out and counts it in ``n_unscored``);
* **prediction missing** (e.g. an "unknown" answer) -> the worst score, ``0``.
"""

from __future__ import annotations

import pandas as pd

from ..ontology._graph import CellOntology, load_ontology

__all__: list[str] = []

_NAN = float("nan")


def _onto(ontology: CellOntology | None) -> CellOntology:
    return ontology if ontology is not None else load_ontology()


def _is_missing(value: object) -> bool:
    """None, NaN / pd.NA or a blank string."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _resolve(term_id: object, onto: CellOntology) -> str | None:
    """A live CL ID for ``term_id`` (following replacement chains); None when missing."""
    if _is_missing(term_id) or not isinstance(term_id, str):
        return None
    return onto.resolve(term_id.strip())


def _harmonic(precision: float, recall: float) -> float:
    total = precision + recall
    return 2 * precision * recall / total if total > 0 else 0.0
