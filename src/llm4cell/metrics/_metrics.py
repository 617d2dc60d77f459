"""Scoring predicted cell types against ground truth.

Every ontology metric takes Cell Ontology (CL) IDs; free text is mapped to IDs elsewhere.
The ontology is :func:`llm4cell.ontology.load_ontology` unless ``ontology=`` is given.

Resolving IDs and missing values
--------------------------------
Before scoring, the predicted and the true ID are *resolved*: a live term is kept, an
obsolete term is replaced by its ``replaced_by`` term (following the chain when the
replacement is itself obsolete) and everything else counts as **missing**: ``None``,
NaN, an empty string, an ID that is not in the ontology, an obsolete term without a live
replacement. Then, for every metric of this module:

* **truth missing** -> ``nan``: the row cannot be scored (:func:`summarize` leaves it
  out and counts it in ``n_unscored``);
* **prediction missing** (e.g. an "unknown" answer) -> the worst score, ``0``.

"Generic" terms are :data:`llm4cell.ontology.GENERIC_TERMS`, the root-level terms that
say nothing about a cell's identity ("cell", "native cell", "animal cell", "eukaryotic
cell", "nucleate cell", "single nucleate cell", "motile cell", ...). ``A(x)`` below is
``x`` together with all its ``is_a`` ancestors, generic terms removed.

Ontology metrics
----------------
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

Text metrics (SOAR-style)
-------------------------
Both compare a predicted text with the names of the true term: its CL label and its
synonyms. A missing or empty predicted text scores 0.

:func:`text_exact_match`
    1.0 if the normalised text equals a normalised name, else 0.0. Normalisation:
    lowercase, strip, collapse runs of whitespace to one space. A plural is accepted
    by one rule only: the text may be a name followed by a single ``"s"``
    (``"B cells"`` matches ``"B cell"``). Punctuation is kept (``"B-cell"`` matches only
    because it is a synonym of B cell).
:func:`rouge1_f1`
    ROUGE-1 F1: tokens are the runs of letters and digits of the lowercased text (any
    other character splits); ``overlap`` is the clipped unigram overlap (a token counts
    at most as often as in the other text), ``P = overlap / n_pred``,
    ``R = overlap / n_name``, ``F1 = 2PR / (P + R)`` (0 without overlap); the maximum
    over the names is returned.

Puzzle metrics
--------------
A puzzle is a list of labels, one per position. Labels are compared after stripping
surrounding whitespace and ignoring case. A prediction that is ``None`` or has the wrong
length scores 0 on every position of its puzzle.

:func:`cell_level_accuracy`
    Right positions / all positions, pooled over puzzles (nan without positions).
:func:`batch_level_accuracy`
    Puzzles with every position right / puzzles (nan without puzzles).

Calibration
-----------
Rows where the confidence or the agreement is NaN are ignored; confidence and agreement
must lie in [0, 1] (agreement may be fractional, e.g. 0.5).

:func:`reliability_bins`
    ``n_bins`` equal-width bins on [0, 1]: bin ``b`` holds ``b/n <= c < (b+1)/n``, the
    last bin also holds ``c = 1``. Per bin: ``n``, ``mean_confidence``,
    ``mean_agreement`` and ``gap = mean_confidence - mean_agreement`` (positive:
    over-confident; NaN for an empty bin).
:func:`expected_calibration_error`
    ``ECE = sum_b n_b / N * |gap_b|`` over non-empty bins (nan when ``N = 0``).

Tables
------
:func:`score_pairs`
    One row per (prediction, truth) pair with the columns ``agreement``, ``full_match``
    (agreement == 1), ``partial_match`` (agreement == 0.5), ``hierarchical_precision``,
    ``hierarchical_recall``, ``hierarchical_f1``, ``lca_similarity``, and, when texts
    are given, ``exact_match`` and ``rouge1_f1``; ``confidence`` when given. All metric
    columns are floats, NaN where the truth is missing.
:func:`summarize`
    Means of the metric columns, overall (row ``"overall"``) and per group. Rows with a
    NaN ``agreement`` (truth missing) are left out and counted in ``n_unscored``; ``n``
    counts the scored rows. Means are cluster-weighted (each row counts 1) or, with
    ``weight=``, cell-weighted: ``sum(w x) / sum(w)`` (the total weight of the scored
    rows is reported in a column named after the weight column). ``ece`` is the
    expected calibration error of the scored rows, each row (one answer, one
    confidence) counting once whatever the weight.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from ..ontology._graph import GENERIC_TERMS, CellOntology, load_ontology

__all__ = [
    "METRIC_COLUMNS",
    "batch_level_accuracy",
    "cell_level_accuracy",
    "expected_calibration_error",
    "hierarchical_prf",
    "lca_similarity",
    "ontology_agreement",
    "reliability_bins",
    "rouge1_f1",
    "score_pairs",
    "summarize",
    "text_exact_match",
]

#: The per-row metric columns :func:`summarize` averages, in output order.
METRIC_COLUMNS: tuple[str, ...] = (
    "agreement",
    "full_match",
    "partial_match",
    "hierarchical_precision",
    "hierarchical_recall",
    "hierarchical_f1",
    "lca_similarity",
    "exact_match",
    "rouge1_f1",
)

_NAN = float("nan")
_TOKEN = re.compile(r"[^\W_]+")


# --------------------------------------------------------------------------- resolving


def _onto(ontology: CellOntology | None) -> CellOntology:
    return ontology if ontology is not None else load_ontology()


def _is_missing(value: object) -> bool:
    """None, NaN / pd.NA or a blank string."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _resolve(term_id: object, onto: CellOntology) -> str | None:
    """A live CL ID for ``term_id`` (following replacement chains); None when missing."""
    if _is_missing(term_id) or not isinstance(term_id, str):
        return None
    return onto.resolve(term_id.strip())


