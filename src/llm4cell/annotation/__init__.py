"""The annotation job: AnnData -> groups -> marker queries -> annotator -> labels written back;
and marker tables -> labels."""

from __future__ import annotations

from ._annotate import AnnotationResult, annotate, run_annotation
from ._markers import annotate_markers

__all__ = [
    "AnnotationResult",
    "annotate",
    "annotate_markers",
    "run_annotation",
]
