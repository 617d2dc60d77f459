"""Scoring bench units into stored rows: one row per item, with the ontology metrics.

A truth may name several terms (``"T cell or B cell"``): the prediction is scored against
each and the best counts (:func:`best_scores`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._records import Annotation
from ..metrics._pairs import score_pairs
from ..puzzles._records import PuzzleAnswer
from ..puzzles._score import score_puzzles
from ._datasets import Unit

__all__ = ["annotation_rows", "best_scores", "puzzle_rows"]


def best_scores(pred_ids: list[str | None], truths: list[list[str]]) -> pd.DataFrame:
    """score_pairs against each truth's IDs, keeping the best alternative per row."""
    flat_pred: list[str | None] = []
    flat_truth: list[str | None] = []
    owner: list[int] = []
    for k, (p, ids) in enumerate(zip(pred_ids, truths, strict=True)):
        for t in ids or [None]:
            flat_pred.append(p)
            flat_truth.append(t)
            owner.append(k)
    table = score_pairs(flat_pred, flat_truth)
    table["owner"] = owner
    table["_a"] = table["agreement"].fillna(-1)
    best = table.sort_values(["owner", "_a"], ascending=[True, False], kind="stable"
                             ).groupby("owner").head(1)
    return best.set_index("owner").sort_index().drop(columns="_a")


def annotation_rows(units: list[Unit], answers: dict[str, Annotation]) -> list[dict[str, Any]]:
    rows = []
    pred_ids: list[str | None] = []
    truths: list[list[str]] = []
    for u in units:
        a = answers[u.id]
        for t in u.truths:
            rows.append({
                "unit_id": u.id, "item_id": t.item_id, "prediction": a.label,
                "pred_id": a.ontology_id or "", "truth": t.text,
                "truth_id": ",".join(t.ids), "confidence": a.confidence, "weight": t.weight,
                "evidence": a.evidence[:500],
            })
            pred_ids.append(a.ontology_id)
            truths.append(t.ids)
    scores = best_scores(pred_ids, truths)
    for k, row in enumerate(rows):
        for c in ("agreement", "full_match", "partial_match", "hierarchical_f1",
                  "lca_similarity"):
            row[c] = scores.at[k, c]
    return rows


def puzzle_rows(units: list[Unit], answers: list[PuzzleAnswer]) -> list[dict[str, Any]]:
    scores = score_puzzles(answers)
    per_cell = scores.per_cell.groupby("id", sort=False)[
        ["agreement", "full_match", "partial_match", "hierarchical_f1", "lca_similarity"]
    ].mean()
    per_puzzle = scores.per_puzzle.set_index("id")
    rows = []
    for u, a in zip(units, answers, strict=True):
        pp = per_puzzle.loc[a.id]
        conf = float(np.mean(a.confidence)) if a.confidence else float("nan")
        rows.append({
            "unit_id": u.id, "item_id": u.id,
            "prediction": " | ".join(a.prediction) if a.prediction else "",
            "pred_id": "", "truth": u.truths[0].text, "truth_id": "", "confidence": conf,
            "weight": 1.0, "n": a.n, "cell_accuracy": pp["cell_accuracy"],
            "batch_correct": float(pp["batch_correct"]), "format_ok": float(a.format_ok),
            "unique_labels": float(a.unique and a.prediction is not None),
            "evidence": (a.error or a.reasoning)[:500],
            "requests": a.requests, "cache_hits": a.cache_hits,
            "prompt_tokens": a.prompt_tokens, "completion_tokens": a.completion_tokens,
            **{c: per_cell.at[a.id, c] for c in per_cell.columns},
        })
    return rows
