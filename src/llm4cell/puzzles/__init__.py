"""CellPuzzles (Cell-o1's batch task): build, read and write, solve, score."""

from __future__ import annotations

from ._puzzles import (
    Puzzle,
    PuzzleAnswer,
    PuzzleCell,
    PuzzleScores,
    build_puzzles,
    parse_cello1_question,
    read_answers,
    read_puzzles,
    score_puzzles,
    solve_puzzles,
    write_answers,
    write_puzzles,
)

__all__ = [
    "Puzzle",
    "PuzzleAnswer",
    "PuzzleCell",
    "PuzzleScores",
    "build_puzzles",
    "parse_cello1_question",
    "read_answers",
    "read_puzzles",
    "score_puzzles",
    "solve_puzzles",
    "write_answers",
    "write_puzzles",
]
