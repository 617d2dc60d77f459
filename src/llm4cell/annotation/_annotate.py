"""``annotate`` and ``run_annotation``: the pipeline from an AnnData to Cell Ontology labels.

AnnData -> groups (the user's or Leiden clusters) -> ranked markers -> one
:class:`~llm4cell.MarkerQuery` per group -> the annotator -> one
:class:`~llm4cell.Annotation` per group -> an :class:`AnnotationResult`, which owns
how it is written (``obs``/``uns``, CSV, report, ``.h5ad``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

import anndata as ad
import numpy as np
import pandas as pd

from .._errors import InputError
from .._io import check_outputs
from .._progress import Stages
from .._records import Annotation, MarkerQuery, Progress, Species
from ..annotators._base import Annotator, check_answers
from ..annotators._registry import get_annotator
from ..knowledge._engine import UNKNOWN, KnowledgeBase, load_knowledge
from ..knowledge._expression import group_detection, group_expression_scores
from ..preprocess._cluster import check_can_cluster, cluster
from ..preprocess._expression import Expression, prepare_expression
from ..preprocess._markers import rank_markers
from ._cells import (
    CELL_CALIBRATION,
    MIXED_MAX_CELLS,
    MIXED_MIN_CELLS,
    MIXED_SHARE,
    MIXED_SMOOTHING_STEPS,
    cell_confidence,
    cell_support,
    mixed_groups,
    smoothed_families,
    vote_sample,
)
from ._checks import check_groupby, check_params
from ._keys import DEFAULT_KEY, check_free_columns
from ._provenance import build_provenance
from ._result import AnnotationResult
from ._states import STATE_RULE, call_cell_states, call_states, score_states

if TYPE_CHECKING:
    from ..llm import LLMOptions

__all__ = ["annotate", "run_annotation"]


def _natural(value: object) -> tuple[int, float, str]:
    """Sort key: numbers (and digit strings) by value, first; other text after, as text."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return (0, float(value), "")
    text = str(value)
    return (0, float(text), "") if text.isdigit() else (1, 0.0, text)


