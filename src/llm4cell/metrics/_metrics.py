"""Transitional: the metrics moved to one module per concept (``_ontology``, ``_text``,
``_puzzle``, ``_calibration``, ``_pairs``). Kept only while ``puzzles/_puzzles.py``,
``annotators/_consensus.py`` and ``bench/_run.py`` (other owners) still import from here;
delete it once they import from the concept modules."""

from __future__ import annotations

from ._calibration import expected_calibration_error, reliability_bins
from ._ontology import hierarchical_prf, lca_similarity, ontology_agreement
from ._pairs import METRIC_COLUMNS, score_pairs, summarize
from ._puzzle import batch_level_accuracy, cell_level_accuracy
from ._text import rouge1_f1, text_exact_match

__all__ = [
    "METRIC_COLUMNS",
    "batch_level_accuracy",
    "cell_level_accuracy",
    "expected_calibration_error",
    "hierarchical_prf",
    "lca_similarity",
    "ontology_agreement",
    "reliability_bins",
    "rouge1_f1",
    "score_pairs",
    "summarize",
    "text_exact_match",
]
