"""Sibling contests on detection rates (knowledge/_contest.py), on the shipped database."""

from __future__ import annotations

import numpy as np
import pytest

from llm4cell import MarkerQuery, load_knowledge
from llm4cell.knowledge._contest import refine

CLASSICAL, NONCLASSICAL, MONOCYTE = "CL:0000860", "CL:0000875", "CL:0000576"
#: A PBMC monocyte group's markers: shared monocyte genes, no subtype in the ranking.
MONO_MARKERS = ("LYZ", "FCN1", "CST3", "TYROBP", "FCER1G", "LST1", "AIF1", "SERPINA1",
                "MNDA", "CSF1R", "TIMP1", "SAT1")


@pytest.fixture(scope="module")
def kb():
    return load_knowledge()


def _detection(kb, high: dict[str, float], base: float = 0.3) -> dict[str, float]:
    """Every database gene measured at ``base``, the named ones at their rate."""
    out = dict.fromkeys(map(str, kb.genes), base)
    out.update(high)
    return out


def _query(kb, detection: dict[str, float] | None) -> MarkerQuery:
    return MarkerQuery(id="mono", genes=MONO_MARKERS, tissue="blood",
                       detection=tuple(detection.items()) if detection else None)


CLASSICAL_GENES = {"CD14": 0.95, "S100A8": 0.98, "S100A9": 0.98, "S100A12": 0.8,
                   "VCAN": 0.85, "LYZ": 0.99, "MNDA": 0.8, "CXCL8": 0.7, "THBS1": 0.5,
                   "RNASE2": 0.6, "TYROBP": 0.99, "FCER1G": 0.99, "S100A4": 0.9,
                   "GPX1": 0.9, "S100A10": 0.9,
                   "FCGR3A": 0.05, "MS4A7": 0.1, "CDKN1C": 0.02, "HES4": 0.02}
NONCLASSICAL_GENES = {"CD14": 0.1, "S100A8": 0.2, "S100A9": 0.3, "S100A12": 0.02,
                      "VCAN": 0.05, "FCGR3A": 0.97, "MS4A7": 0.9, "CDKN1C": 0.7,
                      "HES4": 0.6, "RHOC": 0.6, "LILRB2": 0.6, "PILRA": 0.6,
                      "TYROBP": 0.99, "FCER1G": 0.99, "WARS1": 0.8, "IFI30": 0.7}


def test_without_detection_the_answer_is_the_engines(kb):
    a = kb.annotate([_query(kb, None)])[0]
    assert a.ontology_id == MONOCYTE
    assert "contests" not in a.evidence


@pytest.mark.parametrize(("genes", "expected"), [(CLASSICAL_GENES, CLASSICAL),
                                                 (NONCLASSICAL_GENES, NONCLASSICAL)])
def test_detection_of_the_separators_decides_the_subtype(kb, genes, expected):
    """The same markers; which subtype's separating genes are detected decides."""
    a = kb.annotate([_query(kb, _detection(kb, genes))])[0]
    assert a.ontology_id == expected, a.evidence
    assert "subtype -> " + kb.ontology.label(expected) in a.evidence
    # the evidence names the separating genes with their detection
    assert ("CD14 95%" if expected == CLASSICAL else "FCGR3A 97%") in a.evidence
    # the contest's choice carries the belief of the subtree it chose within
    plain = kb.annotate([_query(kb, None)])[0]
    assert a.confidence >= plain.confidence


def test_flat_detection_keeps_the_parent(kb):
    """No sibling's genes detected more than another's: no move."""
    a = kb.annotate([_query(kb, _detection(kb, {}, base=0.4))])[0]
    assert a.ontology_id == MONOCYTE, a.evidence


def test_unmeasured_separators_keep_the_parent(kb):
    """A panel without the classical side's genes cannot call non-classical."""
    det = _detection(kb, NONCLASSICAL_GENES)
    for g in ("CD14", "S100A8", "S100A9", "S100A12", "VCAN", "LYZ", "CXCL8", "MNDA",
              "THBS1", "RNASE2"):
        det.pop(g, None)
    a = kb.annotate([_query(kb, det)])[0]
    assert a.ontology_id == MONOCYTE, a.evidence


