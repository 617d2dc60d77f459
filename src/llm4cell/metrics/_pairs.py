"""Tables of metrics: one row per (prediction, truth) pair, and their summaries.

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

from collections.abc import Iterable

import numpy as np
import pandas as pd

from ..ontology._graph import CellOntology
from ._base import _NAN, _is_missing, _onto, _resolve
from ._calibration import expected_calibration_error
from ._ontology import _agreement, _hierarchical, _lca
from ._text import _exact, _rouge

__all__ = ["METRIC_COLUMNS", "score_pairs", "summarize"]

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
