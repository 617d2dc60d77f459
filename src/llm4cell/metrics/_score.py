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

import numpy as np
import pandas as pd

from .._errors import InputError
from .._io import read_table
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


def _from_h5ad(path: Path, pred_col: str | None, truth_col: str | None,
               confidence_col: str | None) -> tuple[pd.DataFrame, str, str, str | None]:
    from .._io import read_data

    adata = read_data(path)
    obs = adata.obs.copy()
    obs.insert(0, "cell_id", obs.index.astype(str))
    key = None
    rec = adata.uns.get("llm4cell")
    if isinstance(rec, dict) and "key_added" in rec:
        key = str(rec["key_added"])
    if pred_col is None:
        for c in ([f"{key}_ontology_id", key] if key else []) + ["cell_type_ontology_id",
                                                                    "cell_type"]:
            if c in obs.columns:
                pred_col = c
                break
    if confidence_col is None and key and f"{key}_confidence" in obs.columns:
        confidence_col = f"{key}_confidence"
    if truth_col is None:
        msg = "scoring an .h5ad needs --truth-col, the obs column holding the true cell types"
        raise InputError(msg)
    for c, flag in ((pred_col, "--pred-col"), (truth_col, "--truth-col")):
        if c is None or c not in obs.columns:
            msg = (
                f"obs column {c!r} not found in {str(path)!r} (columns: "
                f"{', '.join(map(repr, list(obs.columns)[:15]))}); fix {flag}"
            )
            raise InputError(msg)
    for c in obs.columns:
        if isinstance(obs[c].dtype, pd.CategoricalDtype):
            obs[c] = obs[c].astype(object)
    return obs.reset_index(drop=True), pred_col, truth_col, confidence_col  # type: ignore[return-value]


def score(
    pred: str | os.PathLike[str] | pd.DataFrame,
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

    Parameters
    ----------
    pred
        A CSV/TSV table (or DataFrame) of predictions, or an annotated ``.h5ad``
        (then every cell is a row and ``truth_col`` names an ``obs`` column).
    truth
        A table of true labels joined to ``pred`` on ``id_col``; omit it when ``pred``
        holds the truth column itself (or is an ``.h5ad``).
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

    Raises
    ------
    InputError
        For missing files or columns, empty tables, unknown CL IDs and ids that do not
        match between the two tables.
    """
    params: dict[str, object] = {}
    if isinstance(pred, pd.DataFrame):
        p_df, p_name = pred.astype(object), "the predictions"
    else:
        ppath = Path(pred)
        if ppath.suffix.lower() == ".h5ad":
            p_df, pred_col, truth_col, confidence_col = _from_h5ad(
                ppath, pred_col, truth_col, confidence_col)
            id_col = "cell_id"
            if truth is not None:
                msg = "with an .h5ad, give the truth as an obs column (--truth-col), not a file"
                raise InputError(msg)
        else:
            p_df = read_table(ppath, "predictions")
        p_name = str(pred)
    user_truth_col = truth_col
    if truth is None:
        df = p_df
        truth_col = _pick(df, truth_col, ("truth", "manual_CLID", "manual_annotation"),
                          "truth", "--truth-col", p_name)
        pred_col = _pick(df, pred_col, _PRED_COLS, "prediction", "--pred-col", p_name)
        if id_col is None:
            id_col = next((c for c in _ID_COLS if c in df.columns), None)
        else:
            _pick(df, id_col, (), "id", "--id-col", p_name)
        user_truth_col = truth_col
    else:
        t_df = truth.astype(object) if isinstance(truth, pd.DataFrame) else read_table(
            Path(truth), "truth")
        t_name = "the truth" if isinstance(truth, pd.DataFrame) else str(truth)
        if id_col is None:
            id_col = next((c for c in _ID_COLS if c in p_df.columns and c in t_df.columns),
                          None)
            if id_col is None:
                msg = (
                    "no common id column in the two tables (looked for "
                    f"{', '.join(_ID_COLS)}); name it with --id-col"
                )
                raise InputError(msg)
        for df_, name in ((p_df, p_name), (t_df, t_name)):
            _pick(df_, id_col, (), "id", "--id-col", name)
            if df_[id_col].duplicated().any():
                dup = df_.loc[df_[id_col].duplicated(), id_col].astype(str).unique()[:5]
                msg = f"ids repeat in {name} ({', '.join(dup)}); every id must appear once"
                raise InputError(msg)
        pred_col = _pick(p_df, pred_col, _PRED_COLS, "prediction", "--pred-col", p_name)
        truth_col = _pick(t_df, truth_col, _TRUTH_COLS, "truth", "--truth-col", t_name)
        user_truth_col = truth_col
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
        t_keep = t_df.rename(columns={truth_col: "__truth__"})
        keep = [id_col, "__truth__"] + [c for c in t_keep.columns
                                        if c not in p_df.columns and c != "__truth__"
                                        and c != id_col]
        df = p_df.merge(t_keep[keep], on=id_col, how="left")
        df = df.rename(columns={"__truth__": f"{truth_col}__truth"})
        truth_col = f"{truth_col}__truth"
    tissues = None
    if tissue_col is not None:
        _pick(df, tissue_col, (), "tissue", "--tissue-col", "the tables")
        tissues = df[tissue_col].astype(str)
    if confidence_col is not None:
        _pick(df, confidence_col, (), "confidence", "--confidence-col", "the predictions")
    if weight_col is not None:
        _pick(df, weight_col, (), "weight", "--weight-col", "the predictions")
    if by is None:
        by = [c for c in _BY_COLS if c in df.columns]
    else:
        for c in by:
            _pick(df, c, (), "breakdown", "--by", "the tables")

    p_map = _map_side(df[pred_col], tissues, "pred")
    t_map = _map_side(df[truth_col], tissues, "truth")
    confidence = None
    if confidence_col is not None:
        confidence = _numeric(df[confidence_col], confidence_col, lo=0.0, hi=1.0)
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
    weight = None
    if weight_col is not None:
        rows["weight"] = _numeric(df[weight_col], weight_col, lo=0.0, hi=float("inf"),
                                  required=True)
        weight = "weight"
    summary = summarize(rows, by=by or None, weight=weight,
                        confidence="confidence" if confidence is not None else None)
    params.update({
        "pred": str(pred) if not isinstance(pred, pd.DataFrame) else "<DataFrame>",
        "truth": (str(truth) if truth is not None and not isinstance(truth, pd.DataFrame)
                  else ("<DataFrame>" if truth is not None else "")),
        "id_col": id_col or "", "pred_col": pred_col, "truth_col": user_truth_col,
        "tissue_col": tissue_col or "", "confidence_col": confidence_col or "",
        "weight_col": weight_col or "", "by": by,
        "cl_version": load_ontology().version,
    })
    return ScoreResult(rows=rows, summary=summary, params=params)
