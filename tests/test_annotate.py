"""The real annotate pipeline on pbmc68k_reduced and on planted synthetic counts."""

from __future__ import annotations

import inspect
import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from conftest import PROGRAMS

import llm4cell
from llm4cell.ontology import load_ontology

B_LINEAGE, NK, MONOCYTE, T_CELL, LYMPHOCYTE = (
    "CL:0000945", "CL:0000623", "CL:0000576", "CL:0000084", "CL:0000542",
)


def _in_subtree(tid, root: str) -> bool:
    onto = load_ontology()
    return isinstance(tid, str) and (tid == root or onto.is_ancestor(root, tid))


@pytest.fixture(scope="module")
def pbmc_annotated():
    import scanpy as sc

    adata = sc.datasets.pbmc68k_reduced()
    llm4cell.annotate(adata, groupby="bulk_labels", tissue="blood")
    return adata


def test_pbmc_lineages_land_in_their_subtrees(pbmc_annotated):
    """B, NK, monocyte and T cell groups (bulk_labels) get labels inside their CL subtrees.

    Two documented exceptions, both honest answers of the engine rather than errors:
    the 8-cell naive CD4 T group has a single significant marker and may be "unknown"
    (if it is labelled, the label must be a T cell); the CD8 cytotoxic group's markers
    (CCL5, NKG7, GNLY, GZMA ...) split between NK and CD8 T cells, so the engine may
    answer their common ancestor "lymphocyte" instead of guessing one of them.
    """
    g = pbmc_annotated.uns["llm4cell"]["groups"]
    expect = {
        "CD19+ B": B_LINEAGE,
        "CD56+ NK": NK,
        "CD14+ Monocyte": MONOCYTE,
        "CD4+/CD25 T Reg": T_CELL,
        "CD4+/CD45RO+ Memory": T_CELL,
        "CD8+/CD45RA+ Naive Cytotoxic": T_CELL,
    }
    for group, root in expect.items():
        row = g.loc[group]
        assert _in_subtree(row["ontology_id"], root), (group, row["label"])
        assert 0 < row["confidence"] <= 1
        assert row["evidence"] and json.loads(row["candidates"])
    naive = g.loc["CD4+/CD45RA+/CD25- Naive T"]
    assert naive["label"] == "unknown" or _in_subtree(naive["ontology_id"], T_CELL)
    cyto = g.loc["CD8+ Cytotoxic T"]
    assert _in_subtree(cyto["ontology_id"], T_CELL) or cyto["ontology_id"] == LYMPHOCYTE


def test_pbmc_obs_columns_and_provenance(pbmc_annotated):
    a = pbmc_annotated
    obs = a.obs
    assert isinstance(obs["cell_type"].dtype, pd.CategoricalDtype)
    assert obs["cell_type_confidence"].between(0, 1).all()
    # per-cell values equal the group's answer
    g = a.uns["llm4cell"]["groups"]
    for group, row in g.iterrows():
        cells = obs[obs["bulk_labels"].astype(str) == group]
        assert (cells["cell_type"] == row["label"]).all()
        assert np.allclose(cells["cell_type_confidence"], row["confidence"])
    unknown = obs["cell_type"] == "unknown"
    assert obs.loc[unknown, "cell_type_ontology_id"].isna().all()
    assert obs.loc[~unknown, "cell_type_ontology_id"].str.startswith("CL:").all()
    rec = a.uns["llm4cell"]
    assert rec["backend"] == "knowledge"
    assert rec["cl_version"] == "v2026-03-26"
    assert rec["version"] == llm4cell.__version__
    assert rec["params"]["tissue"] == "blood"
    assert rec["input"]["matrix"] == ".raw"  # X of pbmc68k_reduced is scaled
    assert rec["input"]["kind"] == "lognorm"
    assert rec["groupby"] == "bulk_labels" and not rec["clusters_computed"]
    assert "cellconsensus" in rec["knowledge"]["source"]


def test_h5ad_round_trip(pbmc_annotated, tmp_path):
    path = tmp_path / "out.h5ad"
    pbmc_annotated.write_h5ad(path)
    back = ad.read_h5ad(path)
    assert back.uns["llm4cell"]["groups"].shape[0] == 10
    assert (back.obs["cell_type"] == pbmc_annotated.obs["cell_type"]).all()


def test_default_route_clusters_with_leiden(pbmc):
    X_before = pbmc.X.copy()
    raw_before = pbmc.raw.X.copy()
    out = llm4cell.annotate(pbmc, copy=True)
    # copy=True leaves the input untouched and returns the annotated copy
    assert "cell_type" not in pbmc.obs and "llm4cell" not in pbmc.uns
    assert np.array_equal(pbmc.X, X_before)
    assert (pbmc.raw.X != raw_before).nnz == 0
    assert out is not None and "cell_type_cluster" in out.obs
    assert out.uns["llm4cell"]["clusters_computed"]
    n_groups = out.obs["cell_type_cluster"].nunique()
    assert 4 <= n_groups <= 30
    assert out.uns["llm4cell"]["groups"].shape[0] == n_groups
    # the B cells of bulk_labels mostly fall in B-lineage labelled clusters
    b_cells = out.obs[out.obs["bulk_labels"] == "CD19+ B"]
    share = b_cells["cell_type_ontology_id"].map(lambda t: _in_subtree(t, B_LINEAGE)).mean()
    assert share > 0.6


