"""``llm4cell markers``: annotate marker gene lists without expression data.

Three table formats are read and told apart by their columns:

``simple``
    One row per cluster: an id column (``id``, ``cluster``, ``group``) and a markers
    column (``markers``, ``marker``, ``genes``) holding a ranked, comma-separated list
    (best first); optional ``tissue`` and ``species`` columns.
``seurat``
    Seurat ``FindAllMarkers`` output: one row per (cluster, gene) with ``cluster``,
    ``gene``, ``avg_log2FC`` (or ``avg_logFC``), ``p_val_adj``, ``pct.1``, ``pct.2``.
    Per cluster, genes with ``avg_log2FC > 0`` are ranked by adjusted p-value, then by
    fold change (the order ``FindAllMarkers`` reports).
``scanpy``
    A ``rank_genes_groups`` export (``sc.get.rank_genes_groups_df(adata, group=None)``):
    ``group``, ``names``, ``scores``, ``logfoldchanges``, ``pvals_adj`` (optional
    ``pct_nz_group``). Per group, genes with a positive fold change are ranked by score.

For Seurat and scanpy tables, genes with an adjusted p-value of 0.05 or more are dropped
when that leaves at least 3 genes for the cluster. At most ``n_markers`` genes per
cluster are used (default 50).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

import pandas as pd

from .._errors import InputError
from .._io import read_table
from .._records import Annotation, MarkerQuery, Progress, Species, details_columns
from ..annotators._base import Annotator, check_answers
from ..annotators._registry import get_annotator

if TYPE_CHECKING:
    from ..llm import LLMOptions

__all__ = ["annotate_markers", "check_n_markers", "read_marker_table"]

_ID_COLS = ("id", "cluster", "group", "cluster_id", "celltype_id")
_MARKER_COLS = ("markers", "marker", "genes", "marker_genes", "gene_list")
_SPECIES = {"human": "human", "homo sapiens": "human", "hs": "human",
            "mouse": "mouse", "mus musculus": "mouse", "mm": "mouse"}
MAX_PVAL_ADJ = 0.05


def _detect(df: pd.DataFrame) -> str:
    cols = set(df.columns)
    if {"gene", "cluster"} <= cols and ({"avg_log2FC", "avg_logFC"} & cols):
        return "seurat"
    if {"names", "group"} <= cols and ({"scores", "logfoldchanges"} & cols):
        return "scanpy"
    if any(c in cols for c in _MARKER_COLS) and any(c in cols for c in _ID_COLS):
        return "simple"
    msg = (
        f"cannot tell the marker table's format from its columns "
        f"({', '.join(map(repr, list(df.columns)[:12]))}); give id + markers columns, "
        "Seurat FindAllMarkers output or a scanpy rank_genes_groups export"
    )
    raise InputError(msg)


def _num(df: pd.DataFrame, col: str) -> pd.Series:
    values = pd.to_numeric(df[col].replace("", None), errors="coerce")
    bad = df.loc[values.isna() & (df[col].astype(str).str.strip() != ""), col]
    if len(bad):
        msg = f"column {col!r} holds non-numbers ({', '.join(map(repr, bad.head(3)))})"
        raise InputError(msg)
    return values


def _rank_long(df: pd.DataFrame, group: str, gene: str, lfc: str, padj: str | None,
               order: list[tuple[str, bool]]) -> dict[str, list[str]]:
    work = df.copy()
    work[lfc] = _num(work, lfc)
    if padj is not None:
        work[padj] = _num(work, padj)
    for col, _ in order:
        if col not in (lfc, padj):
            work[col] = _num(work, col)
    work = work[work[lfc] > 0]
    out: dict[str, list[str]] = {}
    for g, part in work.groupby(group, sort=False):
        part = part.sort_values([c for c, _ in order], ascending=[a for _, a in order])
        if padj is not None:
            significant = part[part[padj] < MAX_PVAL_ADJ]
            if len(significant) >= 3:
                part = significant
        genes = [x.strip() for x in part[gene].astype(str) if x.strip()]
        out[str(g)] = list(dict.fromkeys(genes))
    # clusters whose genes were all filtered out stay present, empty
    for g in df[group].astype(str).unique():
        out.setdefault(g, [])
    return out


def check_n_markers(n_markers: object) -> int:
    """Refuse an impossible ``n_markers`` (below 1, not a whole number)."""
    if isinstance(n_markers, bool) or not isinstance(n_markers, int) or n_markers < 1:
        msg = f"n_markers (--n-markers) must be at least 1, got {n_markers!r}"
        raise InputError(msg)
    return n_markers


def read_marker_table(
    path: str | os.PathLike[str] | pd.DataFrame,
    *,
    tissue: str | None = None,
    species: str = "human",
    n_markers: int = 50,
) -> tuple[str, list[MarkerQuery]]:
    """Read a marker table (format detected) into one query per cluster.

    Parameters
    ----------
    path
        CSV/TSV file or DataFrame (see the module docstring for the formats).
    tissue, species
        Defaults for rows without a ``tissue`` / ``species`` column value.
    n_markers
        At most this many genes per cluster, best first.

    Returns
    -------
    The detected format (``"simple"``, ``"seurat"`` or ``"scanpy"``) and the queries in
    table order.

    Raises
    ------
    InputError
        For missing or empty files, unknown formats, repeated ids, bad numbers and
        unknown species.
    """
    check_n_markers(n_markers)
    df = path.astype(str) if isinstance(path, pd.DataFrame) else read_table(
        path, "marker table")
    fmt = _detect(df)
    tissues: dict[str, str | None] = {}
    species_of: dict[str, str] = {}
    if fmt == "simple":
        id_col = next(c for c in _ID_COLS if c in df.columns)
        marker_col = next(c for c in _MARKER_COLS if c in df.columns)
        ids = df[id_col].astype(str).str.strip()
        if (ids == "").any():
            msg = f"some rows have an empty {id_col!r}; every cluster needs an id"
            raise InputError(msg)
        if ids.duplicated().any():
            dup = ", ".join(ids[ids.duplicated()].unique()[:5])
            msg = f"ids repeat in column {id_col!r} ({dup}); give one row per cluster"
            raise InputError(msg)
        genes = {
            i: list(dict.fromkeys(
                g.strip() for g in str(v).replace(";", ",").split(",") if g.strip()))
            for i, v in zip(ids, df[marker_col], strict=True)
        }
        key = dict(zip(ids, df.index, strict=True))
    else:
        if fmt == "seurat":
            lfc = "avg_log2FC" if "avg_log2FC" in df.columns else "avg_logFC"
            padj = "p_val_adj" if "p_val_adj" in df.columns else None
            order = ([(padj, True)] if padj else []) + [(lfc, False)]
            genes = _rank_long(df, "cluster", "gene", lfc, padj, order)
            group_col = "cluster"
        else:
            lfc = "logfoldchanges" if "logfoldchanges" in df.columns else "scores"
            padj = "pvals_adj" if "pvals_adj" in df.columns else None
            order = [("scores", False)] if "scores" in df.columns else [(lfc, False)]
            genes = _rank_long(df, "group", "names", lfc, padj, order)
            group_col = "group"
        first = df.groupby(df[group_col].astype(str), sort=False).head(1)
        key = dict(zip(first[group_col].astype(str), first.index, strict=True))
    for i, row_index in key.items():
        t = df.at[row_index, "tissue"] if "tissue" in df.columns else ""
        tissues[i] = t.strip() if isinstance(t, str) and t.strip() else tissue
        s = df.at[row_index, "species"] if "species" in df.columns else ""
        s = s.strip().lower() if isinstance(s, str) and s.strip() else species
        if s not in _SPECIES:
            msg = f"unknown species {s!r} for cluster {i!r}; use human or mouse"
            raise InputError(msg)
        species_of[i] = _SPECIES[s]
    queries = [
        MarkerQuery(id=i, genes=tuple(g[:n_markers]), tissue=tissues[i],
                    species=species_of[i])  # type: ignore[arg-type]
        for i, g in genes.items()
    ]
    if not any(q.genes for q in queries):
        msg = "no cluster has a marker gene (empty lists or no positive fold change)"
        raise InputError(msg)
    return fmt, queries


def annotate_markers(
    markers: str | os.PathLike[str] | pd.DataFrame,
    *,
    backend: str | Annotator = "knowledge",
    backend_options: LLMOptions | Mapping[str, object] | None = None,
    tissue: str | None = None,
    species: Species = "human",
    n_markers: int = 50,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Annotate marker lists (one per cluster) with Cell Ontology terms.

    Parameters
    ----------
    markers
        Path or DataFrame of a marker table (simple, Seurat ``FindAllMarkers`` or scanpy
        ``rank_genes_groups`` format; see :mod:`llm4cell.annotation._markers`).
    backend
        Backend spec (``"knowledge"``, offline; ``"openai:MODEL"``, ``"anthropic:MODEL"``,
        ``"llamacpp:PATH.gguf"``, ``"hybrid:..."``, ``"consensus:..."``) or an annotator.
    backend_options
        How LLM backends are called (:class:`~llm4cell.llm.LLMOptions` or a dict).
    tissue, species
        Defaults for clusters whose row gives none.
    n_markers
        At most this many genes per cluster, best first.
    progress
        Called as ``progress(done, total)`` while an LLM backend answers.

    Returns
    -------
    One row per cluster, in table order: ``id``, ``label``, ``ontology_id``,
    ``ontology_name``, ``confidence``, ``candidates`` (JSON: the top 5 with score and
    matched genes), ``evidence`` (one line), ``n_markers``, ``tissue``, ``species``,
    ``backend``, then the backend's details when it gives any (``consensus_proportion``,
    ``consensus_entropy``, ``llm_asked``, ...). ``DataFrame.attrs["provenance"]`` holds
    the backend's provenance (model, requests, cache hits, tokens, cost).
    """
    if species not in _SPECIES:
        msg = f"species must be human or mouse, got {species!r}"
        raise InputError(msg)
    _, queries = read_marker_table(markers, tissue=tissue, species=_SPECIES[species],
                                   n_markers=n_markers)
    annotator = get_annotator(backend, options=backend_options)  # fails fast: key, server, model
    if progress is not None and hasattr(annotator, "progress"):
        annotator.progress = progress  # type: ignore[attr-defined]
    asked = [q for q in queries if q.genes]
    answers = check_answers(asked, annotator.annotate(asked)) if asked else {}
    rows = []
    given = []
    for q in queries:
        a = answers.get(q.id) or Annotation(
            id=q.id, label="unknown", ontology_id=None, confidence=0.0,
            evidence="no marker gene in the table for this cluster", backend=annotator.name,
        )
        rows.append({
            "id": q.id,
            "label": a.label,
            "ontology_id": a.ontology_id or "",
            "ontology_name": a.label if a.ontology_id else "",
            "confidence": a.confidence,
            "candidates": json.dumps([c.model_dump() for c in a.candidates]),
            "evidence": a.evidence,
            "n_markers": len(q.genes),
            "tissue": q.tissue or "",
            "species": q.species,
            "backend": a.backend,
        })
        given.append(a)
    table = pd.DataFrame(rows)
    for col, values in details_columns(given).items():
        table[col] = values
    table.attrs["provenance"] = annotator.provenance()
    return table
