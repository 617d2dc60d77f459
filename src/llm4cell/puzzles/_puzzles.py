"""Transitional: the puzzles moved to one module per concept (``_records``, ``_build``,
``_io``, ``_solve``, ``_score``). Kept only while ``llm4cell/__init__.py`` and
``cli/_arena.py`` (other owners) still import from here; delete it once they import from
the concept modules."""

from __future__ import annotations

from ._build import build_puzzles
from ._io import parse_cello1_question, read_answers, read_puzzles, write_answers, write_puzzles
from ._records import CANDIDATES_INTRO, Puzzle, PuzzleAnswer, PuzzleCell
from ._score import PuzzleScores, score_puzzles
from ._solve import solve_puzzles

__all__ = [
    "CANDIDATES_INTRO",
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
