"""``annotate``: the main job, from an AnnData to Cell Ontology labels per cell."""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING

import anndata as ad
import numpy as np
import pandas as pd

from .._errors import InputError
from .._progress import Stages
from .._records import Annotation, MarkerQuery, Species, details_columns
from ..annotators._registry import Annotator, check_answers, get_annotator
from ..knowledge._engine import UNKNOWN, load_knowledge
from ..preprocess._preprocess import (
    Expression,
    check_can_cluster,
    cluster,
    prepare_expression,
    rank_markers,
)

if TYPE_CHECKING:
    from ..llm import LLMOptions

__all__ = ["AnnotationResult", "annotate", "run_annotation", "write_outputs"]

UNS_KEY = "llm4cell"
SCHEMA_VERSION = 1
MAX_GROUPS = 1000


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "unknown"


def _candidate_text(a: Annotation, k: int) -> list[str]:
    """The ``k`` best candidates other than the answer, as ``name (CL:ID, score)``."""
    others = [c for c in a.candidates if c.ontology_id != a.ontology_id]
    out = [f"{c.label} ({c.ontology_id}, {c.score:.2f})" for c in others[:k]]
    return out + [""] * (k - len(out))


@dataclass
class AnnotationResult:
    """Labels, confidence and evidence for every group of cells.

    Attributes
    ----------
    key_added
        Prefix of the ``obs`` columns written by :meth:`to_adata`.
    groupby
        The ``obs`` column holding the groups (the user's, or ``f"{key_added}_cluster"``).
    groups
        Group of every cell (index: ``obs_names``).
    queries
        The :class:`~llm4cell.MarkerQuery` of every group, by group id.
    markers
        Ranked marker table of every group, by group id.
    annotations
        The :class:`~llm4cell.Annotation` of every group, by group id.
    provenance
        Version, backend, parameters, CL version, input description and timings.
    """

    key_added: str
    groupby: str
    groups: pd.Series
    queries: dict[str, MarkerQuery]
    markers: dict[str, pd.DataFrame]
    annotations: dict[str, Annotation]
    provenance: dict[str, object] = field(default_factory=dict)

    def __repr__(self) -> str:
        n_unknown = sum(a.label == UNKNOWN for a in self.annotations.values())
        labels = pd.Series({g: a.label for g, a in self.annotations.items()})
        top = ", ".join(f"{k} ({v})" for k, v in labels.value_counts().head(5).items())
        return (
            f"AnnotationResult({len(self.groups)} cells, {len(self.annotations)} groups by "
            f"{self.groupby!r}, backend={self.provenance.get('backend')!r}; "
            f"{n_unknown} unknown; labels: {top})"
        )

    def to_df(self) -> pd.DataFrame:
        """One row per group: group, n_cells, top_markers, n_significant_markers, label,
        ontology_id, confidence, candidate_2..candidate_4 (the next three candidates, as
        ``name (CL ID, score)``), evidence, and the backend's details (e.g.
        ``consensus_proportion``, ``consensus_entropy``, ``llm_asked``) when it gives any."""
        n_cells = self.groups.value_counts()
        rows = []
        for g, a in self.annotations.items():
            cands = _candidate_text(a, 3)
            rows.append({
                "group": g,
                "n_cells": int(n_cells.get(g, 0)),
                "top_markers": ", ".join(self.queries[g].genes[:10]),
                "n_significant_markers": int(self.markers[g]["significant"].sum())
                if g in self.markers and "significant" in self.markers[g] else 0,
                "label": a.label,
                "ontology_id": a.ontology_id or "",
                "confidence": a.confidence,
                "candidate_2": cands[0],
                "candidate_3": cands[1],
                "candidate_4": cands[2],
                "evidence": a.evidence,
            })
        table = pd.DataFrame(rows)
        for col, values in details_columns(list(self.annotations.values())).items():
            table[col] = values
        return table

    def cell_table(self) -> pd.DataFrame:
        """Per-cell label, ontology ID and confidence (index: ``obs_names``)."""
        ann = self.annotations
        groups = self.groups.astype(object)
        label = groups.map(lambda g: ann[g].label if g in ann else UNKNOWN)
        onto = groups.map(lambda g: ann[g].ontology_id if g in ann else None)
        conf = groups.map(lambda g: ann[g].confidence if g in ann else 0.0)
        return pd.DataFrame({"label": label, "ontology_id": onto, "confidence": conf})

    @property
    def clusters_computed(self) -> bool:
        """Whether llm4cell computed the groups (Leiden) rather than taking ``groupby``."""
        return bool(self.provenance.get("clusters_computed",
                                        self.groupby == f"{self.key_added}_cluster"))

    def to_adata(
        self, adata: ad.AnnData, key_added: str | None = None, *, overwrite: bool = False
    ) -> None:
        """Write the result into ``adata`` (``obs`` columns and ``uns['llm4cell']``).

        Writes ``obs[key]`` (categorical label), ``obs[key + '_ontology_id']``
        (categorical CL ID, missing for "unknown"), ``obs[key + '_confidence']`` (float),
        the groups to ``obs[key + '_cluster']`` when llm4cell computed them, and the
        provenance record with per-group evidence and candidates to ``uns['llm4cell']``.

        Raises
        ------
        InputError
            When one of these ``obs`` columns exists already and ``overwrite`` is False.
        """
        key = key_added or self.key_added
        check_key(key)
        if not adata.obs_names.equals(self.groups.index):
            msg = "adata's cells differ from the annotated ones; annotate this AnnData itself"
            raise InputError(msg)
        check_free_columns(adata, key, clusters=self.clusters_computed, overwrite=overwrite)
        cells = self.cell_table()
        adata.obs[key] = pd.Categorical(cells["label"].astype(str))
        adata.obs[f"{key}_ontology_id"] = pd.Categorical(cells["ontology_id"])
        adata.obs[f"{key}_confidence"] = cells["confidence"].astype(np.float32).to_numpy()
        if self.clusters_computed:
            adata.obs[f"{key}_cluster"] = self.groups.to_numpy()
        adata.uns[UNS_KEY] = self.uns_record(key)

    def uns_record(self, key: str | None = None) -> dict[str, object]:
        """The provenance record as stored in ``uns['llm4cell']`` (h5ad-writable)."""
        table = self.to_df().set_index("group")
        table.index = table.index.astype(str)
        table["candidates"] = [
            json.dumps([c.model_dump() for c in self.annotations[g].candidates])
            for g in table.index
        ]
        table["markers"] = [", ".join(self.queries[g].genes) for g in table.index]
        record = dict(self.provenance)
        record["key_added"] = key or self.key_added
        record["groups"] = table
        return _h5ad_safe(record)