def _non_generic_lineage(term_id: str, onto: CellOntology) -> set[str]:
    """``A(x)``: the term and its ancestors, generic terms removed."""
    return set(onto.ancestors(term_id, include_self=True)) - GENERIC_TERMS.keys()


# ----------------------------------------------------------------------- ID metrics


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


def _harmonic(precision: float, recall: float) -> float:
    total = precision + recall
    return 2 * precision * recall / total if total > 0 else 0.0


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


# ---------------------------------------------------------------------- text metrics


def _names(term_id: str, onto: CellOntology) -> list[str]:
    return [onto.label(term_id), *onto.synonyms(term_id)]


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def _exact(pred_text: str, truth: str, onto: CellOntology) -> float:
    said = _normalise(pred_text)
    for name in _names(truth, onto):
        target = _normalise(name)
        if said in (target, target + "s"):
            return 1.0
    return 0.0


def _rouge1(pred_tokens: list[str], ref_tokens: list[str]) -> float:
    if not pred_tokens or not ref_tokens:
        return 0.0
    overlap = sum((Counter(pred_tokens) & Counter(ref_tokens)).values())
    return _harmonic(overlap / len(pred_tokens), overlap / len(ref_tokens))


def _rouge(pred_text: str, truth: str, onto: CellOntology) -> float:
    said = _tokens(pred_text)
    return max(_rouge1(said, _tokens(name)) for name in _names(truth, onto))


def _text_metric(
    pred_text: str | None,
    truth: str | None,
    onto: CellOntology,
    metric: Callable[[str, str, CellOntology], float],
) -> float:
    truth_id = _resolve(truth, onto)
    if truth_id is None:
        return _NAN
    if _is_missing(pred_text):
        return 0.0
    return metric(str(pred_text), truth_id, onto)


def text_exact_match(
    pred_text: str | None, truth: str | None, *, ontology: CellOntology | None = None
) -> float:
    """Whether a predicted text names the true term (label or synonym).

    Parameters
    ----------
    pred_text
        The predicted cell type as free text.
    truth
        CL ID of the true cell type (obsolete IDs are resolved).
    ontology
        The ontology to use; the shared instance by default.

    Returns
    -------
    float
        1.0 on a match after normalisation (see the module documentation), 0.0
        otherwise or for a missing text, nan when ``truth`` is missing.
    """
    return _text_metric(pred_text, truth, _onto(ontology), _exact)


def rouge1_f1(
    pred_text: str | None, truth: str | None, *, ontology: CellOntology | None = None
) -> float:
    """ROUGE-1 F1 of a predicted text against the true term's best-matching name.

    Parameters
    ----------
    pred_text
        The predicted cell type as free text.
    truth
        CL ID of the true cell type (obsolete IDs are resolved).
    ontology
        The ontology to use; the shared instance by default.

    Returns
    -------
    float
        The maximum ROUGE-1 F1 over the label and synonyms, 0.0 for a missing text,
        nan when ``truth`` is missing.
    """
    return _text_metric(pred_text, truth, _onto(ontology), _rouge)


