"""Expression evidence (issue 14): the numpy ulm and its effect on the engine's answers."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_planted_counts
from scipy import sparse, stats

import llm4cell
from llm4cell.knowledge import load_knowledge
from llm4cell.knowledge._expression import group_expression_scores, ulm

#: Markers that tell T from NK cells poorly: the engine alone answers a common ancestor.
AMBIGUOUS = ("NKG7", "CD3D", "GNLY", "CD3E", "PRF1", "LCK", "KLRD1", "CD2")


def test_ulm_matches_linregress_per_cell_and_type():
    rng = np.random.default_rng(1)
    X = rng.poisson(1.0, size=(7, 15)).astype(np.float64)
    X[2] = 0.0
    X[2, 3] = 4.0  # a cell with a single expressed gene
    W = rng.random((15, 4)) * (rng.random((15, 4)) < 0.6)
    got = ulm(sparse.csr_matrix(X), W, batch_size=3)  # batches of 3: three batches
    want = np.empty_like(got, dtype=np.float64)
    for i in range(X.shape[0]):
        for j in range(W.shape[1]):
            fit = stats.linregress(W[:, j], X[i])
            want[i, j] = fit.slope / fit.stderr
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ulm(X, W), got, rtol=1e-6)  # dense input too


def test_group_scores_are_means_of_cells_and_skip_thin_types():
    kb = load_knowledge()
    adata = make_planted_counts(n_per_type=10)
    codes = adata.obs["truth"].cat.codes.to_numpy()
    n = len(adata.obs["truth"].cat.categories)
    types = [kb.type_index["CL:0000236"], kb.type_index["CL:0000182"]]
    X = np.log1p(adata.X.toarray())
    means, _, _ = group_expression_scores(kb, X, list(adata.var_names), "human", codes, n, types)
    assert means.shape == (n, 2)
    cats = list(adata.obs["truth"].cat.categories)
    # B cells score highest on the B cell type, hepatocytes on the hepatocyte type
    assert np.argmax(means[:, 0]) == cats.index("B")
    assert np.argmax(means[:, 1]) == cats.index("Hep")
    # no group: no score
    codes = codes.copy()
    codes[codes == cats.index("T")] = -1
    means, _, _ = group_expression_scores(kb, X, list(adata.var_names), "human", codes, n, types)
    assert np.isnan(means[cats.index("T")]).all()


@pytest.fixture(scope="module")
def planted_result():
    return llm4cell.run_annotation(make_planted_counts(), groupby="truth")


def test_annotate_attaches_expression_to_queries(planted_result):
    for q in planted_result.queries.values():
        assert q.expression, q.id
        assert all(np.isfinite(v) for _, v in q.expression)
        # detection rates of the database genes measured in the data, in [0, 1]
        assert q.detection, q.id
        rates = dict(q.detection)
        assert all(0.0 <= v <= 1.0 for v in rates.values())
        assert "detection" not in repr(q)  # thousands of genes stay out of the repr


def test_expression_moves_an_ambiguous_answer_towards_the_cells(planted_result):
    """Same ambiguous markers; the group's own cells decide (T cells: T; NK cells: not T).

    Without levels (``hierarchy=False``): the family-level decision answers "T cell" for
    the flat belief either way, which is tested in test_levels.py. The detection rates
    (sibling contests, test_contest.py) are left out: this is the ulm evidence alone."""
    kb = load_knowledge().with_params(hierarchy=False)
    onto = kb.ontology

    def answer(group: str, expression: bool) -> str | None:
        q = planted_result.queries[group].model_copy(
            update={"genes": AMBIGUOUS, "logfoldchanges": None, "pct_in": None,
                    "detection": None})
        if not expression:
            q = q.model_copy(update={"expression": None})
        return kb.annotate([q])[0].ontology_id

    def under(tid: str | None, node: str) -> bool:
        return tid is not None and node in onto.ancestors(tid, include_self=True)

    t_cell, nk_cell = "CL:0000084", "CL:0000623"
    alone = answer("T", expression=False)
    assert alone == answer("NK", expression=False)  # markers alone cannot tell the groups
    assert not under(alone, t_cell) and not under(alone, nk_cell)
    assert under(answer("T", expression=True), t_cell)
    assert not under(answer("NK", expression=True), t_cell)


def test_marker_tables_have_no_expression_and_are_unchanged():
    kb = load_knowledge()
    q = llm4cell.MarkerQuery(id="x", genes=AMBIGUOUS)
    assert q.expression is None
    a = kb.annotate([q])[0]
    b = kb.with_params(expression_weight=50.0, expression_sharpness=0.1).annotate([q])[0]
    assert a == b
