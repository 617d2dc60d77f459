"""Scoring puzzle answers the way Cell-o1 does, plus Cell Ontology agreement.

Cell-level accuracy (positions right, case-insensitive), batch-level accuracy (all N
right), format compliance and label uniqueness; a malformed answer scores 0. Beside the
exact match each cell gets the Cell Ontology agreement (1 same term, 0.5 ancestor or
descendant, 0 otherwise) of its predicted and true types.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .._errors import InputError
from ..metrics._pairs import score_pairs
from ..ontology._matcher import get_matcher
from ._records import PuzzleAnswer, label_key

__all__ = ["PuzzleScores", "score_puzzles"]


class PuzzleScores:
    """Scores of a set of puzzle answers.

    Attributes
    ----------
    summary
        Overall row then one row per N: ``n_puzzles``, ``n_cells``, ``cell_accuracy``,
        ``batch_accuracy``, ``format_compliance``, ``uniqueness``, ``agreement``,
        ``full_match``, ``partial_match``, ``hierarchical_f1`` (the ontology columns are
        means over cells whose true type has a CL ID; malformed answers count 0).
    per_puzzle
        One row per puzzle: ``id``, ``n``, ``backend``, ``correct`` (cells right),
        ``cell_accuracy``, ``batch_correct``, ``format_ok``, ``unique``, ``agreement``.
    per_cell
        One row per cell: ``id``, ``position``, ``n``, ``truth``, ``prediction``,
        ``correct``, ``truth_id``, ``pred_id`` and the ontology metrics.
    """

    def __init__(self, summary: pd.DataFrame, per_puzzle: pd.DataFrame,
                 per_cell: pd.DataFrame) -> None:
        self.summary = summary
        self.per_puzzle = per_puzzle
        self.per_cell = per_cell

    def __repr__(self) -> str:
        row = self.summary.iloc[0]
        return (f"PuzzleScores({int(row['n_puzzles'])} puzzles: cell {row['cell_accuracy']:.3f}, "
                f"batch {row['batch_accuracy']:.3f})")

    def to_markdown(self) -> str:
        """The summary as a Markdown table."""
        cols = ["n_puzzles", "cell_accuracy", "batch_accuracy", "format_compliance",
                "uniqueness", "agreement", "full_match"]
        lines = ["| N | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        for key, row in self.summary.iterrows():
            cells = [str(int(row[c])) if c == "n_puzzles" else
                     ("–" if pd.isna(row[c]) else f"{row[c]:.3f}") for c in cols]
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"


def _pred_id(label: str | None, answer: PuzzleAnswer) -> str | None:
    if label is None:
        return None
    by_key = {label_key(k): v for k, v in answer.candidate_ids.items()}
    if label_key(label) in by_key:
        return by_key[label_key(label)]
    return get_matcher().match(label).ontology_id


def score_puzzles(answers: Sequence[PuzzleAnswer]) -> PuzzleScores:
    """Cell-level and batch-level accuracy, format compliance, uniqueness, ontology agreement.

    Raises
    ------
    InputError
        When no answer carries the true answer (unlabelled puzzles cannot be scored).
    """
    scored = [a for a in answers if a.answer is not None]
    if not scored:
        msg = "none of the answers carries the true answer; score puzzles built with labels"
        raise InputError(msg)
    cell_rows = []
    puzzle_rows = []
    for a in scored:
        assert a.answer is not None
        pred = a.prediction if a.format_ok and a.prediction is not None else None
        hits = []
        for pos, truth in enumerate(a.answer):
            guess = pred[pos] if pred is not None else None
            ok = guess is not None and label_key(guess) == label_key(truth)
            hits.append(ok)
            cell_rows.append({
                "id": a.id, "position": pos + 1, "n": a.n, "truth": truth,
                "prediction": guess, "correct": ok,
                "truth_id": _pred_id(truth, a), "pred_id": _pred_id(guess, a),
            })
        puzzle_rows.append({
            "id": a.id, "n": a.n, "backend": a.backend, "correct": sum(hits),
            "cell_accuracy": sum(hits) / a.n, "batch_correct": all(hits),
            "format_ok": a.format_ok, "unique": a.unique and pred is not None,
        })
    per_cell = pd.DataFrame(cell_rows)
    metrics = score_pairs(per_cell["pred_id"], per_cell["truth_id"])
    per_cell = pd.concat([per_cell, metrics], axis=1)
    per_puzzle = pd.DataFrame(puzzle_rows)
    per_puzzle["agreement"] = per_cell.groupby("id", sort=False)["agreement"].mean().reindex(
        per_puzzle["id"]).to_numpy()

    def summarize(pp: pd.DataFrame, pc: pd.DataFrame) -> dict[str, float]:
        return {
            "n_puzzles": len(pp), "n_cells": len(pc),
            "cell_accuracy": float(pc["correct"].mean()),
            "batch_accuracy": float(pp["batch_correct"].mean()),
            "format_compliance": float(pp["format_ok"].mean()),
            "uniqueness": float(pp["unique"].mean()),
            "agreement": float(pc["agreement"].mean()),
            "full_match": float(pc["full_match"].mean()),
            "partial_match": float(pc["partial_match"].mean()),
            "hierarchical_f1": float(pc["hierarchical_f1"].mean()),
        }

    rows = {"overall": summarize(per_puzzle, per_cell)}
    for n in sorted(per_puzzle["n"].unique()):
        rows[str(n)] = summarize(per_puzzle[per_puzzle["n"] == n], per_cell[per_cell["n"] == n])
    summary = pd.DataFrame.from_dict(rows, orient="index")
    summary.index.name = "n"
    summary[["n_puzzles", "n_cells"]] = summary[["n_puzzles", "n_cells"]].astype(int)
    return PuzzleScores(summary, per_puzzle, per_cell)