def test_refine_moves_posterior_mass_onto_the_winner(kb):
    types = [MONOCYTE, CLASSICAL, NONCLASSICAL, "CL:0000235"]  # + macrophage
    prob = np.array([0.4, 0.2, 0.2, 0.1])
    new, t2, p2, trace = refine(kb, MONOCYTE, types, prob,
                                _detection(kb, CLASSICAL_GENES))
    assert new == CLASSICAL
    assert [c.level for c in trace][-1] == "subtype" and trace[-1].moved
    # the monocyte subtree's mass (0.8) is on the winner; the rest is kept
    assert t2[0] == CLASSICAL and p2[0] == pytest.approx(0.8)
    assert p2.sum() == pytest.approx(prob.sum())
    # nothing measured: nothing changes
    same, t3, p3, none = refine(kb, MONOCYTE, types, prob, {})
    assert same == MONOCYTE and t3 == types and none == []
    assert np.array_equal(p3, prob)


def test_contest_can_be_switched_off(kb):
    off = kb.with_params(contest=False)
    a = off.annotate([_query(kb, _detection(kb, CLASSICAL_GENES))])[0]
    assert a.ontology_id == MONOCYTE


def test_group_detection_counts_cells_with_the_gene(kb):
    from scipy import sparse

    from llm4cell.knowledge._expression import group_detection

    # 4 cells, two groups (and a cell without one); CD14 twice (a duplicated symbol)
    X = sparse.csr_matrix(np.array([
        [1.0, 0.0, 0.0, 2.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 3.0, 0.0],
        [5.0, 5.0, 5.0, 5.0],
    ]))
    symbols = ["CD14", "CD14", "MS4A1", "NOT_A_GENE"]
    names, rates = group_detection(kb, X, symbols, "human", np.array([0, 0, 1, -1]), 3)
    assert names == ["CD14", "MS4A1"]  # unknown symbols are not measured genes
    assert rates[0].tolist() == [0.5, 0.0]  # the better of the two CD14 columns
    assert rates[1].tolist() == [0.0, 1.0]
    assert np.isnan(rates[2]).all()  # a group without cells


MACROPHAGE = "CL:0000235"
MACROPHAGE_GENES = {"C1QA": 0.95, "C1QB": 0.95, "C1QC": 0.95, "APOE": 0.9, "CD68": 0.95,
                    "CD163": 0.9, "MRC1": 0.85, "MARCO": 0.7, "CSF1R": 0.9, "APOC1": 0.9,
                    "CD14": 0.1, "S100A8": 0.05, "S100A9": 0.1, "S100A12": 0.02,
                    "FCN1": 0.05, "VCAN": 0.05, "FCGR3A": 0.1, "LYZ": 0.3}


def test_family_contest_moves_to_the_family_the_cells_express(kb):
    """Monocyte markers, but the cells express the macrophage separators: macrophage
    (or one of its subtypes), with the family move named in the evidence."""
    a = kb.annotate([_query(kb, _detection(kb, MACROPHAGE_GENES, base=0.2))])[0]
    onto = kb.ontology
    assert a.ontology_id == MACROPHAGE or onto.is_ancestor(MACROPHAGE, a.ontology_id)
    assert "family -> macrophage over" in a.evidence
    assert "CD68 95%" in a.evidence


def test_family_move_keeps_the_winning_familys_split():
    from llm4cell.knowledge._contest import _to_family

    prob = np.array([0.3, 0.1, 0.2, 0.2, 0.2])
    fams = ["mono", "mono", "mac", "mac", "b"]
    out = _to_family(prob, fams, "mac", frozenset({"mono", "mac"}))
    # the monocytes' 0.4 goes to the macrophage types in proportion (1:1); B untouched
    assert out.tolist() == pytest.approx([0.0, 0.0, 0.4, 0.4, 0.2])
