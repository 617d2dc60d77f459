"""Puzzle metrics: cell-level and batch-level accuracy.

A puzzle is a list of labels, one per position. Labels are compared after stripping
surrounding whitespace and ignoring case. A prediction that is ``None`` or has the wrong
length scores 0 on every position of its puzzle.

:func:`cell_level_accuracy`
    Right positions / all positions, pooled over puzzles (nan without positions).
:func:`batch_level_accuracy`
    Puzzles with every position right / puzzles (nan without puzzles).
"""

from __future__ import annotations

from collections.abc import Sequence

from ._base import _NAN, _is_missing

__all__ = ["batch_level_accuracy", "cell_level_accuracy"]


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