# -------------------------------------------------------------------- puzzle metrics


def _label_key(label: object) -> str | None:
    return None if _is_missing(label) else str(label).strip().casefold()


def _puzzle_hits(
    pred: Sequence[Sequence[str] | None], truth: Sequence[Sequence[str]]
) -> list[list[bool]]:
    """Per puzzle, per position: whether the prediction is right."""
    if len(pred) != len(truth):
        msg = f"{len(pred)} predicted puzzles for {len(truth)} true puzzles"
        raise ValueError(msg)
    hits: list[list[bool]] = []
    for guess, answer in zip(pred, truth, strict=True):
        if guess is None or len(guess) != len(answer):
            hits.append([False] * len(answer))
            continue
        hits.append(
            [
                _label_key(g) is not None and _label_key(g) == _label_key(a)
                for g, a in zip(guess, answer, strict=True)
            ]
        )
    return hits


def cell_level_accuracy(
    pred: Sequence[Sequence[str] | None], truth: Sequence[Sequence[str]]
) -> float:
    """Fraction of puzzle positions labelled right, pooled over all puzzles.

    Parameters
    ----------
    pred
        Per puzzle, the predicted label of each position (or None: no answer).
    truth
        Per puzzle, the true label of each position.

    Returns
    -------
    float
        Right positions / all positions; nan when there are no positions.

    Raises
    ------
    ValueError
        If ``pred`` and ``truth`` hold different numbers of puzzles.
    """
    flat = [h for puzzle in _puzzle_hits(pred, truth) for h in puzzle]
    return sum(flat) / len(flat) if flat else _NAN


def batch_level_accuracy(
    pred: Sequence[Sequence[str] | None], truth: Sequence[Sequence[str]]
) -> float:
    """Fraction of puzzles with every position labelled right.

    Parameters
    ----------
    pred
        Per puzzle, the predicted label of each position (or None: no answer).
    truth
        Per puzzle, the true label of each position.

    Returns
    -------
    float
        Solved puzzles / puzzles; nan when there are no puzzles.

    Raises
    ------
    ValueError
        If ``pred`` and ``truth`` hold different numbers of puzzles.
    """
    hits = _puzzle_hits(pred, truth)
    return sum(all(puzzle) for puzzle in hits) / len(hits) if hits else _NAN


# ----------------------------------------------------------------------- calibration


