"""Label levels (lineage -> type family -> term), the decision over them, and the
per-cell outputs of annotate (levels columns, candidate scores, mixed groups)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import llm4cell
from llm4cell import MarkerQuery
from llm4cell.annotation._cells import mixed_groups, smooth
from llm4cell.knowledge import load_knowledge

PHAGOCYTE, LEUKOCYTE, NAIVE_T = "CL:0000234", "CL:0000738", "CL:0000898"
T_CELL, MONOCYTE, CLASSICAL = "CL:0000084", "CL:0000576", "CL:0000860"


@pytest.fixture(scope="module")
def kb():
    return load_knowledge()


def test_catch_all_intermediates_are_not_answers(kb):
    lv = kb.levels
    assert lv is not None
    # terms spanning several families (myeloid types; all leukocytes; CD4 and CD8 T)
    for tid in (PHAGOCYTE, LEUKOCYTE, NAIVE_T):
        assert tid not in lv.answerable, kb.ontology.label(tid)
        assert len(lv.families_under(tid)) > 1
    # named lineages and families, and types within one family
    for tid in (T_CELL, MONOCYTE, CLASSICAL):
        assert tid in lv.answerable, kb.ontology.label(tid)


def test_levels_of_terms(kb):
    cm = kb.levels.of(CLASSICAL)
    assert (cm.lineage, cm.family) == ("myeloid cell", "monocyte")
    cd8 = kb.levels.of("CL:0000625")
    assert cd8.family == "CD8+ T cell" and cd8.lineage == "T cell"
    # an intermediate gets the levels its descendants share, or none
    assert kb.levels.of(LEUKOCYTE).lineage == ""
    assert kb.levels.of(None).lineage == ""


def test_hierarchy_never_answers_a_catch_all(kb):
    """A myeloid list that the flat decision hedges to a catch-all ancestor gets a term
    that names a family or a lineage with levels."""
    q = MarkerQuery(id="m", genes=("HLA-DRA", "CD74", "CST3", "LYZ", "HLA-DPB1", "FCER1G",
                                   "TYROBP", "AIF1", "LST1", "S100A9"), tissue="blood")
    flat = kb.with_params(hierarchy=False).annotate([q])[0]
    leveled = kb.annotate([q])[0]
    assert leveled.ontology_id in kb.levels.answerable
    if flat.ontology_id not in kb.levels.answerable:  # the case the levels change
        assert leveled.ontology_id != flat.ontology_id


def test_mixed_groups_needs_two_unrelated_families(kb):
    groups = pd.Series(["a"] * 100 + ["b"] * 100 + ["c"] * 100)
    fams = np.array(["b_cell"] * 60 + ["nk"] * 40          # B + NK: unrelated
                    + ["cd4_t"] * 70 + ["t_other"] * 30    # CD4 T inside "T cell": related
                    + ["monocyte"] * 95 + ["nk"] * 5,      # 5%: below the share
                    dtype=object)
    ann = {g: llm4cell.Annotation(id=g, label="x", ontology_id=T_CELL, confidence=0.5)
           for g in "abc"}
    flags = mixed_groups(kb, fams, groups, ann)
    assert set(flags) == {"a"}
    assert "B cell 60%" in flags["a"] and "natural killer cell 40%" in flags["a"]


def test_smooth_averages_over_neighbours():
    from scipy import sparse
    g = sparse.csr_matrix(np.array([[0, 1.0, 0], [1.0, 0, 0], [0, 0, 0]]))
    s = np.array([[2.0, 0.0], [0.0, 2.0], [1.0, np.nan]])
    out = smooth(s, g, steps=1)
    np.testing.assert_allclose(out[0], [1.0, 1.0])
    np.testing.assert_allclose(out[2], [1.0, 0.0])  # no neighbour; NaN counts as 0


@pytest.fixture(scope="module")
def pbmc_levels():
    import scanpy as sc
    adata = sc.datasets.pbmc68k_reduced()
    llm4cell.annotate(adata, tissue="blood")
    return adata


def test_annotate_writes_levels_scores_and_flags(pbmc_levels):
    a = pbmc_levels
    obs = a.obs
    for col in ("llm4cell_lineage", "llm4cell_type"):
        assert isinstance(obs[col].dtype, pd.CategoricalDtype)
    # every cell's lineage is its label's
    kb = load_knowledge()
    for tid, lin in zip(obs["llm4cell_ontology_id"], obs["llm4cell_lineage"], strict=True):
        if isinstance(tid, str):
            assert kb.levels.of(tid).lineage == lin
    scores = a.obsm["llm4cell_scores"]
    rec = llm4cell.get_provenance(a, key="llm4cell")
    names = rec["score_names"]
    assert list(scores.columns) == list(names.index)
    assert scores.shape[0] == a.n_obs and scores.shape[1] >= 2
    assert all(c.startswith("CL:") for c in scores.columns)
    table = rec["groups"]
    assert {"lineage", "type", "mixed"} <= set(table.columns)
    # the group confidence is the mean of its cells'
    for g, row in table.iterrows():
        cells = obs.loc[obs["llm4cell_cluster"].astype(str) == g, "llm4cell_confidence"]
        assert abs(float(cells.mean()) - row["confidence"]) < 1e-3


def test_family_scores_take_the_best_type_of_each_family(kb):
    from llm4cell.annotation._cells import family_scores

    ids = ["CL:0000860", "CL:0000875", "CL:0000236", "CL:9999999"]  # 2 monocytes, B, none
    s = np.array([[1.0, 3.0, 2.0, 0.5], [np.nan, np.nan, 1.0, np.nan]])
    fam, keys = family_scores(kb, s, ids)
    assert keys[:2] == ["monocyte", "b_cell"] and keys[2] == "CL:9999999"
    np.testing.assert_allclose(fam[0], [3.0, 2.0, 0.5])
    assert np.isnan(fam[1, 0]) and fam[1, 1] == 1.0


def test_vote_sample_caps_each_group():
    from llm4cell.annotation._cells import vote_sample

    groups = pd.Series(["a"] * 50 + ["b"] * 5 + [None] * 3)
    rows = vote_sample(groups, per_group=20, seed=0)
    picked = groups.iloc[rows]
    assert (picked == "a").sum() == 20 and (picked == "b").sum() == 5
    assert picked.notna().all() and len(set(rows)) == len(rows)
    assert np.array_equal(rows, vote_sample(groups, per_group=20, seed=0))  # seeded
