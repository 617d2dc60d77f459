"""Expression preparation: what X holds, normalisation, clustering, marker ranking."""

from __future__ import annotations

from ._preprocess import (
    Expression,
    MatrixKind,
    check_can_cluster,
    cluster,
    detect_matrix_kind,
    prepare_expression,
    rank_markers,
)

__all__ = [
    "Expression",
    "MatrixKind",
    "check_can_cluster",
    "cluster",
    "detect_matrix_kind",
    "prepare_expression",
    "rank_markers",
]
