"""Ontology-aware metrics (agreement, hierarchical F1, LCA), text and puzzle metrics,
calibration, and scoring of prediction tables."""

from __future__ import annotations

from ._metrics import (
    METRIC_COLUMNS,
    batch_level_accuracy,
    cell_level_accuracy,
    expected_calibration_error,
    hierarchical_prf,
    lca_similarity,
    ontology_agreement,
    reliability_bins,
    rouge1_f1,
    score_pairs,
    summarize,
    text_exact_match,
)
from ._score import ScoreResult, score

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
