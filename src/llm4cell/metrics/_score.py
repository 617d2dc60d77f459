"""``llm4cell score``: predictions against the truth, on the Cell Ontology graph.

Either side may hold CL IDs or free text; text is mapped with
:func:`llm4cell.ontology.match_label` (with the row's tissue when a tissue column is
given) and the mapping is kept in the per-row result. Metrics are those of
:mod:`llm4cell.metrics`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from .._errors import InputError
from .._io import read_data, read_table
from .._records import recorded
from ..ontology._graph import load_ontology
from ..ontology._matcher import get_matcher
from ._pairs import score_pairs, summarize

__all__ = ["ScoreResult", "score"]

_CL_ID = re.compile(r"^CL[:_]\d{7}$")
_ID_COLS = ("id", "group", "cluster", "cell_id")
_PRED_COLS = ("ontology_id", "prediction", "pred", "label", "cell_type")
_TRUTH_COLS = ("truth", "ontology_id", "label", "cell_type", "manual_CLID", "manual_annotation")
_BY_COLS = ("dataset", "tissue")


@dataclass
class ScoreResult:
    """Per-row scores and their summaries.

    Attributes
    ----------
    rows
        One row per scored item: id, predicted and true text, mapped CL IDs and labels,
        mapping methods and scores, and every metric.
    summary
        Mean of every metric overall and per group of ``by`` (cluster-weighted, or
        cell-weighted when a weight column is given).
    params
        What was compared with what.
    """

    rows: pd.DataFrame
    summary: pd.DataFrame
    params: dict[str, object]

    def to_json(self) -> str:
        """Summary, parameters and rows as one JSON document."""
        doc = {
            "params": self.params,
            "summary": json.loads(self.summary.reset_index().to_json(orient="records")),
            "rows": json.loads(self.rows.to_json(orient="records")),
        }
        return json.dumps(doc, indent=1)


def _pick(df: pd.DataFrame, wanted: str | None, choices: tuple[str, ...], what: str,
          flag: str, name: str) -> str:
    if wanted is not None:
        if wanted not in df.columns:
            msg = (
                f"column {wanted!r} not found in {name} (columns: "
                f"{', '.join(map(repr, df.columns[:15]))}); fix {flag}"
            )
            raise InputError(msg)
        return wanted
    for c in choices:
        if c in df.columns:
            return c
    msg = (
        f"no {what} column in {name} (looked for {', '.join(choices)}; columns: "
        f"{', '.join(map(repr, df.columns[:15]))}); name it with {flag}"
    )
    raise InputError(msg)


def _numeric(
    values: pd.Series, col: str, *, lo: float, hi: float, required: bool = False
) -> np.ndarray:
    """A numeric column, refusing text, blanks (when required), infinities and values
    outside [lo, hi] with a clear error."""
    text = values.astype(str).str.strip()
    num = pd.to_numeric(values.replace("", None), errors="coerce")
    bad = values[num.isna() & values.notna() & (text != "")]
    if len(bad):
        msg = f"column {col!r} holds non-numbers ({', '.join(map(repr, bad.head(3)))})"
        raise InputError(msg)
    if required and num.isna().any():
        msg = f"column {col!r} has blank values; give a number on every row"
        raise InputError(msg)
    if np.isinf(num.to_numpy(dtype=float)).any():
        msg = f"column {col!r} holds infinite values; give finite numbers"
        raise InputError(msg)
    out_of_range = num[(num < lo) | (num > hi)]
    if len(out_of_range):
        msg = (
            f"column {col!r} holds values outside [{lo:g}, {hi:g}] "
            f"({', '.join(map(str, out_of_range.head(3)))}); confidences must be fractions"
            if hi == 1.0 else
            f"column {col!r} holds negative values ({', '.join(map(str, out_of_range.head(3)))})"
        )
        raise InputError(msg)
    return num.to_numpy(dtype=float)


def _map_side(values: pd.Series, tissues: pd.Series | None, side: str) -> pd.DataFrame:
    """CL ID, label, method and mapping score for each value (text or ID)."""
    onto = load_ontology()
    matcher = get_matcher()
    texts = values.fillna("").astype(str).str.strip()
    ids_like = texts.map(lambda v: bool(_CL_ID.match(v)))
    unknown_ids = sorted({v.replace("_", ":") for v in texts[ids_like]
                          if v.replace("_", ":") not in onto})
    if unknown_ids:
        shown = ", ".join(unknown_ids[:5])
        msg = (
            f"{len(unknown_ids)} {side} IDs are not Cell Ontology {onto.version} terms "
            f"({shown}); check the IDs or give labels instead"
        )
        raise InputError(msg)
    tissue_list = list(tissues) if tissues is not None else [None] * len(texts)
    matches = matcher.match_many(list(texts), tissues=tissue_list)
    return pd.DataFrame({
        f"{side}_id": [m.ontology_id for m in matches],
        f"{side}_label": [m.label for m in matches],
        f"{side}_method": [m.method for m in matches],
        f"{side}_match_score": [m.score for m in matches],
        f"{side}_ambiguous": [m.ambiguous for m in matches],
    }, index=values.index)


def _obs_table(adata: ad.AnnData, where: str, kind: str, pred_col: str | None,
               truth_col: str | None, confidence_col: str | None
               ) -> tuple[pd.DataFrame, str, str, str | None]:
    """Every cell of an annotated AnnData as a row (``cell_id`` first), with the
    prediction and confidence columns of its llm4cell annotation unless named."""
    obs = adata.obs.copy()
    obs.insert(0, "cell_id", obs.index.astype(str))
    key = _annotation_key(adata, pred_col)
    if pred_col is None:
        named = [f"{key}_ontology_id", key] if key else []
        fallback = [*named, "llm4cell_ontology_id", "llm4cell", "cell_type_ontology_id",
                    "cell_type"]
        pred_col = next((c for c in fallback if c in obs.columns), None)
    if confidence_col is None and key and f"{key}_confidence" in obs.columns:
        confidence_col = f"{key}_confidence"
    if truth_col is None:
        msg = f"scoring {kind} needs --truth-col, the obs column holding the true cell types"
        raise InputError(msg)
    for c, flag in ((pred_col, "--pred-col"), (truth_col, "--truth-col")):
        if c is None or c not in obs.columns:
            msg = (
                f"obs column {c!r} not found in {where} (columns: "
                f"{', '.join(map(repr, list(obs.columns)[:15]))}); fix {flag}"
            )
            raise InputError(msg)
    for c in obs.columns:
        if isinstance(obs[c].dtype, pd.CategoricalDtype):
            obs[c] = obs[c].astype(object)
    return obs.reset_index(drop=True), pred_col, truth_col, confidence_col  # type: ignore[return-value]


def _annotation_key(adata: ad.AnnData, pred_col: str | None) -> str | None:
    """The key of the llm4cell annotation to score: the one ``pred_col`` belongs to, or
    the only one recorded (None without a record, or for a ``pred_col`` of no record)."""
    keys = list(recorded(adata))
    if pred_col is not None:
        return next((k for k in keys if pred_col in (k, f"{k}_ontology_id")), None)
    if len(keys) > 1:
        msg = (
            f"the AnnData holds llm4cell annotations under several keys "
            f"({', '.join(map(repr, keys))}); choose one with --pred-col, e.g. "
            f"{keys[-1] + '_ontology_id'!r}"
        )
        raise InputError(msg)
    return keys[0] if keys else None


@dataclass
class _Inputs:
    """The prediction table with the columns to score."""

    df: pd.DataFrame
    name: str
    id_col: str | None
    pred_col: str | None
    truth_col: str | None
    confidence_col: str | None
    #: "an .h5ad" or "an AnnData" when every cell is a row, else "".
    per_cell: str


def _read_pred(pred: str | os.PathLike[str] | pd.DataFrame | ad.AnnData, *,
               id_col: str | None, pred_col: str | None, truth_col: str | None,
               confidence_col: str | None) -> _Inputs:
    """The predictions as a table: a DataFrame, a CSV/TSV file, or the cells of an
    AnnData or ``.h5ad`` (then ``id_col`` is ``cell_id``)."""
    if isinstance(pred, pd.DataFrame):
        return _Inputs(pred.astype(object), "the predictions", id_col, pred_col, truth_col,
                       confidence_col, per_cell="")
    if isinstance(pred, ad.AnnData):
        adata, name, where, kind = pred, "the AnnData", "the AnnData", "an AnnData"
    else:
        path = Path(pred)
        if path.suffix.lower() != ".h5ad":
            return _Inputs(read_table(path, "predictions"), str(pred), id_col, pred_col,
                           truth_col, confidence_col, per_cell="")
        adata, name, where, kind = read_data(path), str(pred), repr(str(path)), "an .h5ad"
    df, pred_col, truth_col, confidence_col = _obs_table(adata, where, kind, pred_col,
                                                         truth_col, confidence_col)
    return _Inputs(df, name, "cell_id", pred_col, truth_col, confidence_col, per_cell=kind)


def _own_truth(inp: _Inputs) -> tuple[pd.DataFrame, str | None, str, str]:
    """Predictions holding their truth column: (table, id, prediction, truth column)."""
    df = inp.df
    truth_col = _pick(df, inp.truth_col, ("truth", "manual_CLID", "manual_annotation"),
                      "truth", "--truth-col", inp.name)
    pred_col = _pick(df, inp.pred_col, _PRED_COLS, "prediction", "--pred-col", inp.name)
    id_col = inp.id_col
    if id_col is None:
        id_col = next((c for c in _ID_COLS if c in df.columns), None)
    else:
        _pick(df, id_col, (), "id", "--id-col", inp.name)
    return df, id_col, pred_col, truth_col


def _common_id(p_df: pd.DataFrame, t_df: pd.DataFrame) -> str:
    id_col = next((c for c in _ID_COLS if c in p_df.columns and c in t_df.columns), None)
    if id_col is None:
        msg = (
            "no common id column in the two tables (looked for "
            f"{', '.join(_ID_COLS)}); name it with --id-col"
        )
        raise InputError(msg)
    return id_col


def _check_ids(p_df: pd.DataFrame, t_df: pd.DataFrame, id_col: str) -> None:
    p_ids = set(p_df[id_col].astype(str))
    t_ids = set(t_df[id_col].astype(str))
    if p_ids != t_ids:
        only_p = sorted(p_ids - t_ids)[:3]
        only_t = sorted(t_ids - p_ids)[:3]
        msg = (
            f"ids do not match: {len(p_ids - t_ids)} only in the predictions {only_p}, "
            f"{len(t_ids - p_ids)} only in the truth {only_t}; score matching tables"
        )
        raise InputError(msg)


def _join_truth(inp: _Inputs, truth: str | os.PathLike[str] | pd.DataFrame
                ) -> tuple[pd.DataFrame, str, str, str, str]:
    """Predictions joined to a truth table on the id column: (table, id, prediction,
    truth column in the table, truth column as the user named it)."""
    p_df = inp.df
    t_df = truth.astype(object) if isinstance(truth, pd.DataFrame) else read_table(
        Path(truth), "truth")
    t_name = "the truth" if isinstance(truth, pd.DataFrame) else str(truth)
    id_col = inp.id_col if inp.id_col is not None else _common_id(p_df, t_df)
    for df_, name in ((p_df, inp.name), (t_df, t_name)):
        _pick(df_, id_col, (), "id", "--id-col", name)
        if df_[id_col].duplicated().any():
            dup = df_.loc[df_[id_col].duplicated(), id_col].astype(str).unique()[:5]
            msg = f"ids repeat in {name} ({', '.join(dup)}); every id must appear once"
            raise InputError(msg)
    pred_col = _pick(p_df, inp.pred_col, _PRED_COLS, "prediction", "--pred-col", inp.name)
    truth_col = _pick(t_df, inp.truth_col, _TRUTH_COLS, "truth", "--truth-col", t_name)
    _check_ids(p_df, t_df, id_col)
    t_keep = t_df.rename(columns={truth_col: "__truth__"})
    keep = [id_col, "__truth__"] + [c for c in t_keep.columns
                                    if c not in p_df.columns and c != "__truth__"
                                    and c != id_col]
    df = p_df.merge(t_keep[keep], on=id_col, how="left")
    df = df.rename(columns={"__truth__": f"{truth_col}__truth"})
    return df, id_col, pred_col, f"{truth_col}__truth", truth_col


def _check_optional(df: pd.DataFrame, *, tissue_col: str | None,
                    confidence_col: str | None, weight_col: str | None,
                    by: list[str] | None) -> list[str]:
    """Refuse named columns that are missing; return the breakdown columns."""
    for col, what, flag, where in ((tissue_col, "tissue", "--tissue-col", "the tables"),
                                   (confidence_col, "confidence", "--confidence-col",
                                    "the predictions"),
                                   (weight_col, "weight", "--weight-col", "the predictions")):
        if col is not None:
            _pick(df, col, (), what, flag, where)
    if by is None:
        return [c for c in _BY_COLS if c in df.columns]
    for c in by:
        _pick(df, c, (), "breakdown", "--by", "the tables")
    return by


def _source(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, pd.DataFrame):
        return "<DataFrame>"
    if isinstance(value, ad.AnnData):
        return "<AnnData>"
    return str(value)


def score(
    pred: str | os.PathLike[str] | pd.DataFrame | ad.AnnData,
    truth: str | os.PathLike[str] | pd.DataFrame | None = None,
    *,
    id_col: str | None = None,
    pred_col: str | None = None,
    truth_col: str | None = None,
    tissue_col: str | None = None,
    confidence_col: str | None = None,
    weight_col: str | None = None,
    by: list[str] | None = None,
) -> ScoreResult:
    """Score predictions against the truth with the ontology-aware metrics.

    The Python face of ``llm4cell score``.

    Parameters
    ----------
    pred
        The predictions: a CSV/TSV table or a DataFrame (one row per item), or an
        annotated AnnData or ``.h5ad`` (then every cell is a row, ``cell_id`` its id,
        and ``truth_col`` names an ``obs`` column). For an AnnData the prediction and
        confidence columns default to those of its llm4cell annotation (the key of
        ``pred_col``, or the only key recorded in ``uns['llm4cell']``).
    truth
        A table of true labels joined to ``pred`` on ``id_col``; omit it when ``pred``
        holds the truth column itself (or is an AnnData).
    id_col
        Column joining the two tables (default: the first of id, group, cluster).
    pred_col, truth_col
        Columns with the predicted and true cell types, CL IDs or free text.
    tissue_col
        Column with each row's tissue (used to map ambiguous text such as "HSC").
    confidence_col
        Column with the prediction's confidence in [0, 1] (adds calibration error).
    weight_col
        Column with row weights such as ``n_cells`` (cell-weighted means).
    by
        Columns to break the summary down by (default: dataset and tissue when present).

    Returns
    -------
    A :class:`ScoreResult`: per-row scores, their summary and the parameters.

    Raises
    ------
    InputError
        For missing files or columns, empty tables, unknown CL IDs and ids that do not
        match between the two tables.
    """
    inp = _read_pred(pred, id_col=id_col, pred_col=pred_col, truth_col=truth_col,
                     confidence_col=confidence_col)
    if truth is None:
        df, id_col, pred_col, truth_col = _own_truth(inp)
        user_truth_col = truth_col
    elif inp.per_cell:
        msg = (f"with {inp.per_cell}, give the truth as an obs column (--truth-col), "
               "not a file")
        raise InputError(msg)
    else:
        df, id_col, pred_col, truth_col, user_truth_col = _join_truth(inp, truth)
    confidence_col = inp.confidence_col
    by = _check_optional(df, tissue_col=tissue_col, confidence_col=confidence_col,
                         weight_col=weight_col, by=by)
    tissues = df[tissue_col].astype(str) if tissue_col is not None else None
    p_map = _map_side(df[pred_col], tissues, "pred")
    t_map = _map_side(df[truth_col], tissues, "truth")
    confidence = None
    if confidence_col is not None:
        confidence = _numeric(df[confidence_col], confidence_col, lo=0.0, hi=1.0)
    rows = _rows(df, id_col=id_col, by=by, pred_col=pred_col, truth_col=truth_col,
                 p_map=p_map, t_map=t_map, confidence=confidence)
    weight = None
    if weight_col is not None:
        rows["weight"] = _numeric(df[weight_col], weight_col, lo=0.0, hi=float("inf"),
                                  required=True)
        weight = "weight"
    summary = summarize(rows, by=by or None, weight=weight,
                        confidence="confidence" if confidence is not None else None)
    params: dict[str, object] = {
        "pred": _source(pred),
        "truth": _source(truth),
        "id_col": id_col or "", "pred_col": pred_col, "truth_col": user_truth_col,
        "tissue_col": tissue_col or "", "confidence_col": confidence_col or "",
        "weight_col": weight_col or "", "by": by,
        "cl_version": load_ontology().version,
    }
    return ScoreResult(rows=rows, summary=summary, params=params)


def _rows(df: pd.DataFrame, *, id_col: str | None, by: list[str], pred_col: str,
          truth_col: str, p_map: pd.DataFrame, t_map: pd.DataFrame,
          confidence: np.ndarray | None) -> pd.DataFrame:
    """One row per item: id and breakdown columns, both texts, their mappings, the
    metrics and the confidence."""
    # The text of a prediction given as a CL ID is that term's name.
    pred_text = [
        label if method == "id" and label else ("" if pd.isna(raw) else str(raw))
        for raw, label, method in zip(df[pred_col], p_map["pred_label"], p_map["pred_method"],
                                      strict=True)
    ]
    metrics = score_pairs(
        list(p_map["pred_id"]), list(t_map["truth_id"]),
        pred_text=pred_text, confidence=confidence,
    )
    metrics.index = df.index
    rows = pd.concat(
        [
            df[[c for c in [id_col, *by] if c is not None]].copy(),
            df[pred_col].rename("pred_text"),
            p_map,
            df[truth_col].rename("truth_text"),
            t_map,
            metrics,
        ],
        axis=1,
    )
    rows = rows.loc[:, ~rows.columns.duplicated()]
    if confidence is not None:
        rows["confidence"] = confidence
    return rows