def _h5ad_safe(obj: object) -> object:
    """Replace values h5ad cannot store (None) and make mappings plain dicts."""
    if isinstance(obj, Mapping):
        return {str(k): _h5ad_safe(v) for k, v in obj.items()}
    if obj is None:
        return ""
    if isinstance(obj, (list, tuple)):
        return [_h5ad_safe(v) for v in obj] if obj else ""
    return obj


def _as_group_series(values: pd.Series, index: pd.Index, name: str) -> pd.Series:
    """Groups as a categorical of strings, keeping the user's category order."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        cats = [str(c) for c in values.cat.categories]
    else:
        uniq = pd.unique(values.dropna())
        try:
            cats = [str(c) for c in sorted(uniq)]
        except TypeError:
            cats = [str(c) for c in uniq]
    as_str = values.astype(object).where(values.notna(), None)
    as_str = as_str.map(lambda v: None if v is None else str(v))
    return pd.Series(
        pd.Categorical(as_str, categories=list(dict.fromkeys(cats))), index=index, name=name
    )


def _check_groupby(adata: ad.AnnData, groupby: str) -> None:
    if groupby not in adata.obs.columns:
        cols = list(adata.obs.columns)
        shown = ", ".join(map(repr, cols[:12])) + (" ..." if len(cols) > 12 else "")
        msg = f"--groupby column {groupby!r} not found in obs (columns: {shown or 'none'})"
        raise InputError(msg)
    n = adata.obs[groupby].nunique(dropna=True)
    if n < 2:
        msg = (
            f"--groupby column {groupby!r} has {n} group(s); markers need at least two "
            "groups: choose another column or omit --groupby to cluster"
        )
        raise InputError(msg)
    if n > MAX_GROUPS:
        msg = (
            f"--groupby column {groupby!r} has {n} distinct values, more than {MAX_GROUPS}; "
            "it looks like a per-cell column: give a cluster or cell type column"
        )
        raise InputError(msg)


def check_key(key: object) -> str:
    """Refuse a ``key_added`` that cannot prefix ``obs`` columns (empty, blank, padded,
    with ``/`` or control characters); return it."""
    bad = (
        not isinstance(key, str) or not key.strip() or key != key.strip() or "/" in key
        or any(ord(c) < 32 for c in key)
    )
    if bad:
        msg = (
            f"key_added (--key-added) {key!r} cannot prefix obs columns: give a non-empty "
            "name without '/', control characters or surrounding spaces, e.g. 'llm4cell'"
        )
        raise InputError(msg)
    return key  # type: ignore[return-value]


def planned_columns(key: str, *, clusters: bool) -> list[str]:
    """The ``obs`` columns an annotation under ``key`` writes."""
    cols = [key, f"{key}_ontology_id", f"{key}_confidence"]
    return [*cols, f"{key}_cluster"] if clusters else cols


def check_free_columns(adata: ad.AnnData, key: str, *, clusters: bool,
                       overwrite: bool = False) -> None:
    """Refuse to replace existing ``obs`` columns unless ``overwrite`` is True."""
    taken = [c for c in planned_columns(key, clusters=clusters) if c in adata.obs.columns]
    if taken and not overwrite:
        msg = (
            f"obs already has {', '.join(map(repr, taken))}; llm4cell never overwrites an "
            f"existing column: choose another --key-added (key_added, now {key!r}) or pass "
            "--overwrite-key (overwrite=True) to replace them"
        )
        raise InputError(msg)


def check_params(
    *,
    key_added: object = "cell_type",
    resolution: float = 1.0,
    n_markers: int = 25,
    random_state: int = 0,
    species: str = "human",
) -> None:
    """Refuse impossible parameters before any work.

    Raises
    ------
    InputError
        Naming the parameter (and its command-line flag), the value and the fix.
    """
    if species not in ("human", "mouse"):
        msg = f"species must be 'human' or 'mouse', got {species!r}"
        raise InputError(msg)
    check_key(key_added)
    if isinstance(resolution, bool) or not isinstance(resolution, (int, float)) or not (
        math.isfinite(resolution) and resolution > 0
    ):
        msg = (
            f"resolution (--resolution) must be a number above 0, got {resolution!r}; "
            "1.0 is the usual Leiden resolution, higher values give more clusters"
        )
        raise InputError(msg)
    if isinstance(n_markers, bool) or not isinstance(n_markers, int) or n_markers < 1:
        msg = f"n_markers (--n-markers) must be at least 1, got {n_markers!r}"
        raise InputError(msg)
    if isinstance(random_state, bool) or not isinstance(random_state, int) or not (
        0 <= random_state < 2**32
    ):
        msg = (
            f"random_state (--random-state) must be a whole number from 0 to 2**32 - 1, "
            f"got {random_state!r}"
        )
        raise InputError(msg)


def run_annotation(
    adata: ad.AnnData,
    *,
    groupby: str | None = None,
    tissue: str | None = None,
    species: Species = "human",
    backend: str | Annotator = "knowledge",
    backend_options: LLMOptions | Mapping[str, object] | None = None,
    layer: str | None = None,
    key_added: str = "cell_type",
    resolution: float = 1.0,
    n_markers: int = 25,
    random_state: int = 0,
    overwrite: bool = False,
    progress: bool = False,
) -> tuple[AnnotationResult, Expression]:
    """Run the pipeline without writing anything; see :func:`annotate` for parameters.

    Returns
    -------
    The result and the working expression (log-normalised AnnData used for markers).
    """
    check_params(key_added=key_added, resolution=resolution, n_markers=n_markers,
                 random_state=random_state, species=species)
    check_free_columns(adata, key_added, clusters=groupby is None, overwrite=overwrite)
    if groupby is None:
        check_can_cluster(adata)
    annotator = get_annotator(backend, backend_options)  # fails fast: key, server, model
    if groupby is not None:
        _check_groupby(adata, groupby)

    with Stages(show=progress) as stages:
        with stages.stage("Preparing expression"):
            expr = prepare_expression(adata, layer=layer, species=species)
            work = expr.adata
            kb = load_knowledge()
            unique = pd.unique(work.var_names.astype(str))
            n_known = sum(kb.resolve_gene(g, species) is not None for g in unique)
            if n_known == 0:
                examples = ", ".join(map(repr, unique[:3]))
                msg = (
                    f"none of the {len(unique)} genes ({examples}, ...) matches the marker "
                    "database: give gene symbols or Ensembl IDs (or a symbol column such as "
                    "var['feature_name']); for mouse data pass --species mouse"
                )
                raise InputError(msg)
        if groupby is None:
            group_key = f"{key_added}_cluster"
            with stages.stage(f"Clustering (Leiden, resolution {resolution})"):
                groups = cluster(work, resolution=resolution, random_state=random_state)
        else:
            group_key = groupby
            groups = adata.obs[groupby]
        groups = _as_group_series(groups, adata.obs_names, group_key)
        work.obs[group_key] = groups.to_numpy()
        with stages.stage("Ranking marker genes (Wilcoxon)"):
            markers = rank_markers(work, group_key, n_markers=n_markers)
        n_cells = groups.value_counts()
        queries = {
            g: MarkerQuery(
                id=g,
                genes=tuple(df["gene"]),
                tissue=tissue,
                species=species,
                logfoldchanges=tuple(df["logfoldchange"].round(4)),
                pct_in=tuple(df["pct_in"].round(4)),
                n_cells=int(n_cells.get(g, 0)),
            )
            for g, df in markers.items()
        }
        with stages.stage(f"Annotating {len(queries)} groups ({annotator.name})") as tick:
            if hasattr(annotator, "progress"):
                annotator.progress = tick
            answers = annotator.annotate(list(queries.values()))
            annotations = check_answers(list(queries.values()), answers)
            for g, q in queries.items():
                if not q.genes:
                    n = q.n_cells or 0
                    why = (
                        f"too few cells ({n}) to rank markers" if n < 2
                        else "no gene passed the marker filters"
                    )
                    annotations[g] = Annotation(
                        id=g, label=UNKNOWN, ontology_id=None, confidence=0.0,
                        evidence=why, backend=annotator.name,
                    )

    provenance: dict[str, object] = {
        "schema_version": SCHEMA_VERSION,
        "version": _version("llm4cell"),
        "backend": annotator.name,
        "backend_spec": backend if isinstance(backend, str) else annotator.name,
        "groupby": group_key,
        "clusters_computed": groupby is None,
        "params": {
            "tissue": tissue,
            "species": species,
            "layer": layer,
            "resolution": resolution,
            "n_markers": n_markers,
            "random_state": random_state,
            "marker_filters": "pval_adj < 0.05, logFC > 0.25, pct_in >= 0.10, no MT-/ribosomal/"
            "unannotated genes",
        },
        "input": expr.describe(),
        "cl_version": kb.ontology.version,
        "knowledge": kb.provenance(),
        "annotator": annotator.provenance(),
        "versions": {
            "llm4cell": _version("llm4cell"),
            "scanpy": _version("scanpy"),
            "anndata": _version("anndata"),
            "cellconsensus": _version("cellconsensus"),
            "cellxgene-ontology-guide": _version("cellxgene-ontology-guide"),
        },
        "n_cells_without_group": int(groups.isna().sum()),
        "timings_s": {k: round(v, 4) for k, v in stages.timings.items()},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    result = AnnotationResult(
        key_added=key_added, groupby=group_key, groups=groups, queries=queries,
        markers=markers, annotations=annotations, provenance=provenance,
    )
    return result, expr


def annotate(
    adata: ad.AnnData,
    *,
    groupby: str | None = None,
    tissue: str | None = None,
    species: Species = "human",
    backend: str | Annotator = "knowledge",
    backend_options: LLMOptions | Mapping[str, object] | None = None,
    layer: str | None = None,
    key_added: str = "cell_type",
    resolution: float = 1.0,
    n_markers: int = 25,
    random_state: int = 0,
    report: str | os.PathLike[str] | None = None,
    csv: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    copy: bool = False,
    progress: bool = False,
) -> ad.AnnData | None:
    """Annotate cell types with Cell Ontology terms, confidence and evidence.

    Groups cells (``groupby`` or Leiden clusters), ranks marker genes per group
    (Wilcoxon), asks the backend for one answer per group and writes the answers back
    per cell. The input matrices are never modified.

    Parameters
    ----------
    adata
        Annotated data matrix of shape ``n_obs`` x ``n_vars`` (cells x genes). ``X`` may
        hold counts, normalised, log-normalised or scaled values (then ``.raw`` or
        ``layers["counts"]`` is used).
    groupby
        ``obs`` column with the user's clusters. Default: Leiden clusters computed by the
        standard scanpy route.
    tissue
        Tissue of origin (``"blood"``, ``"liver"``, ...); types restricted to other tissues
        are down-weighted.
    species
        ``"human"`` or ``"mouse"`` (mouse symbols map to human by the documented rule).
    backend
        Backend spec string or an annotator object: ``"knowledge"`` (the offline
        default), ``"openai:MODEL"``, ``"anthropic:MODEL"``, ``"llamacpp:PATH.gguf"``,
        ``"hybrid:<llm spec>"`` or ``"consensus:<spec>,<spec>,..."`` (see ``docs/llm.md``).
    backend_options
        How LLM backends are called: :class:`~llm4cell.llm.LLMOptions` or a dict of its
        fields (strategy, batch size, concurrency, timeout, retries, cache, ...).
    layer
        Layer holding counts or log-normalised values to use instead of ``X``.
    key_added
        Prefix of the ``obs`` keys written (non-empty, without ``/``).
    resolution
        Leiden resolution when clustering.
    n_markers
        Marker genes per group passed to the backend (best first).
    random_state
        Seed for PCA, neighbours and Leiden.
    report
        Path of a self-contained HTML report to write.
    csv
        Path of the per-group CSV table to write. The CSV and the report are written
        together or not at all, and their locations are checked before any work.
    overwrite
        Replace ``obs`` columns of ``key_added`` that exist already (by default an
        existing column is never overwritten: :class:`~llm4cell.InputError`).
    copy
        Return an annotated copy instead of writing into ``adata``.
    progress
        Show a progress line per stage on stderr.

    Returns
    -------
    ``None``, or the annotated copy when ``copy=True``. Sets:

    ``adata.obs[key_added]``
        Cell type name per cell (categorical; ``"unknown"`` when evidence is too weak).
    ``adata.obs[key_added + "_ontology_id"]``
        Cell Ontology ID per cell (categorical; missing for ``"unknown"``).
    ``adata.obs[key_added + "_confidence"]``
        Confidence in [0, 1] per cell (that of its group).
    ``adata.obs[key_added + "_cluster"]``
        Leiden cluster per cell, only when ``groupby`` is None.
    ``adata.uns["llm4cell"]``
        Provenance: version, backend, parameters, CL version, input description,
        timings and ``groups`` (per-group markers, label, CL ID, confidence, evidence
        and candidates as JSON).
    ``adata.obsm["X_umap"]``
        Only when ``report`` is given and ``adata`` has no UMAP yet.
    """
    from .._io import check_outputs

    check_outputs([csv, report], flags=["csv", "report"])
    result, expr = run_annotation(
        adata, groupby=groupby, tissue=tissue, species=species, backend=backend,
        backend_options=backend_options, layer=layer, key_added=key_added,
        resolution=resolution, n_markers=n_markers, random_state=random_state,
        overwrite=overwrite, progress=progress,
    )
    target = adata.copy() if copy else adata
    result.to_adata(target, overwrite=overwrite)
    write_outputs(target, result, expr, csv=csv, report=report, random_state=random_state)
    return target if copy else None


def write_outputs(
    adata: ad.AnnData,
    result: AnnotationResult,
    expr: Expression,
    *,
    h5ad: str | os.PathLike[str] | None = None,
    csv: str | os.PathLike[str] | None = None,
    report: str | os.PathLike[str] | None = None,
    random_state: int = 0,
) -> list[os.PathLike[str]]:
    """Write the per-group CSV, the HTML report and the annotated ``.h5ad`` as one set:
    all of them or, on any failure, none (see :func:`llm4cell._io.write_set`).

    The report is rendered first (it adds ``obsm['X_umap']`` when missing, which the
    ``.h5ad`` then keeps).
    """
    from .._io import write_set

    writers: list[tuple[str | os.PathLike[str], object]] = []
    if csv is not None:
        table = result.to_df()
        writers.append((csv, lambda p: table.to_csv(p, index=False)))
    if report is not None:
        from ..report._annotation import render_report

        page = render_report(adata, result, expr, random_state=random_state)
        writers.append((report, lambda p: p.write_text(page, encoding="utf-8")))
    if h5ad is not None:
        writers.append((h5ad, adata.write_h5ad))
    return write_set(writers) if writers else []  # type: ignore[arg-type]
