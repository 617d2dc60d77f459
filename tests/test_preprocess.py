"""Marker ranking: the table read from scanpy's rank_genes_groups and the evidence filters."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from conftest import PROGRAMS, make_planted_counts

from llm4cell.genes import is_evidence_gene
from llm4cell.preprocess import prepare_expression, rank_markers
from llm4cell.preprocess._markers import MAX_PVAL_ADJ, MIN_LOGFC, MIN_PCT, MIN_SIGNIFICANT


def _reference(work: ad.AnnData, groupby: str, groups: list[str], n: int) -> dict:
    """The documented filters applied to scanpy's own result, group by group, read
    straight from ``uns`` (the reading llm4cell used before ``rank_genes_groups_df``)."""
    w = work.copy()
    sc.tl.rank_genes_groups(w, groupby, groups=groups, reference="rest", method="wilcoxon",
                            pts=True, n_genes=min(300, w.n_vars), use_raw=False)
    res = w.uns["rank_genes_groups"]
    out = {}
    for g in groups:
        names = np.asarray(res["names"][g]).astype(str)
        df = pd.DataFrame({
            "gene": names,
            "score": np.asarray(res["scores"][g], dtype=float),
            "logfoldchange": np.asarray(res["logfoldchanges"][g], dtype=float),
            "pval_adj": np.asarray(res["pvals_adj"][g], dtype=float),
            "pct_in": res["pts"].loc[names, g].to_numpy(dtype=float),
            "pct_out": res["pts_rest"].loc[names, g].to_numpy(dtype=float),
        })
        ok = ((df["logfoldchange"] > MIN_LOGFC) & (df["pct_in"] >= MIN_PCT)
              & df["gene"].map(is_evidence_gene))
        df["significant"] = df["pval_adj"] < MAX_PVAL_ADJ
        chosen = df[ok & df["significant"]]
        if len(chosen) < min(MIN_SIGNIFICANT, n):
            chosen = df[ok]
        out[g] = chosen.head(n).reset_index(drop=True)
    return out


@pytest.fixture(scope="module")
def work() -> ad.AnnData:
    """Planted types, plus a 3-cell group (too small to be significant: the fallback) and
    a 1-cell group (below min_cells: an empty table)."""
    planted = make_planted_counts(n_per_type=30)
    w = prepare_expression(planted).adata
    labels = planted.obs["truth"].astype(str).to_numpy(dtype=object)
    labels[0:3] = "small"
    labels[30] = "single"
    w.obs["g"] = pd.Categorical(labels, categories=["T", "small", "B", "NK", "Mono", "Hep",
                                                    "single", "absent"])
    return w


@pytest.mark.parametrize("n_markers", [25, 2])
def test_rank_markers_applies_the_documented_filters(work: ad.AnnData, n_markers: int) -> None:
    markers = rank_markers(work, "g", n_markers=n_markers)
    assert list(markers) == ["T", "small", "B", "NK", "Mono", "Hep", "single"]
    valid = ["T", "small", "B", "NK", "Mono", "Hep"]
    expected = _reference(work, "g", valid, n_markers)
    for g in valid:
        pd.testing.assert_frame_equal(markers[g], expected[g], check_exact=True)
    assert markers["single"].empty
    assert list(markers["single"].columns) == [
        "gene", "score", "logfoldchange", "pval_adj", "pct_in", "pct_out"]
    assert not markers["small"]["significant"].all()  # the fallback was used
    assert markers["B"]["significant"].all()
    assert set(markers["B"]["gene"]) <= set(PROGRAMS["B"][1])
    assert "MT-CO1" not in set(pd.concat(markers.values())["gene"])
    assert "_llm4cell_rgg" not in work.uns


def test_rank_markers_on_a_plain_column_sorts_the_groups(work: ad.AnnData) -> None:
    w = work.copy()
    w.obs["plain"] = w.obs["g"].astype(str)
    markers = rank_markers(w, "plain", n_markers=5, min_cells=4)
    assert list(markers) == sorted(set(w.obs["plain"]))
    assert markers["small"].empty and markers["single"].empty
    assert all(len(markers[g]) == 5 for g in ["B", "Hep", "Mono", "NK", "T"])


def test_rank_markers_with_fewer_than_two_usable_groups(work: ad.AnnData) -> None:
    w = work[work.obs["g"].isin(["T", "single"])].copy()
    markers = rank_markers(w, "g", min_cells=2)
    assert list(markers) == ["T", "single"]
    assert all(m.empty for m in markers.values())
