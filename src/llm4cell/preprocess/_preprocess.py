"""Former home of the preprocessing code, kept only for importers not yet moved.

Import from the concept modules instead: :mod:`._matrix` (what ``X`` holds),
:mod:`._expression` (``prepare_expression``), :mod:`._cluster` and :mod:`._markers`
(``rank_markers``). Delete this file once nothing imports it.
"""

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
