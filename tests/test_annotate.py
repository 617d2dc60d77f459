"""The real annotate pipeline on pbmc68k_reduced and on planted synthetic counts."""

from __future__ import annotations

import dataclasses
import io
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
    g = pbmc_annotated.uns["llm4cell"]["llm4cell"]["groups"]
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
    # 765 genes without CD14 cannot tell classical from non-classical monocytes (FCGR3A
    # is detected in 96% of the group): the sibling contest leaves the family term
    assert g.loc["CD14+ Monocyte", "ontology_id"] in {MONOCYTE, "CL:0000860"}
    assert "subtype undecided -> monocyte" in g.loc["CD14+ Monocyte", "evidence"]


def test_pbmc_obs_columns_and_provenance(pbmc_annotated):
    a = pbmc_annotated
    obs = a.obs
    assert isinstance(obs["llm4cell"].dtype, pd.CategoricalDtype)
    assert obs["llm4cell_confidence"].between(0, 1).all()
    # per-cell values equal the group's answer
    rec = llm4cell.get_provenance(a, key="llm4cell")
    assert rec is a.uns["llm4cell"]["llm4cell"]
    g = rec["groups"]
    for group, row in g.iterrows():
        cells = obs[obs["bulk_labels"].astype(str) == group]
        assert (cells["llm4cell"] == row["label"]).all()
        assert np.allclose(cells["llm4cell_confidence"], row["confidence"])
    unknown = obs["llm4cell"] == "unknown"
    assert obs.loc[unknown, "llm4cell_ontology_id"].isna().all()
    assert obs.loc[~unknown, "llm4cell_ontology_id"].str.startswith("CL:").all()
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
    assert llm4cell.get_provenance(back)["groups"].shape[0] == 10
    assert (back.obs["llm4cell"] == pbmc_annotated.obs["llm4cell"]).all()


@pytest.mark.slow
def test_default_route_clusters_with_leiden(pbmc):
    X_before = pbmc.X.copy()
    raw_before = pbmc.raw.X.copy()
    out = llm4cell.annotate(pbmc, copy=True)
    # copy=True leaves the input untouched and returns the annotated copy
    assert "llm4cell" not in pbmc.obs and "llm4cell" not in pbmc.uns
    assert np.array_equal(pbmc.X, X_before)
    assert (pbmc.raw.X != raw_before).nnz == 0
    assert out is not None and "llm4cell_cluster" in out.obs
    rec = llm4cell.get_provenance(out)
    assert rec["clusters_computed"]
    n_groups = out.obs["llm4cell_cluster"].nunique()
    assert 4 <= n_groups <= 30
    assert rec["groups"].shape[0] == n_groups
    # the B cells of bulk_labels mostly fall in B-lineage labelled clusters
    b_cells = out.obs[out.obs["bulk_labels"] == "CD19+ B"]
    share = b_cells["llm4cell_ontology_id"].map(lambda t: _in_subtree(t, B_LINEAGE)).mean()
    assert share > 0.6


def test_same_seed_same_result(planted):
    a1 = llm4cell.annotate(planted, copy=True)
    a2 = llm4cell.annotate(planted, copy=True)
    assert (a1.obs["llm4cell_cluster"] == a2.obs["llm4cell_cluster"]).all()
    assert (a1.obs["llm4cell"] == a2.obs["llm4cell"]).all()


def test_planted_programs_are_found_from_raw_counts(planted):
    X_before = planted.X.copy()
    llm4cell.annotate(planted, groupby="truth", key_added="pred")
    assert (planted.X != X_before).nnz == 0  # counts were normalised on a copy
    rec = llm4cell.get_provenance(planted, key="pred")
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
    tab = pd.crosstab(planted.obs["truth"], planted.obs["llm4cell"])
    # each planted type is labelled consistently by its dominant label
    for name, (root, _) in PROGRAMS.items():
        label = tab.loc[name].idxmax()
        assert tab.loc[name, label] / tab.loc[name].sum() > 0.9
        ids = planted.obs.loc[planted.obs["truth"] == name, "llm4cell_ontology_id"]
        assert _in_subtree(ids.mode().iloc[0], root)


@pytest.mark.slow
def test_default_route_on_more_than_8192_cells():
    """scanpy switches to approximate neighbours (pynndescent) from 8,192 cells on; that
    path must work with the pinned dependencies."""
    from conftest import make_planted_counts

    big = make_planted_counts(n_per_type=1700, seed=1)
    assert big.n_obs > 8192
    llm4cell.annotate(big, n_markers=10)
    tab = pd.crosstab(big.obs["truth"], big.obs["llm4cell"])
    assert (tab.max(axis=1) / tab.sum(axis=1)).min() > 0.9