def _calibration_arrays(
    confidence: Iterable[float], agreement: Iterable[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Validated float arrays with the NaN rows dropped."""
    conf = np.asarray(list(confidence), dtype=float)
    agree = np.asarray(list(agreement), dtype=float)
    if conf.shape != agree.shape:
        msg = f"{conf.size} confidences for {agree.size} agreements"
        raise ValueError(msg)
    keep = ~(np.isnan(conf) | np.isnan(agree))
    conf, agree = conf[keep], agree[keep]
    for name, values in (("confidence", conf), ("agreement", agree)):
        if ((values < 0) | (values > 1)).any():
            msg = f"every {name} must lie in [0, 1]"
            raise ValueError(msg)
    return conf, agree


def reliability_bins(
    confidence: Iterable[float], agreement: Iterable[float], n_bins: int = 10
) -> pd.DataFrame:
    """Reliability diagram data: confidence against agreement in equal-width bins.

    Parameters
    ----------
    confidence
        Stated confidence of each answer, in [0, 1] (NaN rows are ignored).
    agreement
        Score of each answer, in [0, 1]; may be fractional (0.5 = partial match).
    n_bins
        Number of equal-width bins on [0, 1].

    Returns
    -------
    pandas.DataFrame
        One row per bin (empty bins included) with ``bin_lower``, ``bin_upper``,
        ``n``, ``mean_confidence``, ``mean_agreement`` and ``gap``.

    Raises
    ------
    ValueError
        On a length mismatch, a value outside [0, 1] or ``n_bins < 1``.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        msg = f"n_bins must be a positive integer, got {n_bins!r}"
        raise ValueError(msg)
    conf, agree = _calibration_arrays(confidence, agreement)
    # Round before flooring so that confidences on a bin edge (0.3 * 10 = 2.9999...)
    # land in the bin they start.
    index = np.minimum(np.floor(np.round(conf * n_bins, 9)).astype(int), n_bins - 1)
    n = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, weights=conf, minlength=n_bins) / n
        mean_agree = np.bincount(index, weights=agree, minlength=n_bins) / n
    edges = np.arange(n_bins + 1) / n_bins
    return pd.DataFrame(
        {
            "bin_lower": edges[:-1],
            "bin_upper": edges[1:],
            "n": n,
            "mean_confidence": mean_conf,
            "mean_agreement": mean_agree,
            "gap": mean_conf - mean_agree,
        }
    )


def expected_calibration_error(
    confidence: Iterable[float], agreement: Iterable[float], n_bins: int = 10
) -> float:
    """Expected calibration error over equal-width confidence bins.

    Parameters
    ----------
    confidence
        Stated confidence of each answer, in [0, 1] (NaN rows are ignored).
    agreement
        Score of each answer, in [0, 1]; may be fractional.
    n_bins
        Number of equal-width bins on [0, 1].

    Returns
    -------
    float
        ``sum_b n_b / N * |mean_confidence_b - mean_agreement_b|``; nan without rows.

    Raises
    ------
    ValueError
        On a length mismatch, a value outside [0, 1] or ``n_bins < 1``.
    """
    bins = reliability_bins(confidence, agreement, n_bins)
    total = int(bins["n"].sum())
    if total == 0:
        return _NAN
    filled = bins[bins["n"] > 0]
    return float((filled["n"] / total * filled["gap"].abs()).sum())


# ---------------------------------------------------------------------------- tables


def _as_list(values: Iterable[object], name: str, length: int) -> list[object]:
    out = list(values)
    if len(out) != length:
        msg = f"{name} has {len(out)} values for {length} pairs"
        raise ValueError(msg)
    return out


def _score_row(
    pred: object, truth: object, text: object, has_text: bool, onto: CellOntology
) -> dict[str, float]:
    truth_id = _resolve(truth, onto)
    if truth_id is None:
        return dict.fromkeys(METRIC_COLUMNS, _NAN)
    pred_id = _resolve(pred, onto)
    agreement = _agreement(pred_id, truth_id, onto)
    precision, recall, f1 = _hierarchical(pred_id, truth_id, onto)
    row = {
        "agreement": agreement,
        "full_match": float(agreement == 1.0),
        "partial_match": float(agreement == 0.5),
        "hierarchical_precision": precision,
        "hierarchical_recall": recall,
        "hierarchical_f1": f1,
        "lca_similarity": _lca(pred_id, truth_id, onto),
    }
    if has_text:
        said = None if _is_missing(text) else str(text)
        row["exact_match"] = 0.0 if said is None else _exact(said, truth_id, onto)
        row["rouge1_f1"] = 0.0 if said is None else _rouge(said, truth_id, onto)
    return row


def score_pairs(
    pred_ids: Iterable[str | None],
    truth_ids: Iterable[str | None],
    *,
    pred_text: Iterable[str | None] | None = None,
    confidence: Iterable[float] | None = None,
    ontology: CellOntology | None = None,
) -> pd.DataFrame:
    """Score (prediction, truth) pairs, one row per pair.

    Parameters
    ----------
    pred_ids
        Predicted CL IDs (None/NaN: no answer).
    truth_ids
        True CL IDs (None/NaN: unknown; the row gets NaN metrics).
    pred_text
        The predicted free texts, for ``exact_match`` and ``rouge1_f1``.
    confidence
        Stated confidences, copied to a ``confidence`` column.
    ontology
        The ontology to use; the shared instance by default.

    Returns
    -------
    pandas.DataFrame
        Columns ``agreement``, ``full_match``, ``partial_match``,
        ``hierarchical_precision``, ``hierarchical_recall``, ``hierarchical_f1``,
        ``lca_similarity`` (+ ``exact_match``, ``rouge1_f1`` with ``pred_text``;
        + ``confidence``). The index is that of ``truth_ids`` when it is a Series.

    Raises
    ------
    ValueError
        If the inputs differ in length.
    """
    onto = _onto(ontology)
    index = truth_ids.index if isinstance(truth_ids, pd.Series) else None
    truths = list(truth_ids)
    preds = _as_list(pred_ids, "pred_ids", len(truths))
    has_text = pred_text is not None
    texts = _as_list(pred_text, "pred_text", len(truths)) if has_text else [None] * len(truths)
    rows = [
        _score_row(p, t, x, has_text, onto) for p, t, x in zip(preds, truths, texts, strict=True)
    ]
    columns = [c for c in METRIC_COLUMNS if has_text or c not in ("exact_match", "rouge1_f1")]
    table = pd.DataFrame(rows, columns=columns, index=index, dtype=float)
    if confidence is not None:
        table["confidence"] = np.asarray(
            _as_list(confidence, "confidence", len(truths)), dtype=float
        )
    return table


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    ok = ~np.isnan(values)
    total = weights[ok].sum()
    return float((values[ok] * weights[ok]).sum() / total) if total > 0 else _NAN


def _summary_row(
    frame: pd.DataFrame,
    metrics: list[str],
    weight: str | None,
    confidence: str | None,
    n_bins: int,
) -> dict[str, float]:
    scored = frame[frame["agreement"].notna()]
    weights = scored[weight].to_numpy(dtype=float) if weight else np.ones(len(scored), dtype=float)
    row: dict[str, float] = {"n": len(scored), "n_unscored": len(frame) - len(scored)}
    if weight:
        row[weight] = float(weights.sum())
    for column in metrics:
        row[column] = _weighted_mean(scored[column].to_numpy(dtype=float), weights)
    if confidence:
        row["ece"] = expected_calibration_error(
            scored[confidence], scored["agreement"], n_bins=n_bins
        )
    return row


def _check_summary_columns(
    per_row: pd.DataFrame, by: list[str], weight: str | None, confidence: str | None
) -> None:
    needed = ["agreement", *by, *(c for c in (weight, confidence) if c)]
    missing = [c for c in needed if c not in per_row.columns]
    if missing:
        msg = f"per_row has no column(s) {missing}"
        raise ValueError(msg)
    if weight:
        w = per_row[weight].to_numpy(dtype=float)
        if not np.isfinite(w).all() or (w < 0).any():
            msg = f"weight column {weight!r} must be finite and non-negative"
            raise ValueError(msg)


def summarize(
    per_row: pd.DataFrame,
    *,
    by: str | list[str] | None = None,
    weight: str | None = None,
    confidence: str | None = None,
    n_bins: int = 10,
) -> pd.DataFrame:
    """Mean of every metric column, overall and per group.

    Parameters
    ----------
    per_row
        A :func:`score_pairs` table, possibly with extra columns (dataset, tissue,
        n_cells, ...). The metric columns averaged are those of
        :data:`METRIC_COLUMNS` present; ``agreement`` is required.
    by
        Column(s) to group by; the groups follow the ``"overall"`` row.
    weight
        Column of non-negative row weights (e.g. ``n_cells``) for cell-weighted means;
        each row counts 1 when omitted. Its total over scored rows is reported in a
        column of the same name.
    confidence
        Column of stated confidences; adds ``ece`` (each scored row counts once).
    n_bins
        Number of bins of the ECE.

    Returns
    -------
    pandas.DataFrame
        Columns ``n``, ``n_unscored`` (rows with NaN agreement, left out),
        ``weight`` total if any, the metric means, ``ece`` if ``confidence``. The
        index holds ``"overall"`` and then the group keys (a MultiIndex for several
        ``by`` columns, whose overall row is ``"overall"`` in every level).

    Raises
    ------
    ValueError
        If a named column is missing, a weight is negative or not finite, or a group
        is itself called ``"overall"``.
    """
    by_columns = [] if by is None else [by] if isinstance(by, str) else list(by)
    _check_summary_columns(per_row, by_columns, weight, confidence)
    metrics = [c for c in METRIC_COLUMNS if c in per_row.columns]
    overall_key = "overall" if len(by_columns) <= 1 else ("overall",) * len(by_columns)
    keys: list[object] = [overall_key]
    rows = [_summary_row(per_row, metrics, weight, confidence, n_bins)]
    if by_columns:
        for key, group in per_row.groupby(by_columns, dropna=False, observed=True, sort=True):
            label = key[0] if len(by_columns) == 1 else key
            if label == overall_key:
                msg = f"a group of {by_columns} is called 'overall', which names the total"
                raise ValueError(msg)
            keys.append(label)
            rows.append(_summary_row(group, metrics, weight, confidence, n_bins))
    if len(by_columns) > 1:
        index = pd.MultiIndex.from_tuples(keys, names=by_columns)
    else:
        index = pd.Index(keys, name=by_columns[0] if by_columns else None)
    table = pd.DataFrame(rows, index=index)
    table[["n", "n_unscored"]] = table[["n", "n_unscored"]].astype(int)
    return table