def _as_group_series(values: pd.Series, index: pd.Index, name: str) -> pd.Series:
    """Groups as a categorical of strings, keeping the user's category order (other
    columns in natural order: "2" before "10")."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        cats = [str(c) for c in values.cat.categories]
    else:
        uniq = pd.unique(values.dropna())
        try:
            cats = [str(c) for c in sorted(uniq, key=_natural)]
        except TypeError:
            cats = [str(c) for c in uniq]
    as_str = values.astype(object).where(values.notna(), None)
    as_str = as_str.map(lambda v: None if v is None else str(v))
    return pd.Series(
        pd.Categorical(as_str, categories=list(dict.fromkeys(cats))), index=index, name=name
    )


def _prepare(adata: ad.AnnData, *, layer: str | None, species: Species
             ) -> tuple[Expression, KnowledgeBase]:
    """The log-normalised working expression, refused when no gene is a known one."""
    expr = prepare_expression(adata, layer=layer, species=species)
    kb = load_knowledge()
    unique = pd.unique(expr.adata.var_names.astype(str))
    if not any(kb.resolve_gene(g, species) is not None for g in unique):
        examples = ", ".join(map(repr, unique[:3]))
        msg = (
            f"none of the {len(unique)} genes ({examples}, ...) matches the marker "
            "database: give gene symbols or Ensembl IDs (or a symbol column such as "
            "var['feature_name']); for mouse data pass --species mouse"
        )
        raise InputError(msg)
    return expr, kb


def _queries(markers: Mapping[str, pd.DataFrame], groups: pd.Series, *,
             tissue: str | None, species: Species) -> dict[str, MarkerQuery]:
    """One query per group: its ranked markers, fold changes and share of cells."""
    n_cells = groups.value_counts()
    return {
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


#: Best engine types per group whose union is scored on expression.
EXPRESSION_CANDIDATES = 25


def _with_expression(queries: dict[str, MarkerQuery], expr: Expression, kb: KnowledgeBase,
                     groups: pd.Series, species: Species
                     ) -> tuple[dict[str, MarkerQuery], pd.DataFrame | None]:
    """The queries with their groups' mean ulm t-values over the candidate types and the
    detection rates of the database genes, and the per-cell t-values (cells x candidate
    CL IDs; None without candidates).

    Candidates: the union of each group's :data:`EXPRESSION_CANDIDATES` best engine types.
    """
    names = list(queries)
    if not names:
        return queries, None
    cand: set[int] = set()
    for q in queries.values():
        s = kb.score(q)
        k = min(EXPRESSION_CANDIDATES, len(s))
        cand.update(int(j) for j in np.argpartition(-s, k - 1)[:k] if s[j] > 0)
    types = sorted(cand)
    if len(types) < 2:
        return queries, None
    # by object, not str: a missing group must not become a group called "nan"
    codes = pd.Categorical(groups.astype(object).to_numpy(), categories=names).codes
    means, cells, scored = group_expression_scores(
        kb, expr.adata.X, expr.adata.var_names.astype(str), species, np.asarray(codes),
        len(names), types)
    ids = [kb.type_ids[j] for j in types]
    det_genes, det = group_detection(kb, expr.adata.X, expr.adata.var_names.astype(str),
                                     species, np.asarray(codes), len(names))
    out = {}
    for i, g in enumerate(names):
        pairs = tuple((t, round(float(v), 4)) for t, v in zip(ids, means[i], strict=True)
                      if np.isfinite(v))
        detected = (tuple((s, round(float(v), 3)) for s, v in zip(det_genes, det[i],
                                                                  strict=True))
                    if det_genes and np.isfinite(det[i]).all() else None)
        out[g] = queries[g].model_copy(update={"expression": pairs or None,
                                               "detection": detected})
    if scored.sum() < 2:
        return out, None
    table = pd.DataFrame(cells, index=groups.index, copy=False,
                         columns=[t for t, ok in zip(ids, scored, strict=True) if ok])
    return out, table


def _per_cell(kb: KnowledgeBase, scores: pd.DataFrame | None, groups: pd.Series,
              annotations: dict[str, Annotation], graph: object | None
              ) -> tuple[np.ndarray | None, dict[str, str]]:
    """Per-cell confidence (knowledge engine answers; None without scores) and the mixed
    groups' flags (only with the k-NN ``graph`` of llm4cell's clustering).

    The knowledge engine's answers in ``annotations`` are updated in place: their
    confidence becomes the mean of their cells' (the per-cell map,
    :data:`~llm4cell.annotation._cells.CELL_CALIBRATION`)."""
    if scores is None:
        return None, {}
    obj = groups.astype(object)
    label = obj.map({g: a.ontology_id for g, a in annotations.items()})
    conf = obj.map({g: a.confidence for g, a in annotations.items()}).fillna(0.0)
    engine = obj.map({g: a.backend == "knowledge" for g, a in annotations.items()}
                     ).fillna(False).astype(bool)
    values = scores.to_numpy()
    ids = list(scores.columns)
    # the support enters the map only with a support weight (d = 0 now: not computed)
    support = (cell_support(kb, values, ids, label.tolist()) if CELL_CALIBRATION[2]
               else np.full(len(label), np.nan))
    group_conf = conf.to_numpy(dtype=np.float64)
    per_cell = np.round(np.where(engine.to_numpy(dtype=bool),
                                 cell_confidence(group_conf, support), group_conf), 4)
    # the group's confidence: the mean of its cells' (the map is per cell)
    for g, a in list(annotations.items()):
        if a.backend == "knowledge" and a.confidence > 0:
            inside = (obj == g).to_numpy()
            if inside.any():
                annotations[g] = a.model_copy(
                    update={"confidence": round(float(per_cell[inside].mean()), 4)})
    mixed: dict[str, str] = {}
    if graph is not None:
        rows = vote_sample(groups)
        mixed = mixed_groups(kb, smoothed_families(kb, values, ids, graph, rows),
                             groups.iloc[rows], annotations)
    return per_cell, mixed


def _no_marker_answer(q: MarkerQuery, backend: str) -> Annotation:
    """"unknown" for a group without markers, saying why."""
    n = q.n_cells or 0
    why = f"too few cells ({n}) to rank markers" if n < 2 else "no gene passed the marker filters"
    return Annotation(id=q.id, label=UNKNOWN, ontology_id=None, confidence=0.0,
                      evidence=why, backend=backend)


def _answer(annotator: Annotator, queries: dict[str, MarkerQuery],
            progress: Progress) -> dict[str, Annotation]:
    """The annotator's answer for every query, checked (one per id); "unknown" where a
    group had no marker."""
    if hasattr(annotator, "progress"):
        annotator.progress = progress
    answers = annotator.annotate(list(queries.values()))
    annotations = check_answers(list(queries.values()), answers)
    for g, q in queries.items():
        if not q.genes:
            annotations[g] = _no_marker_answer(q, annotator.name)
    return annotations


def run_annotation(
    adata: ad.AnnData,
    *,
    groupby: str | None = None,
    tissue: str | None = None,
    species: Species = "human",
    backend: str | Annotator = "knowledge",
    backend_options: LLMOptions | Mapping[str, object] | None = None,
    layer: str | None = None,
    key_added: str = DEFAULT_KEY,
    resolution: float = 1.0,
    n_markers: int = 25,
    random_state: int = 0,
    overwrite: bool = False,
    progress: bool | Progress = False,
) -> AnnotationResult:
    """Run the pipeline without writing anything; see :func:`annotate` for parameters.

    Returns
    -------
    The :class:`AnnotationResult`; write it with :meth:`~AnnotationResult.to_adata`,
    :meth:`~AnnotationResult.write_report` or :meth:`~AnnotationResult.write`.
    """
    check_params(key_added=key_added, resolution=resolution, n_markers=n_markers,
                 random_state=random_state, species=species)
    check_free_columns(adata, key_added, clusters=groupby is None, overwrite=overwrite)
    if groupby is None:
        check_can_cluster(adata)
    annotator = get_annotator(backend, options=backend_options)  # fails fast: key, server, model
    if groupby is not None:
        check_groupby(adata, groupby)

    with Stages(show=progress is True) as stages:
        with stages.stage("Preparing expression"):
            expr, kb = _prepare(adata, layer=layer, species=species)
        group_key = groupby if groupby is not None else f"{key_added}_cluster"
        if groupby is None:
            with stages.stage(f"Clustering (Leiden, resolution {resolution})"):
                values = cluster(expr.adata, resolution=resolution, random_state=random_state)
        else:
            values = adata.obs[groupby]
        groups = _as_group_series(values, adata.obs_names, group_key)
        expr.adata.obs[group_key] = groups.array  # the categorical: its order, not text order
        with stages.stage("Ranking marker genes (Wilcoxon)"):
            markers = rank_markers(expr.adata, group_key, n_markers=n_markers)
        queries = _queries(markers, groups, tissue=tissue, species=species)
        with stages.stage("Scoring expression evidence (ulm)"):
            queries, cell_scores = _with_expression(queries, expr, kb, groups, species)
        with stages.stage("Scoring cell states"):
            state_scores = score_states(expr.adata, random_state=random_state)
            states = call_states(state_scores, groups, species=species)
            cell_states = call_cell_states(state_scores, groups, species=species)
        with stages.stage(f"Annotating {len(queries)} groups ({annotator.name})") as tick:
            annotations = _answer(annotator, queries, progress if callable(progress) else tick)
            if callable(progress):  # also when the backend reports no progress of its own
                progress(len(queries), len(queries))
        with stages.stage("Per-cell evidence"):
            graph = expr.adata.obsp.get("connectivities") if groupby is None else None
            cell_conf, mixed = _per_cell(kb, cell_scores, groups, annotations, graph)

    provenance = build_provenance(
        annotator=annotator, backend=backend, expr=expr, kb=kb, groupby=group_key,
        clusters_computed=groupby is None,
        params={"tissue": tissue, "species": species, "layer": layer,
                "resolution": resolution, "n_markers": n_markers,
                "random_state": random_state},
        n_cells_without_group=int(groups.isna().sum()), timings=stages.timings,
    )
    provenance["per_cell"] = {
        "confidence_map": list(CELL_CALIBRATION),
        "mixed_rule": (f"two unrelated families each >= {MIXED_SHARE:.0%} and >= "
                       f"{MIXED_MIN_CELLS} of a group's voting cells (best type after "
                       f"{MIXED_SMOOTHING_STEPS} k-NN smoothing steps; <= "
                       f"{MIXED_MAX_CELLS} seeded cells per group)"),
        "mixed_flagged": graph is not None,
    }
    provenance["states"] = {
        "rule": STATE_RULE,
        "programs_scored": [c for c in state_scores.columns
                            if state_scores[c].notna().any()],
    }
    result = AnnotationResult(
        key_added=key_added, groupby=group_key, groups=groups, queries=queries,
        markers=markers, annotations=annotations, provenance=provenance,
        states={g: states.get(g, "") for g in annotations}, state_scores=state_scores,
        cell_scores=cell_scores, cell_confidence=cell_conf, mixed=mixed,
        cell_states=cell_states,
        levels={g: kb.levels.of(a.ontology_id) for g, a in annotations.items()}
        if kb.levels is not None else {},
    )
    result._expr = expr
    return result


def annotate(
    adata: ad.AnnData,
    *,
    groupby: str | None = None,
    tissue: str | None = None,
    species: Species = "human",
    backend: str | Annotator = "knowledge",
    backend_options: LLMOptions | Mapping[str, object] | None = None,
    layer: str | None = None,
    key_added: str = DEFAULT_KEY,
    resolution: float = 1.0,
    n_markers: int = 25,
    random_state: int = 0,
    report: str | os.PathLike[str] | None = None,
    csv: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    copy: bool = False,
    progress: bool | Progress = False,
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
        Prefix of the ``obs`` keys written and key of the ``uns['llm4cell']`` record
        (non-empty, without ``/``). The default, ``"llm4cell"``, is not a CELLxGENE
        column: curated files keep their ``cell_type``.
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
        ``True``: show a progress line per stage on stderr; a callable: called with
        ``(done, total)`` groups as the backend answers.

    Returns
    -------
    ``None``, or the annotated copy when ``copy=True``. Sets:

    ``adata.obs[key_added]``
        Cell type name per cell (categorical; ``"unknown"`` when evidence is too weak).
    ``adata.obs[key_added + "_ontology_id"]``
        Cell Ontology ID per cell (categorical; missing for ``"unknown"``).
    ``adata.obs[key_added + "_confidence"]``
        Confidence in [0, 1] per cell (knowledge engine: the per-cell map of
        ``docs/knowledge.md``; LLM backends: their group's).
    ``adata.obs[key_added + "_lineage"]``, ``adata.obs[key_added + "_type"]``
        Lineage and type family of the label (categorical; ``""`` when it spans several).
    ``adata.obs[key_added + "_state"]``
        Cell states of the cell itself (categorical: ``"cycling"``,
        ``"interferon-stimulated"``, ``"stress"``, ``"haemoglobin"``, ``"ribosomal"``,
        ``"mitochondrial"``, several joined by ``"; "``, or ``""``); state genes never
        count as evidence for a type.
    ``adata.obsm[key_added + "_states"]``
        Per-cell program scores (DataFrame, one column per program; NaN when the data
        holds too few of its genes).
    ``adata.obsm[key_added + "_scores"]``
        Per-cell scores (ulm t-values) of the candidate types (DataFrame, CL IDs as
        columns; their names in the provenance's ``score_names``).
    ``adata.obs[key_added + "_cluster"]``
        Leiden cluster per cell, only when ``groupby`` is None.
    ``adata.uns["llm4cell"][key_added]``
        Provenance: version, backend, parameters, CL version, input description,
        timings and ``groups`` (per-group markers, label, CL ID, confidence, evidence
        and candidates as JSON); read it back with :func:`llm4cell.get_provenance`.
        Records under other keys are kept.
    ``adata.obsm["X_umap"]``
        Only when ``report`` is given and ``adata`` has no UMAP yet.
    """
    check_outputs([csv, report], flags=["csv", "report"])
    result = run_annotation(
        adata, groupby=groupby, tissue=tissue, species=species, backend=backend,
        backend_options=backend_options, layer=layer, key_added=key_added,
        resolution=resolution, n_markers=n_markers, random_state=random_state,
        overwrite=overwrite, progress=progress,
    )
    target = adata.copy() if copy else adata
    result.to_adata(target, overwrite=overwrite)
    result.write(target, csv=csv, report=report)
    return target if copy else None