def test_mouse_symbols(planted):
    mouse = planted.copy()
    mouse.var_names = [g.capitalize() if not g.startswith("MT-") else g
                       for g in planted.var_names]
    llm4cell.annotate(mouse, groupby="truth", species="mouse")
    g = llm4cell.get_provenance(mouse)["groups"]
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
    rec = llm4cell.get_provenance(ens)
    assert rec["input"]["gene_symbols"] == "var['feature_name']"
    assert _in_subtree(rec["groups"].loc["Mono", "ontology_id"], MONOCYTE)
    # and without the column, IDs are mapped by the shipped GENCODE table
    del ens.var["feature_name"]
    llm4cell.annotate(ens, groupby="truth", overwrite=True)  # replaces the first run's keys
    rec = llm4cell.get_provenance(ens)
    assert "mapped" in rec["input"]["gene_symbols"]
    assert _in_subtree(rec["groups"].loc["Mono", "ontology_id"], MONOCYTE)


def test_small_group_is_unknown_with_reason(planted):
    planted.obs["grp"] = planted.obs["truth"].astype(str)
    planted.obs.iloc[0, planted.obs.columns.get_loc("grp")] = "lonely"
    res = llm4cell.run_annotation(planted, groupby="grp")
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
    res = llm4cell.run_annotation(planted, groupby="truth")
    assert isinstance(res, llm4cell.AnnotationResult)
    assert "AnnotationResult(200 cells, 5 groups" in repr(res)
    df = res.to_table()
    assert list(df["group"]) == sorted(PROGRAMS)
    pd.testing.assert_frame_equal(res.to_df(), df)  # the former name stays
    cells = res.cell_table()
    assert cells.index.equals(planted.obs_names)
    assert list(planted.obs.columns) == ["truth"] and "llm4cell" not in planted.uns


def test_summary_has_one_row_per_label(planted):
    """Two groups with the same answer make one row: cells summed, confidence averaged
    over the cells (not over the groups)."""
    planted.obs["grp"] = planted.obs["truth"].astype(str)
    b_cells = planted.obs_names[planted.obs["grp"] == "B"]
    planted.obs.loc[b_cells[:34], "grp"] = "B1"  # 34 + 6 cells, both B cells
    res = llm4cell.run_annotation(planted, groupby="grp")
    # distinct confidences for the two groups, so that the weighting shows
    res.annotations["B1"] = res.annotations["B1"].model_copy(update={"confidence": 0.3})
    table = res.to_table().set_index("group")
    summary = res.summary()
    assert list(summary.columns) == ["label", "ontology_id", "n_groups", "n_cells",
                                     "mean_confidence"]
    assert summary["n_cells"].sum() == planted.n_obs
    assert summary["n_cells"].is_monotonic_decreasing
    b_label = table.loc["B", "label"]
    assert table.loc["B1", "label"] == b_label
    assert table.loc["B1", "confidence"] != table.loc["B", "confidence"]
    row = summary.set_index("label").loc[b_label]
    assert row["n_groups"] == 2 and row["n_cells"] == 40
    expect = (34 * table.loc["B1", "confidence"] + 6 * table.loc["B", "confidence"]) / 40
    assert row["mean_confidence"] == pytest.approx(expect)
    assert len(summary) == table.groupby(["label", "ontology_id"]).ngroups


def test_result_writes_its_outputs(planted, tmp_path):
    res = llm4cell.run_annotation(planted, groupby="truth", key_added="pred")
    res.to_adata(planted)
    paths = res.write(planted, h5ad=tmp_path / "a.h5ad", csv=tmp_path / "a.csv",
                      report=tmp_path / "a.html")
    assert paths == [tmp_path / "a.csv", tmp_path / "a.html", tmp_path / "a.h5ad"]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a.csv"),
                                  pd.read_csv(io.StringIO(res.to_table().to_csv(index=False))))
    back = ad.read_h5ad(tmp_path / "a.h5ad")
    assert "X_umap" in back.obsm  # the report drew it first, the h5ad kept it
    assert list(llm4cell.get_provenance(back, key="pred")["groups"].index) == sorted(PROGRAMS)
    assert res.write_report(tmp_path / "b.html", planted) == tmp_path / "b.html"
    assert "llm4cell annotation report" in (tmp_path / "b.html").read_text()
    assert res.write(planted) == []


def test_result_write_is_all_or_nothing(planted, tmp_path):
    res = llm4cell.run_annotation(planted, groupby="truth")
    res.to_adata(planted)
    blocked = tmp_path / "file"
    blocked.write_text("")
    with pytest.raises(llm4cell.Llm4cellError, match="cannot write"):
        res.write(planted, csv=tmp_path / "a.csv", h5ad=blocked / "a.h5ad")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_result_without_expression_cannot_report(planted, tmp_path):
    res = llm4cell.run_annotation(planted, groupby="truth")
    bare = dataclasses.replace(res)  # a result built by hand keeps no working data
    with pytest.raises(llm4cell.InputError, match="run_annotation"):
        bare.write_report(tmp_path / "r.html", planted)
    with pytest.raises(llm4cell.InputError, match="cells differ"):
        res.write_report(tmp_path / "r.html", planted[:10].copy())
    assert not (tmp_path / "r.html").exists()