def test_same_seed_same_result(planted):
    a1 = llm4cell.annotate(planted, copy=True)
    a2 = llm4cell.annotate(planted, copy=True)
    assert (a1.obs["cell_type_cluster"] == a2.obs["cell_type_cluster"]).all()
    assert (a1.obs["cell_type"] == a2.obs["cell_type"]).all()


def test_planted_programs_are_found_from_raw_counts(planted):
    X_before = planted.X.copy()
    llm4cell.annotate(planted, groupby="truth", key_added="pred")
    assert (planted.X != X_before).nnz == 0  # counts were normalised on a copy
    rec = planted.uns["llm4cell"]
    assert rec["input"]["kind"] == "counts"
    assert "normalize_total" in rec["input"]["transform"]
    g = rec["groups"]
    for name, (root, markers) in PROGRAMS.items():
        row = g.loc[name]
        assert _in_subtree(row["ontology_id"], root), (name, row["label"])
        # evidence excludes MT- and ribosomal genes that are high everywhere
        top = row["markers"].split(", ")
        assert not {"MT-CO1", "RPL13", "RPS18"} & set(top)
        assert set(top[:4]) <= set(markers)
    assert "pred_confidence" in planted.obs


def test_planted_clusters_without_groupby(planted):
    llm4cell.annotate(planted)
    tab = pd.crosstab(planted.obs["truth"], planted.obs["cell_type"])
    # each planted type is labelled consistently by its dominant label
    for name, (root, _) in PROGRAMS.items():
        label = tab.loc[name].idxmax()
        assert tab.loc[name, label] / tab.loc[name].sum() > 0.9
        ids = planted.obs.loc[planted.obs["truth"] == name, "cell_type_ontology_id"]
        assert _in_subtree(ids.mode().iloc[0], root)


def test_default_route_on_more_than_8192_cells():
    """scanpy switches to approximate neighbours (pynndescent) from 8,192 cells on; that
    path must work with the pinned dependencies."""
    from conftest import make_planted_counts

    big = make_planted_counts(n_per_type=1700, seed=1)
    assert big.n_obs > 8192
    llm4cell.annotate(big, n_markers=10)
    tab = pd.crosstab(big.obs["truth"], big.obs["cell_type"])
    assert (tab.max(axis=1) / tab.sum(axis=1)).min() > 0.9


def test_mouse_symbols(planted):
    mouse = planted.copy()
    mouse.var_names = [g.capitalize() if not g.startswith("MT-") else g
                       for g in planted.var_names]
    llm4cell.annotate(mouse, groupby="truth", species="mouse")
    g = mouse.uns["llm4cell"]["groups"]
    assert _in_subtree(g.loc["B", "ontology_id"], PROGRAMS["B"][0])
    assert _in_subtree(g.loc["NK", "ontology_id"], PROGRAMS["NK"][0])


def test_ensembl_ids_with_symbol_column(planted):
    from llm4cell.genes import _ensembl_table

    rev = {sym: gid for gid, sym in _ensembl_table("human").items()}
    ens = planted.copy()
    ens.var["feature_name"] = list(planted.var_names)
    ens.var_names = [rev.get(g, f"ENSG{90000000000 + i:011d}")
                     for i, g in enumerate(planted.var_names)]
    llm4cell.annotate(ens, groupby="truth")
    assert ens.uns["llm4cell"]["input"]["gene_symbols"] == "var['feature_name']"
    assert _in_subtree(ens.uns["llm4cell"]["groups"].loc["Mono", "ontology_id"], MONOCYTE)
    # and without the column, IDs are mapped by the shipped GENCODE table
    del ens.var["feature_name"]
    llm4cell.annotate(ens, groupby="truth", overwrite=True)  # replaces the first run's keys
    assert "mapped" in ens.uns["llm4cell"]["input"]["gene_symbols"]
    assert _in_subtree(ens.uns["llm4cell"]["groups"].loc["Mono", "ontology_id"], MONOCYTE)


def test_small_group_is_unknown_with_reason(planted):
    planted.obs["grp"] = planted.obs["truth"].astype(str)
    planted.obs.iloc[0, planted.obs.columns.get_loc("grp")] = "lonely"
    res, _ = llm4cell.run_annotation(planted, groupby="grp")
    assert res.annotations["lonely"].label == "unknown"
    assert "too few cells" in res.annotations["lonely"].evidence
    assert set(res.annotations) == set(planted.obs["grp"])


