"""Ontology-aware metrics and the scoring of prediction tables.

Every ontology metric takes Cell Ontology (CL) IDs; free text is mapped to IDs by
:func:`score` (through :func:`llm4cell.ontology.match_label`). The ontology is
:func:`llm4cell.ontology.load_ontology` unless ``ontology=`` is given. One module per
concept, each documenting its definitions:

- ``_base``: resolving IDs (obsolete terms replaced) and what counts as missing;
- ``_ontology``: :func:`ontology_agreement`, :func:`hierarchical_prf`,
  :func:`lca_similarity`;
- ``_text``: :func:`text_exact_match`, :func:`rouge1_f1` (SOAR-style);
- ``_puzzle``: :func:`cell_level_accuracy`, :func:`batch_level_accuracy`;
- ``_calibration``: :func:`reliability_bins`, :func:`expected_calibration_error`;
- ``_pairs``: :func:`score_pairs` (one row per pair) and :func:`summarize`;
- ``_score``: :func:`score`, predictions against the truth from files, tables or AnnData.
"""

from __future__ import annotations

from ._calibration import expected_calibration_error, reliability_bins
from ._ontology import hierarchical_prf, lca_similarity, ontology_agreement
from ._pairs import METRIC_COLUMNS, score_pairs, summarize
from ._puzzle import batch_level_accuracy, cell_level_accuracy
from ._score import ScoreResult, score
from ._text import rouge1_f1, text_exact_match

__all__ = [
    "METRIC_COLUMNS",
    "ScoreResult",
    "batch_level_accuracy",
    "cell_level_accuracy",
    "expected_calibration_error",
    "hierarchical_prf",
    "lca_similarity",
    "ontology_agreement",
    "reliability_bins",
    "rouge1_f1",
    "score",
    "score_pairs",
    "summarize",
    "text_exact_match",
]
