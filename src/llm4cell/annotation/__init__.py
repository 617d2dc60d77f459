"""The annotation job: AnnData -> groups -> marker queries -> annotator -> a result that
writes itself back (``obs`` columns, ``uns['llm4cell'][key]``, CSV, report); and marker
tables -> labels."""

from __future__ import annotations

from ._annotate import annotate, run_annotation
from ._keys import get_provenance
from ._markers import annotate_markers
from ._result import AnnotationResult

__all__ = [
    "AnnotationResult",
    "annotate",
    "annotate_markers",
    "get_provenance",
    "run_annotation",
]