def test_two_keys_keep_two_records(planted, tmp_path):
    """GUIDE: a provenance record per key in uns['llm4cell'][key]; the second
    annotation does not replace the first one's record."""
    llm4cell.annotate(planted, groupby="truth", key_added="first")
    llm4cell.annotate(planted, groupby="truth", key_added="second", n_markers=5)
    assert list(planted.uns["llm4cell"]) == ["first", "second"]
    path = tmp_path / "two.h5ad"
    planted.write_h5ad(path)
    back = ad.read_h5ad(path)
    first = llm4cell.get_provenance(back, key="first")
    second = llm4cell.get_provenance(back, key="second")
    assert first["key_added"] == "first" and second["key_added"] == "second"
    assert first["params"]["n_markers"] == 25 and second["params"]["n_markers"] == 5
    assert first["schema_version"] == 2
    with pytest.raises(llm4cell.InputError, match=r"key 'third'.*'first', 'second'"):
        llm4cell.get_provenance(back, key="third")


def test_get_provenance_without_annotation(planted):
    with pytest.raises(llm4cell.InputError, match="no llm4cell annotation"):
        llm4cell.get_provenance(planted)


def test_record_of_an_older_file_is_read_and_kept(planted):
    """Files written before the per-key layout hold one record in uns['llm4cell']
    itself: it is read under its key_added and kept beside a new key's record."""
    res = llm4cell.run_annotation(planted, groupby="truth", key_added="cell_type")
    res.to_adata(planted)
    old = planted.uns["llm4cell"]["cell_type"]
    planted.uns["llm4cell"] = old  # the former layout
    assert llm4cell.get_provenance(planted, key="cell_type") is old
    llm4cell.annotate(planted, groupby="truth")
    assert set(planted.uns["llm4cell"]) == {"cell_type", "llm4cell"}
    assert llm4cell.get_provenance(planted, key="cell_type") is old


def test_foreign_uns_entry_is_refused_before_any_work(planted):
    planted.uns["llm4cell"] = "something else"
    with pytest.raises(llm4cell.InputError, match=r"uns\['llm4cell'\]"):
        llm4cell.annotate(planted, groupby="truth")
    assert list(planted.obs.columns) == ["truth"]


def test_progress_callback(planted):
    """A callable ``progress`` hears (done, total) groups, also from a backend that
    reports no progress of its own (knowledge)."""
    calls = []
    llm4cell.annotate(planted, groupby="truth", progress=lambda d, t: calls.append((d, t)))
    assert calls and calls[-1] == (5, 5)


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

    from llm4cell.preprocess import rank_markers

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
    """GUIDE: the default key does not collide with CELLxGENE's columns, and an existing
    obs column is never overwritten unless the user asks."""
    planted.obs["cell_type"] = planted.obs["truth"].astype(str)  # the authors' labels
    authors = planted.obs["cell_type"].copy()
    llm4cell.annotate(planted, groupby="truth")
    pd.testing.assert_series_equal(planted.obs["cell_type"], authors)
    assert "llm4cell_ontology_id" in planted.obs
    first = planted.obs["llm4cell"].copy()
    planted.obs["llm4cell"] = "mine"
    with pytest.raises(llm4cell.InputError, match=r"'llm4cell'.*--key-added"):
        llm4cell.annotate(planted, groupby="truth")
    assert (planted.obs["llm4cell"] == "mine").all()
    llm4cell.annotate(planted, groupby="truth", overwrite=True)
    assert (planted.obs["llm4cell"].astype(str) == first.astype(str)).all()
    with pytest.raises(llm4cell.InputError, match=r"'cell_type'.*--overwrite-key"):
        llm4cell.annotate(planted, groupby="truth", key_added="cell_type")
    pd.testing.assert_series_equal(planted.obs["cell_type"], authors)


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


def test_text_group_names_are_ordered_naturally(planted):
    """An object column of cluster numbers as text: "2" before "10" in the table."""
    adata = planted.copy()
    names = np.array(["10", "2", "1"])
    adata.obs["clusters"] = names[np.arange(adata.n_obs) % 3]  # object dtype, not categorical
    result = llm4cell.run_annotation(adata, groupby="clusters")
    assert list(result.to_table()["group"]) == ["1", "2", "10"]
    assert list(result.groups.cat.categories) == ["1", "2", "10"]


def test_computed_clusters_are_categorical(planted):
    out = llm4cell.annotate(planted, copy=True)
    clusters = out.obs["llm4cell_cluster"]
    assert isinstance(clusters.dtype, pd.CategoricalDtype)
    cats = list(clusters.cat.categories)
    assert cats == sorted(cats, key=int)  # Leiden numbers in numeric order
