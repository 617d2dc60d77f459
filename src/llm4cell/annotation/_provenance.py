"""The provenance record of an annotation run: what ran, on what, with which versions."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from importlib import metadata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..annotators._base import Annotator
    from ..knowledge._engine import KnowledgeBase
    from ..preprocess._expression import Expression

__all__ = ["MARKER_FILTERS", "SCHEMA_VERSION", "build_provenance", "h5ad_safe"]

#: Version of the record's layout; 2: one record per key in ``uns['llm4cell'][key]``.
SCHEMA_VERSION = 2
#: The marker filters of :func:`~llm4cell.preprocess.rank_markers`, as recorded.
MARKER_FILTERS = (
    "pval_adj < 0.05, logFC > 0.25, pct_in >= 0.10, no unannotated or cell-state/"
    "housekeeping genes (llm4cell._states)"
)
_PACKAGES = ("llm4cell", "scanpy", "anndata", "cellconsensus", "cellxgene-ontology-guide")


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "unknown"


def build_provenance(
    *,
    annotator: Annotator,
    backend: str | Annotator,
    expr: Expression,
    kb: KnowledgeBase,
    groupby: str,
    clusters_computed: bool,
    params: Mapping[str, object],
    n_cells_without_group: int,
    timings: Mapping[str, float],
) -> dict[str, object]:
    """The record of one run (see :func:`llm4cell.annotate` for what it holds)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "version": _version("llm4cell"),
        "backend": annotator.name,
        "backend_spec": backend if isinstance(backend, str) else annotator.name,
        "groupby": groupby,
        "clusters_computed": clusters_computed,
        "params": {**params, "marker_filters": MARKER_FILTERS},
        "input": expr.describe(),
        "cl_version": kb.ontology.version,
        "knowledge": kb.provenance(),
        "annotator": annotator.provenance(),
        "versions": {pkg: _version(pkg) for pkg in _PACKAGES},
        "n_cells_without_group": n_cells_without_group,
        "timings_s": {k: round(v, 4) for k, v in timings.items()},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def h5ad_safe(obj: Any) -> Any:
    """Replace values h5ad cannot store (None, empty lists) and make mappings plain dicts."""
    if isinstance(obj, Mapping):
        return {str(k): h5ad_safe(v) for k, v in obj.items()}
    if obj is None:
        return ""
    if isinstance(obj, (list, tuple)):
        return [h5ad_safe(v) for v in obj] if obj else ""
    return obj
