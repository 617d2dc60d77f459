"""Ontology metrics: agreement, hierarchical precision/recall/F1 and LCA similarity.

All take Cell Ontology IDs, resolved as described in :mod:`llm4cell.metrics`.
"Generic" terms are :data:`llm4cell.ontology.GENERIC_TERMS`, the root-level terms that
say nothing about a cell's identity ("cell", "native cell", "animal cell", "eukaryotic
cell", "nucleate cell", "single nucleate cell", "motile cell", ...). ``A(x)`` below is
``x`` together with all its ``is_a`` ancestors, generic terms removed.

:func:`ontology_agreement`
    The 1 / 0.5 / 0 scale of Hou & Ji (GPTCelltype, Nat. Methods 2024), decided on the
    ontology graph: **1** if prediction and truth are the same term; **0.5** if one is a
    strict ancestor of the other (in either direction: a prediction that is too broad
    or too specific) and that ancestor is not generic; **0** otherwise. A generic truth
    (e.g. "cell") is therefore matched only by itself.
:func:`hierarchical_prf`
    Hierarchical precision, recall and F1 of Kiritchenko et al. (2006):
    ``P = |A(pred) ∩ A(truth)| / |A(pred)|``, ``R = |A(pred) ∩ A(truth)| / |A(truth)|``,
    ``F1 = 2PR / (P + R)`` (0 when ``P + R = 0``). Generic terms are left out of ``A`` so
    that unrelated cells do not share credit through "cell". A term compared with
    itself scores ``(1, 1, 1)``, even a generic one; otherwise an empty ``A(pred)``
    (the prediction is generic) gives ``P = 0`` and an empty ``A(truth)`` gives ``R = 0``.
:func:`lca_similarity`
    Wu-Palmer similarity through the lowest common ancestor (LCA):
    ``2 d(L) / (dist(pred, L) + dist(truth, L) + 2 d(L))`` where ``d`` is
    :meth:`~llm4cell.ontology.CellOntology.depth` (``is_a`` steps to "cell") and
    ``dist`` the ``is_a`` distance from a term up to ``L``. In a tree this is the usual
    ``2 d(L) / (d(pred) + d(truth))``; CL is a DAG in which a term's shortest path to
    the root often bypasses its ancestors, so the naive form can exceed 1 and the depths
    of prediction and truth are measured through ``L`` instead. ``L`` is the deepest
    non-generic LCA (ties: the one giving the highest similarity). Identical terms give
    1; no non-generic common ancestor gives 0. Non-identical terms score below 1.
"""

from __future__ import annotations

from ..ontology._graph import GENERIC_TERMS, CellOntology
from ._base import _NAN, _harmonic, _onto, _resolve

__all__ = ["hierarchical_prf", "lca_similarity", "ontology_agreement"]


def _non_generic_lineage(term_id: str, onto: CellOntology) -> set[str]:
    """``A(x)``: the term and its ancestors, generic terms removed."""
    return set(onto.ancestors(term_id, include_self=True)) - GENERIC_TERMS.keys()


def _agreement(pred: str | None, truth: str, onto: CellOntology) -> float:
    if pred is None:
        return 0.0
    if pred == truth:
        return 1.0
    if onto.is_ancestor(pred, truth) and pred not in GENERIC_TERMS:
        return 0.5
    if onto.is_ancestor(truth, pred) and truth not in GENERIC_TERMS:
        return 0.5
    return 0.0


def _hierarchical(pred: str | None, truth: str, onto: CellOntology) -> tuple[float, float, float]:
    if pred is None:
        return 0.0, 0.0, 0.0
    if pred == truth:
        return 1.0, 1.0, 1.0
    a_pred = _non_generic_lineage(pred, onto)
    a_truth = _non_generic_lineage(truth, onto)
    shared = len(a_pred & a_truth)
    precision = shared / len(a_pred) if a_pred else 0.0
    recall = shared / len(a_truth) if a_truth else 0.0
    return precision, recall, _harmonic(precision, recall)


def _lca(pred: str | None, truth: str, onto: CellOntology) -> float:
    if pred is None:
        return 0.0
    if pred == truth:
        return 1.0
    up_pred = onto.ancestors(pred, include_self=True)
    up_truth = onto.ancestors(truth, include_self=True)
    common = (up_pred.keys() & up_truth.keys()) - GENERIC_TERMS.keys()
    if not common:
        return 0.0
    lcas = onto.most_specific(common)
    deepest = max(onto.depth(t) for t in lcas)
    return max(
        2 * deepest / (up_pred[t] + up_truth[t] + 2 * deepest)
        for t in lcas
        if onto.depth(t) == deepest
    )


def ontology_agreement(
    pred: str | None, truth: str | None, *, ontology: CellOntology | None = None
) -> float:
    """Hou & Ji's 1 / 0.5 / 0 agreement, decided on the Cell Ontology.

    Parameters
    ----------
    pred, truth
        CL IDs of the predicted and the true cell type (obsolete IDs are resolved).
    ontology
        The ontology to use; the shared :func:`~llm4cell.ontology.load_ontology`
        instance by default.

    Returns
    -------
    float
        1 for the same term, 0.5 when one is a strict non-generic ancestor of the
        other, 0 otherwise or when ``pred`` is missing, nan when ``truth`` is missing.
    """
    onto = _onto(ontology)
    truth_id = _resolve(truth, onto)
    if truth_id is None:
        return _NAN
    return _agreement(_resolve(pred, onto), truth_id, onto)


def hierarchical_prf(
    pred: str | None, truth: str | None, *, ontology: CellOntology | None = None
) -> tuple[float, float, float]:
    """Hierarchical precision, recall and F1 (Kiritchenko et al. 2006).

    Parameters
    ----------
    pred, truth
        CL IDs of the predicted and the true cell type (obsolete IDs are resolved).
    ontology
        The ontology to use; the shared instance by default.

    Returns
    -------
    tuple of float
        ``(precision, recall, f1)`` over the non-generic ancestor sets; ``(0, 0, 0)``
        when ``pred`` is missing, a nan triple when ``truth`` is missing.
    """
    onto = _onto(ontology)
    truth_id = _resolve(truth, onto)
    if truth_id is None:
        return _NAN, _NAN, _NAN
    return _hierarchical(_resolve(pred, onto), truth_id, onto)


def lca_similarity(
    pred: str | None, truth: str | None, *, ontology: CellOntology | None = None
) -> float:
    """Wu-Palmer similarity through the deepest non-generic lowest common ancestor.

    Parameters
    ----------
    pred, truth
        CL IDs of the predicted and the true cell type (obsolete IDs are resolved).
    ontology
        The ontology to use; the shared instance by default.

    Returns
    -------
    float
        1 for identical terms, in (0, 1) for terms sharing a non-generic ancestor, 0
        otherwise or when ``pred`` is missing, nan when ``truth`` is missing.
    """
    onto = _onto(ontology)
    truth_id = _resolve(truth, onto)
    if truth_id is None:
        return _NAN
    return _lca(_resolve(pred, onto), truth_id, onto)
