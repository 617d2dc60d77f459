"""``AnnotationResult``: the labels of one run, and everything they are written as
(``obs`` columns and ``uns`` record, the per-group table, the HTML report, the file set)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anndata as ad
import numpy as np
import pandas as pd

from .._errors import InputError
from .._io import h5ad_writer, write_set, write_text
from .._records import Annotation, MarkerQuery, details_columns
from ..knowledge._engine import UNKNOWN
from ..knowledge._levels import TermLevels
from ..ontology._graph import load_ontology
from ..report._annotation import render_report
from ._keys import check_free_columns, check_key, store_record
from ._provenance import h5ad_safe

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..preprocess._expression import Expression

__all__ = ["AnnotationResult"]

_PathLike = str | os.PathLike[str]


def _ontology_label(term_id: str) -> str:
    onto = load_ontology()
    return onto.label(term_id) if term_id in onto else term_id


def _candidate_text(a: Annotation, k: int) -> list[str]:
    """The ``k`` best candidates other than the answer, as ``name (CL:ID, score)``."""
    others = [c for c in a.candidates if c.ontology_id != a.ontology_id]
    out = [f"{c.label} ({c.ontology_id}, {c.score:.2f})" for c in others[:k]]
    return out + [""] * (k - len(out))


@dataclass
class AnnotationResult:
    """Labels, confidence and evidence for every group of cells.

    Made by :func:`llm4cell.run_annotation`; :meth:`to_adata` writes it into an AnnData,
    :meth:`to_table` gives the per-group table, :meth:`summary` one row per label,
    :meth:`write_report` the HTML report and :meth:`write` the whole output set.

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
    states
        Cell state of every group (``"cycling"``, ``"interferon-stimulated"``, several
        joined by ``"; "``, or ``""``), by group id.
    state_scores
        Per-cell program scores (one column per program), or None.
    cell_scores
        Per-cell ulm t-values of the candidate types (cells x CL IDs), or None.
    cell_confidence
        Per-cell confidence (see :mod:`llm4cell.annotation._cells`), or None (then each
        cell has its group's).
    mixed
        For groups whose cells split between two unrelated type families: the two
        families and their shares of cells, by group id.
    levels
        Lineage and type family of every group's label, by group id.
    cell_states
        Cell states of every cell (index: ``obs_names``), or None (then each cell has its
        group's).
    """

    key_added: str
    groupby: str
    groups: pd.Series
    queries: dict[str, MarkerQuery]
    markers: dict[str, pd.DataFrame]
    annotations: dict[str, Annotation]
    provenance: dict[str, object] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)
    state_scores: pd.DataFrame | None = None
    cell_scores: pd.DataFrame | None = None
    cell_confidence: np.ndarray | None = None
    mixed: dict[str, str] = field(default_factory=dict)
    levels: dict[str, TermLevels] = field(default_factory=dict)
    cell_states: pd.Series | None = None
    # The working expression of the run (log-normalised AnnData), for the report.
    _expr: Expression | None = field(default=None, init=False, repr=False, compare=False)

    def __repr__(self) -> str:
        n_unknown = sum(a.label == UNKNOWN for a in self.annotations.values())
        labels = pd.Series({g: a.label for g, a in self.annotations.items()})
        top = ", ".join(f"{k} ({v})" for k, v in labels.value_counts().head(5).items())
        return (
            f"AnnotationResult({len(self.groups)} cells, {len(self.annotations)} groups by "
            f"{self.groupby!r}, backend={self.provenance.get('backend')!r}; "
            f"{n_unknown} unknown; labels: {top})"
        )

    # ------------------------------------------------------------------------ tables

    def to_table(self) -> pd.DataFrame:
        """One row per group: group, n_cells, top_markers, n_significant_markers, label,
        ontology_id, lineage and type (the label's levels), confidence, state (the group's
        cell states), mixed (two unrelated families sharing the group's cells, or ""),
        candidate_2..candidate_4
        (the next three candidates, as ``name (CL ID, score)``), evidence, and the
        backend's details (e.g. ``consensus_proportion``, ``consensus_entropy``,
        ``llm_asked``) when it gives any.
        This is the per-group CSV of ``llm4cell annotate``."""
        n_cells = self.groups.value_counts()
        rows = [self._group_row(g, a, int(n_cells.get(g, 0)))
                for g, a in self.annotations.items()]
        table = pd.DataFrame(rows)
        for col, values in details_columns(list(self.annotations.values())).items():
            table[col] = values
        return table

    #: Alias of :meth:`to_table`.
    to_df = to_table

    def _group_row(self, g: str, a: Annotation, n_cells: int) -> dict[str, object]:
        cands = _candidate_text(a, 3)
        markers = self.markers.get(g)
        return {
            "group": g,
            "n_cells": n_cells,
            "top_markers": ", ".join(self.queries[g].genes[:10]),
            "n_significant_markers": int(markers["significant"].sum())
            if markers is not None and "significant" in markers else 0,
            "label": a.label,
            "ontology_id": a.ontology_id or "",
            "lineage": self.levels[g].lineage if g in self.levels else "",
            "type": self.levels[g].family if g in self.levels else "",
            "confidence": a.confidence,
            "state": self.states.get(g, ""),
            "mixed": self.mixed.get(g, ""),
            "candidate_2": cands[0],
            "candidate_3": cands[1],
            "candidate_4": cands[2],
            "evidence": a.evidence,
        }

    def cell_table(self) -> pd.DataFrame:
        """Per-cell label, ontology ID, lineage, type, confidence and state (index:
        ``obs_names``)."""
        ann = self.annotations
        groups = self.groups.astype(object)
        label = groups.map(lambda g: ann[g].label if g in ann else UNKNOWN)
        onto = groups.map(lambda g: ann[g].ontology_id if g in ann else None)
        empty = TermLevels()
        lineage = groups.map(lambda g: self.levels.get(g, empty).lineage)
        family = groups.map(lambda g: self.levels.get(g, empty).family)
        if self.cell_confidence is not None:
            conf = pd.Series(self.cell_confidence, index=groups.index)
        else:
            conf = groups.map(lambda g: ann[g].confidence if g in ann else 0.0)
        if self.cell_states is not None:
            state = pd.Series(self.cell_states.to_numpy(), index=groups.index)
        else:
            state = groups.map(lambda g: self.states.get(g, "") if g in ann else "")
        return pd.DataFrame({"label": label, "ontology_id": onto, "lineage": lineage,
                             "type": family, "confidence": conf, "state": state})

    def summary(self) -> pd.DataFrame:
        """One row per label: ``label``, ``ontology_id`` ("" for unknown), ``n_groups``,
        ``n_cells`` and ``mean_confidence`` (over the label's cells; over its groups when
        they hold no cell), most cells first."""
        table = self.to_table()[["label", "ontology_id", "n_cells", "confidence"]]
        rows = []
        for (label, onto), part in table.groupby(["label", "ontology_id"], sort=False):
            n = part["n_cells"].to_numpy(dtype=float)
            conf = part["confidence"].to_numpy(dtype=float)
            mean = float((n * conf).sum() / n.sum()) if n.sum() > 0 else float(conf.mean())
            rows.append({"label": label, "ontology_id": onto, "n_groups": len(part),
                         "n_cells": int(n.sum()), "mean_confidence": mean})
        out = pd.DataFrame(rows, columns=["label", "ontology_id", "n_groups", "n_cells",
                                          "mean_confidence"])
        return out.sort_values(["n_cells", "label"], ascending=[False, True],
                               kind="stable").reset_index(drop=True)

    # ------------------------------------------------------------------ into AnnData

    @property
    def clusters_computed(self) -> bool:
        """Whether llm4cell computed the groups (Leiden) rather than taking ``groupby``."""
        return bool(self.provenance.get("clusters_computed",
                                        self.groupby == f"{self.key_added}_cluster"))

    def to_adata(
        self, adata: ad.AnnData, *, key_added: str | None = None, overwrite: bool = False
    ) -> None:
        """Write the result into ``adata``: ``obs`` columns and ``uns['llm4cell'][key]``.

        Writes ``obs[key]`` (categorical label), ``obs[key + '_ontology_id']``
        (categorical CL ID, missing for "unknown"), ``obs[key + '_confidence']`` (float),
        ``obs[key + '_lineage']`` and ``obs[key + '_type']`` (the label's levels),
        ``obs[key + '_state']`` (categorical cell states of each cell, ``""`` for none),
        the per-cell program scores to ``obsm[key + '_states']`` (a DataFrame),
        the groups to ``obs[key + '_cluster']`` when llm4cell computed them, and the
        provenance record with per-group evidence and candidates to
        ``uns['llm4cell'][key]`` (records of other keys are kept). ``key`` is
        ``key_added``, by default :attr:`key_added`.

        Raises
        ------
        InputError
            When one of these ``obs`` columns exists already and ``overwrite`` is False,
            or ``adata`` holds other cells than the annotated ones.
        """
        key = check_key(key_added or self.key_added)
        self._check_cells(adata)
        check_free_columns(adata, key, clusters=self.clusters_computed, overwrite=overwrite)
        cells = self.cell_table()
        adata.obs[key] = pd.Categorical(cells["label"].astype(str))
        adata.obs[f"{key}_ontology_id"] = pd.Categorical(cells["ontology_id"])
        adata.obs[f"{key}_lineage"] = pd.Categorical(cells["lineage"].astype(str))
        adata.obs[f"{key}_type"] = pd.Categorical(cells["type"].astype(str))
        adata.obs[f"{key}_confidence"] = cells["confidence"].astype(np.float32).to_numpy()
        adata.obs[f"{key}_state"] = pd.Categorical(cells["state"].astype(str))
        if self.state_scores is not None:
            # by position: the cells are the annotated ones (checked), names may repeat
            adata.obsm[f"{key}_states"] = pd.DataFrame(
                self.state_scores.to_numpy(), index=adata.obs_names.copy(),
                columns=list(self.state_scores.columns))
        if self.cell_scores is not None:
            adata.obsm[f"{key}_scores"] = pd.DataFrame(
                self.cell_scores.to_numpy(), index=adata.obs_names.copy(),
                columns=list(self.cell_scores.columns))
        if self.clusters_computed:
            adata.obs[f"{key}_cluster"] = self.groups.array  # categorical, natural order
        store_record(adata, key, self.uns_record(key=key))

    def _check_cells(self, adata: ad.AnnData) -> None:
        if not adata.obs_names.equals(self.groups.index):
            msg = "adata's cells differ from the annotated ones; annotate this AnnData itself"
            raise InputError(msg)

    def uns_record(self, *, key: str | None = None) -> dict[str, object]:
        """The provenance record as stored in ``uns['llm4cell'][key]`` (h5ad-writable):
        :attr:`provenance`, ``key_added`` and ``groups`` (the :meth:`to_table` table
        indexed by group, with every marker and the candidates as JSON)."""
        table = self.to_table().set_index("group")
        table.index = table.index.astype(str)
        table["candidates"] = [
            json.dumps([c.model_dump() for c in self.annotations[g].candidates])
            for g in table.index
        ]
        table["markers"] = [", ".join(self.queries[g].genes) for g in table.index]
        record = dict(self.provenance)
        record["key_added"] = key or self.key_added
        if self.cell_scores is not None:
            # names of the obsm[key + "_scores"] columns (CL IDs), as scanpy keeps names
            record["score_names"] = pd.DataFrame(
                {"label": [_ontology_label(t) for t in self.cell_scores.columns]},
                index=pd.Index([str(t) for t in self.cell_scores.columns]))
        record["groups"] = table
        return h5ad_safe(record)

    # ------------------------------------------------------------------------- files

    def _report_page(self, adata: ad.AnnData) -> str:
        """The self-contained HTML report of this run (see :meth:`write_report`)."""
        if self._expr is None:
            msg = (
                "this AnnotationResult has no working expression (it was not made by "
                "run_annotation in this session); run llm4cell.run_annotation to report it"
            )
            raise InputError(msg)
        self._check_cells(adata)
        params = self.provenance.get("params")
        seed = params.get("random_state", 0) if isinstance(params, dict) else 0
        return render_report(adata, self, self._expr, random_state=int(seed))

    def write_report(self, path: _PathLike, adata: ad.AnnData) -> Path:
        """Write the HTML report (UMAP by label, marker dot plot, per-group evidence,
        parameters and versions) to ``path``, atomically.

        ``adata`` is the annotated AnnData; its ``obsm['X_umap']`` is used, or computed on
        the working expression and stored there.
        """
        return write_text(self._report_page(adata), path)

    def write(
        self,
        adata: ad.AnnData,
        *,
        h5ad: _PathLike | None = None,
        csv: _PathLike | None = None,
        report: _PathLike | None = None,
    ) -> list[Path]:
        """Write the per-group CSV, the HTML report and ``adata`` as ``.h5ad``, as one
        set: all of them or, on any failure, none (see :func:`llm4cell._io.write_set`).

        ``adata`` is the AnnData the result was written into (:meth:`to_adata`). The
        report is rendered first: it adds ``obsm['X_umap']`` when missing, which the
        ``.h5ad`` then keeps.

        Returns
        -------
        The paths written, in the order CSV, report, ``.h5ad`` (those given).
        """
        writers: list[tuple[_PathLike, Callable[[Path], object]]] = []
        if csv is not None:
            table = self.to_table()
            writers.append((csv, lambda p: table.to_csv(p, index=False)))
        if report is not None:
            page = self._report_page(adata)
            writers.append((report, lambda p: p.write_text(page, encoding="utf-8")))
        if h5ad is not None:
            writers.append((h5ad, h5ad_writer(adata)))
        return write_set(writers) if writers else []
