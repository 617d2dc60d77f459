"""Scoring metrics on the real Cell Ontology (v2026-03-26), with hand-computed values."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from llm4cell.metrics import (
    batch_level_accuracy,
    cell_level_accuracy,
    expected_calibration_error,
    hierarchical_prf,
    lca_similarity,
    ontology_agreement,
    reliability_bins,
    rouge1_f1,
    score_pairs,
    summarize,
    text_exact_match,
)
from llm4cell.ontology import load_ontology

CELL, EUKARYOTIC = "CL:0000000", "CL:0000255"
B_CELL, T_CELL, CD4_AB_T = "CL:0000236", "CL:0000084", "CL:0000624"
MONOCYTE, CLASSICAL, NON_CLASSICAL = "CL:0000576", "CL:0000860", "CL:0000875"
HEPATOCYTE = "CL:0000182"
# Obsolete, replaced by CL:0000215 "obsolete barrier cell", itself obsolete without a
# replacement: CellOntology.resolve returns the obsolete CL:0000215 for it.
OBSOLETE_CHAIN = "CL:0000073"
# Obsolete "bone matrix secreting cell", replaced by osteoblast.
OBSOLETE_OSTEOBLAST, OSTEOBLAST = "CL:0000054", "CL:0000062"


@pytest.fixture(scope="module")
def onto():
    return load_ontology()


# ------------------------------------------------------------------ ontology_agreement


@pytest.mark.parametrize(
    ("pred", "truth", "expected"),
    [
        (CD4_AB_T, T_CELL, 0.5),
        (T_CELL, CD4_AB_T, 0.5),
        (B_CELL, T_CELL, 0.0),
        (CLASSICAL, MONOCYTE, 0.5),
        (MONOCYTE, CLASSICAL, 0.5),
        (CLASSICAL, NON_CLASSICAL, 0.0),
        (B_CELL, B_CELL, 1.0),
        (CELL, B_CELL, 0.0),
        (EUKARYOTIC, B_CELL, 0.0),
        (B_CELL, EUKARYOTIC, 0.0),
        (None, B_CELL, 0.0),
        (float("nan"), B_CELL, 0.0),
        ("not an id", B_CELL, 0.0),
        (OBSOLETE_CHAIN, B_CELL, 0.0),
    ],
)
def test_agreement_scale(onto, pred, truth, expected):
    assert ontology_agreement(pred, truth, ontology=onto) == expected


def test_generic_ancestor_is_a_real_ancestor_but_no_partial_match(onto):
    assert onto.is_ancestor(CELL, B_CELL) and onto.is_ancestor(EUKARYOTIC, B_CELL)
    assert ontology_agreement(CELL, B_CELL) == 0.0


@pytest.mark.parametrize("truth", [None, float("nan"), "", "CL:9999999", OBSOLETE_CHAIN])
def test_missing_truth_is_nan(truth):
    assert math.isnan(ontology_agreement(B_CELL, truth))
    assert all(math.isnan(v) for v in hierarchical_prf(B_CELL, truth))
    assert math.isnan(lca_similarity(B_CELL, truth))
    assert math.isnan(text_exact_match("B cell", truth))
    assert math.isnan(rouge1_f1("B cell", truth))


def test_replacement_chain_ending_obsolete_counts_as_missing(onto):
    # CL:0000073 is replaced by a term that is itself obsolete with no replacement:
    # resolve() follows the chain and finds no live term.
    assert onto.is_deprecated(OBSOLETE_CHAIN) and onto.resolve(OBSOLETE_CHAIN) is None
    assert math.isnan(ontology_agreement(OBSOLETE_CHAIN, OBSOLETE_CHAIN))


def test_obsolete_ids_score_as_their_replacement(onto):
    replaced = [
        t
        for t in onto.terms(include_deprecated=True)
        if onto.is_deprecated(t) and onto.replacement(t)
    ]
    live = [t for t in replaced if not onto.is_deprecated(onto.replacement(t))]
    assert len(live) > 100
    for t in live:
        rep = onto.replacement(t)
        assert ontology_agreement(t, rep, ontology=onto) == 1.0
        assert ontology_agreement(rep, t, ontology=onto) == 1.0
    assert hierarchical_prf(OBSOLETE_OSTEOBLAST, OSTEOBLAST) == (1.0, 1.0, 1.0)
    assert lca_similarity(OSTEOBLAST, OBSOLETE_OSTEOBLAST) == 1.0


# -------------------------------------------------------------------- hierarchical_prf


def test_hierarchical_identical():
    assert hierarchical_prf(CD4_AB_T, CD4_AB_T) == (1.0, 1.0, 1.0)


def test_hierarchical_parent_for_child():
    # A(T cell) = {T cell, lymphocyte, mononuclear leukocyte, leukocyte,
    # hematopoietic cell}; A(CD4 ab T) adds mature ab T, ab T, mature T and itself.
    p, r, f = hierarchical_prf(T_CELL, CD4_AB_T)
    assert p == 1.0
    assert r == pytest.approx(5 / 9)
    assert f == pytest.approx(10 / 14)
    # The child predicted for the parent: the mirror image.
    assert hierarchical_prf(CD4_AB_T, T_CELL) == pytest.approx((5 / 9, 1.0, 10 / 14))


def test_hierarchical_siblings_share_lineage_without_generic_terms():
    # Shared: lymphocyte, mononuclear leukocyte, leukocyte, hematopoietic cell (not
    # "cell", "eukaryotic cell", "motile cell", ...). |A(B)| = 6, |A(T)| = 5.
    p, r, f = hierarchical_prf(B_CELL, T_CELL)
    assert (p, r) == pytest.approx((4 / 6, 4 / 5))
    assert f == pytest.approx(8 / 11)
    assert 0 < f < 1
    # Classical monocyte vs monocyte: |A(monocyte)| = 12, one step apart.
    assert hierarchical_prf(MONOCYTE, CLASSICAL)[2] == pytest.approx(24 / 25)
    assert f < hierarchical_prf(MONOCYTE, CLASSICAL)[2]
    # No shared non-generic ancestor at all.
    assert hierarchical_prf(B_CELL, HEPATOCYTE) == (0.0, 0.0, 0.0)


def test_hierarchical_generic_or_missing_prediction():
    assert hierarchical_prf(EUKARYOTIC, B_CELL)[0] == 0.0
    assert hierarchical_prf(CELL, B_CELL) == (0.0, 0.0, 0.0)
    assert hierarchical_prf(None, B_CELL) == (0.0, 0.0, 0.0)


# ---------------------------------------------------------------------- lca_similarity


def test_lca_similarity_ordering():
    same = lca_similarity(CLASSICAL, CLASSICAL)
    parent_child = lca_similarity(CLASSICAL, MONOCYTE)
    siblings = lca_similarity(CLASSICAL, NON_CLASSICAL)
    b_vs_t = lca_similarity(B_CELL, T_CELL)
    unrelated = lca_similarity(B_CELL, HEPATOCYTE)
    assert same > parent_child > siblings > b_vs_t > unrelated
    assert same == 1.0 and unrelated == 0.0


def test_lca_similarity_values(onto):
    assert onto.depth(MONOCYTE) == 3 and onto.depth(CLASSICAL) == 4
    assert lca_similarity(CLASSICAL, MONOCYTE) == pytest.approx(6 / 7)
    assert lca_similarity(CLASSICAL, NON_CLASSICAL) == pytest.approx(6 / 8)
    # LCA lymphocyte (depth 4); B cell is 2 steps below it, T cell 1.
    assert lca_similarity(B_CELL, T_CELL) == pytest.approx(8 / 11)
    # B cell and hepatocyte meet only at "eukaryotic cell", which is generic.
    assert onto.lowest_common_ancestors(B_CELL, HEPATOCYTE) == [EUKARYOTIC]
    assert lca_similarity(None, B_CELL) == 0.0


def test_lca_similarity_stays_below_one_in_the_dag(onto):
    # CL is a DAG: some ancestors are at least as far from the root (by shortest path)
    # as their descendant, where the naive 2 d(lca) / (d(p) + d(t)) reaches 1 or more.
    term, ancestor = next(
        (t, a)
        for t in onto.terms()
        for a in onto.ancestors(t)
        if onto.depth(a) >= onto.depth(t) > 0
    )
    naive = 2 * onto.depth(ancestor) / (onto.depth(ancestor) + onto.depth(term))
    assert naive >= 1
    assert 0 < lca_similarity(term, ancestor) < 1


# ------------------------------------------------------------------------ text metrics


@pytest.mark.parametrize(
    ("text", "truth", "expected"),
    [
        ("B cell", B_CELL, 1.0),
        ("B lymphocyte", B_CELL, 1.0),  # a synonym
        ("B cells", B_CELL, 1.0),
        ("  b   CELL ", B_CELL, 1.0),
        ("B cellss", B_CELL, 0.0),
        ("B", B_CELL, 0.0),
        ("T cell", B_CELL, 0.0),
        ("osteoblast", OBSOLETE_OSTEOBLAST, 1.0),  # names of the replacement
        (None, B_CELL, 0.0),
        ("", B_CELL, 0.0),
    ],
)
def test_text_exact_match(text, truth, expected):
    assert text_exact_match(text, truth) == expected


def test_rouge1_hand_computed():
    # "t cell" vs "b cell": overlap 1, P = R = 1/2 (no synonym does better).
    assert rouge1_f1("T cell", B_CELL) == pytest.approx(0.5)
    # [cd4, t, cell] vs [cd4, positive, alpha, beta, t, cell]: P = 1, R = 1/2.
    assert rouge1_f1("CD4 T cell", CD4_AB_T) == pytest.approx(2 / 3)
    # Clipped counts: "cell" counts once, so P = 1/2, not 1.
    assert rouge1_f1("cell cell", T_CELL) == pytest.approx(0.5)
    # Best over synonyms: "B lymphocyte" matches a synonym exactly.
    assert rouge1_f1("b-lymphocyte", B_CELL) == 1.0
    assert rouge1_f1("hepatocyte", B_CELL) == 0.0
    assert rouge1_f1(None, B_CELL) == 0.0


# ----------------------------------------------------------------------------- puzzles


TRUE_PUZZLES = [["B cell", "T cell", "NK cell"], ["monocyte", "platelet"]]


def test_puzzle_accuracies():
    pred = [["b cell ", "T CELL", "monocyte"], ["Monocyte", "platelet"]]
    assert cell_level_accuracy(pred, TRUE_PUZZLES) == pytest.approx(4 / 5)
    assert batch_level_accuracy(pred, TRUE_PUZZLES) == pytest.approx(1 / 2)
    perfect = [list(p) for p in TRUE_PUZZLES]
    assert cell_level_accuracy(perfect, TRUE_PUZZLES) == 1.0
    assert batch_level_accuracy(perfect, TRUE_PUZZLES) == 1.0


@pytest.mark.parametrize("bad", [["B cell", "T cell"], None])
def test_wrong_length_or_missing_puzzle_scores_zero(bad):
    # The first two positions would be right, but the length is wrong.
    pred = [bad, ["monocyte", "platelet"]]
    assert cell_level_accuracy(pred, TRUE_PUZZLES) == pytest.approx(2 / 5)
    assert batch_level_accuracy(pred, TRUE_PUZZLES) == pytest.approx(1 / 2)


def test_puzzle_count_mismatch_raises():
    with pytest.raises(ValueError, match="puzzles"):
        cell_level_accuracy([["B cell"]], TRUE_PUZZLES)


# ------------------------------------------------------------------------- calibration


def test_perfect_calibration_has_zero_ece():
    conf = [0.25] * 4 + [0.75] * 4
    agree = [1, 0, 0, 0, 1, 1, 1, 0]
    assert expected_calibration_error(conf, agree) == pytest.approx(0.0)


def test_ece_two_bins_hand_computed():
    # Bin [0, .5): conf .2 .4 -> .3, agreement 0 1 -> .5, gap -.2, n 2.
    # Bin [.5, 1]: conf .9 .8 .7 -> .8, agreement 1 .5 1 -> 5/6, gap -1/30, n 3.
    # ECE = 2/5 * .2 + 3/5 * 1/30 = .1. The NaN row is ignored.
    conf = [0.2, 0.4, 0.9, 0.8, 0.7, 0.6]
    agree = [0, 1, 1, 0.5, 1, float("nan")]
    bins = reliability_bins(conf, agree, n_bins=2)
    assert list(bins.columns) == [
        "bin_lower",
        "bin_upper",
        "n",
        "mean_confidence",
        "mean_agreement",
        "gap",
    ]
    assert bins["n"].tolist() == [2, 3]
    assert bins["mean_confidence"].tolist() == pytest.approx([0.3, 0.8])
    assert bins["mean_agreement"].tolist() == pytest.approx([0.5, 5 / 6])
    assert bins["gap"].tolist() == pytest.approx([-0.2, -1 / 30])
    assert expected_calibration_error(conf, agree, n_bins=2) == pytest.approx(0.1)


def test_bin_edges():
    bins = reliability_bins([0.0, 0.3, 0.7, 1.0], [1, 1, 1, 1], n_bins=10)
    assert bins.loc[bins["n"] > 0, "bin_lower"].tolist() == pytest.approx([0.0, 0.3, 0.7, 0.9])
    assert math.isnan(bins.loc[5, "gap"])


@pytest.mark.parametrize(
    ("conf", "agree", "match"),
    [
        ([0.5, 1.2], [1, 0], "confidence"),
        ([0.5, -0.1], [1, 0], "confidence"),
        ([0.5, 0.5], [1, 2], "agreement"),
        ([0.5], [1, 0], "1 confidences for 2"),
    ],
)
def test_calibration_input_errors(conf, agree, match):
    with pytest.raises(ValueError, match=match):
        expected_calibration_error(conf, agree)


# ------------------------------------------------------------- score_pairs / summarize


@pytest.fixture
def per_row() -> pd.DataFrame:
    truth = pd.Series([B_CELL, T_CELL, CD4_AB_T, None], index=["c0", "c1", "c2", "c3"])
    table = score_pairs(
        [B_CELL, B_CELL, T_CELL, B_CELL],
        truth,
        pred_text=["B cells", "B cell", "T cell", "B cell"],
        confidence=[0.9, 0.8, 0.5, 0.1],
    )
    table["dataset"] = ["A", "A", "B", "B"]
    table["tissue"] = ["blood", "spleen", "blood", "blood"]
    table["n_cells"] = [10, 30, 20, 40]
    return table


def test_score_pairs_columns_and_values(per_row):
    assert list(per_row.index) == ["c0", "c1", "c2", "c3"]
    assert per_row["agreement"].tolist()[:3] == [1.0, 0.0, 0.5]
    assert per_row["full_match"].tolist()[:3] == [1.0, 0.0, 0.0]
    assert per_row["partial_match"].tolist()[:3] == [0.0, 0.0, 1.0]
    assert per_row.loc["c2", "hierarchical_recall"] == pytest.approx(5 / 9)
    assert per_row.loc["c1", "hierarchical_f1"] == pytest.approx(8 / 11)
    assert per_row.loc["c1", "lca_similarity"] == pytest.approx(8 / 11)
    assert per_row["exact_match"].tolist()[:3] == [1.0, 0.0, 0.0]
    # [t, cell] vs the 6 tokens of "CD4-positive, alpha-beta T cell": P = 1, R = 1/3.
    assert per_row.loc["c2", "rouge1_f1"] == pytest.approx(0.5)
    metric_columns = per_row.columns.drop(["confidence", "dataset", "tissue", "n_cells"])
    assert per_row.loc["c3", metric_columns].isna().all()


def test_score_pairs_without_text_and_length_mismatch():
    table = score_pairs([B_CELL], [T_CELL])
    assert "exact_match" not in table and "rouge1_f1" not in table
    assert "confidence" not in table
    with pytest.raises(ValueError, match="pred_ids has 1 values for 2 pairs"):
        score_pairs([B_CELL], [T_CELL, B_CELL])


def test_summarize_cluster_weighted(per_row):
    out = summarize(per_row, by="dataset", confidence="confidence")
    assert list(out.index) == ["overall", "A", "B"]
    assert out["n"].tolist() == [3, 2, 1]
    assert out["n_unscored"].tolist() == [1, 0, 1]
    assert out["agreement"].tolist() == pytest.approx([0.5, 0.5, 0.5])
    assert out["full_match"].tolist() == pytest.approx([1 / 3, 1 / 2, 0.0])
    # ECE: bins .9 (gap -.1), .8 (gap .8), .5 (gap 0) -> (.1 + .8) / 3; the unscored
    # row's confidence .1 is left out, so dataset B is perfectly calibrated.
    assert out["ece"].tolist() == pytest.approx([0.3, 0.45, 0.0])


def test_summarize_cell_weighted_differs(per_row):
    out = summarize(per_row, by="dataset", weight="n_cells")
    assert out["n_cells"].tolist() == [60.0, 40.0, 20.0]  # scored cells only
    assert out["agreement"].tolist() == pytest.approx([20 / 60, 10 / 40, 0.5])
    assert out["full_match"].tolist() == pytest.approx([10 / 60, 10 / 40, 0.0])
    assert out["partial_match"].tolist() == pytest.approx([20 / 60, 0.0, 1.0])
    assert "ece" not in out
    cluster = summarize(per_row)
    assert list(cluster.index) == ["overall"]
    assert cluster.loc["overall", "agreement"] != out.loc["overall", "agreement"]


def test_summarize_several_keys_and_errors(per_row):
    out = summarize(per_row, by=["dataset", "tissue"])
    assert list(out.index) == [
        ("overall", "overall"),
        ("A", "blood"),
        ("A", "spleen"),
        ("B", "blood"),
    ]
    assert out.loc[("B", "blood"), "n_unscored"] == 1
    with pytest.raises(ValueError, match="no column"):
        summarize(per_row, by="donor")
    per_row["dataset"] = "overall"
    with pytest.raises(ValueError, match="overall"):
        summarize(per_row, by="dataset")
    per_row["n_cells"] = -1
    with pytest.raises(ValueError, match="non-negative"):
        summarize(per_row, weight="n_cells")
