"""Expression preparation: what X holds, normalisation, clustering, marker ranking."""

from __future__ import annotations

from ._cluster import check_can_cluster, cluster
from ._expression import Expression, prepare_expression
from ._markers import rank_markers
from ._matrix import MatrixKind, detect_matrix_kind

__all__ = [
    "Expression",
    "MatrixKind",
    "check_can_cluster",
    "cluster",
    "detect_matrix_kind",
    "prepare_expression",
    "rank_markers",
]