def test_csv_and_report(pbmc, tmp_path):
    csv, report = tmp_path / "groups.csv", tmp_path / "report.html"
    llm4cell.annotate(pbmc, groupby="bulk_labels", csv=csv, report=report)
    df = pd.read_csv(csv)
    assert list(df.columns[:6]) == ["group", "n_cells", "top_markers",
                                    "n_significant_markers", "label", "ontology_id"]
    assert {"confidence", "candidate_2", "candidate_3", "candidate_4", "evidence"} <= set(df)
    assert df["n_cells"].sum() == pbmc.n_obs
    html = report.read_text()
    assert html.count("data:image/png;base64,") >= 2  # UMAP and dot plot
    assert "http://" not in html and "https://" not in html
    for label in df["label"]:
        assert label.replace("'", "&#x27;") in html
    assert "v2026-03-26" in html


def test_result_object(planted):
    res, _ = llm4cell.run_annotation(planted, groupby="truth")
    assert "AnnotationResult(200 cells, 5 groups" in repr(res)
    df = res.to_df()
    assert list(df["group"]) == sorted(PROGRAMS)
    cells = res.cell_table()
    assert cells.index.equals(planted.obs_names)


def test_public_api_conventions():
    sig = inspect.signature(llm4cell.annotate)
    params = sig.parameters
    assert next(iter(params)) == "adata"
    assert all(p.kind is p.KEYWORD_ONLY for n, p in params.items() if n != "adata")
    assert params["copy"].default is False
    assert params["key_added"].default == "cell_type"
    assert params["backend"].default == "knowledge"


def test_backend_registry_matches_show():
    table = llm4cell.show()
    assert list(table["name"]) == [b.name for b in llm4cell.BACKENDS]
    assert not table.loc[table["name"] == "knowledge", "needs_network"].iloc[0]
    assert {"openai:MODEL", "anthropic:MODEL", "llamacpp:PATH.gguf"} <= set(table["name"])
    with pytest.raises(llm4cell.BackendError, match="unknown backend 'gemini:x'"):
        llm4cell.get_annotator("gemini:x")


def test_many_groups_rank_without_a_warning_flood():
    """400 groups printed about 1,900 pandas PerformanceWarning lines: scanpy's
    rank_genes_groups grows its result table one column at a time. 150 groups of 3
    cells give 750 such columns; not one warning may reach the user, and the warning
    filters are the same after the call (no global silencing)."""
    import warnings

    from scipy import sparse

    from llm4cell.preprocess._preprocess import rank_markers

    rng = np.random.default_rng(0)
    n_groups, per, genes = 150, 3, [f"G{i}" for i in range(30)]
    x = np.log1p(rng.poisson(1.0, size=(n_groups * per, len(genes)))).astype(np.float32)
    obs = pd.DataFrame({"g": pd.Categorical([f"g{i}" for i in range(n_groups)
                                             for _ in range(per)])},
                       index=[f"c{i}" for i in range(n_groups * per)])
    work = ad.AnnData(sparse.csr_matrix(x), obs=obs, var=pd.DataFrame(index=genes))
    filters = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        markers = rank_markers(work, "g", n_markers=5)
    flood = [w for w in caught if issubclass(w.category, pd.errors.PerformanceWarning)]
    assert flood == []
    assert len(markers) == n_groups
    assert warnings.filters == filters


def test_existing_obs_columns_are_kept_unless_asked(planted):
    """GUIDE: an existing obs column is never overwritten unless the user asks; a
    CELLxGENE file keeps the authors' labels in obs['cell_type'], the default key."""
    planted.obs["cell_type"] = planted.obs["truth"].astype(str)
    authors = planted.obs["cell_type"].copy()
    with pytest.raises(llm4cell.InputError, match=r"'cell_type'.*--key-added"):
        llm4cell.annotate(planted, groupby="truth")
    pd.testing.assert_series_equal(planted.obs["cell_type"], authors)
    assert "llm4cell" not in planted.uns
    llm4cell.annotate(planted, groupby="truth", key_added="llm4cell")
    pd.testing.assert_series_equal(planted.obs["cell_type"], authors)
    assert "llm4cell_ontology_id" in planted.obs
    llm4cell.annotate(planted, groupby="truth", overwrite=True)
    assert not planted.obs["cell_type"].astype(str).equals(authors)


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"resolution": -1.0}, "--resolution"),
    ({"resolution": 0}, "--resolution"),
    ({"resolution": float("nan")}, "--resolution"),
    ({"n_markers": 0}, "--n-markers"),
    ({"random_state": -1}, "--random-state"),
    ({"key_added": ""}, "--key-added"),
    ({"key_added": "a/b"}, "--key-added"),
    ({"key_added": " x"}, "--key-added"),
])
def test_impossible_parameters_are_refused_before_any_work(planted, kwargs, words):
    with pytest.raises(llm4cell.InputError, match=words):
        llm4cell.annotate(planted, **kwargs)
    assert list(planted.obs.columns) == ["truth"]


def test_too_few_cells_to_cluster(planted):
    with pytest.raises(llm4cell.InputError, match=r"too few cells.*--groupby"):
        llm4cell.annotate(planted[:5].copy())
