"""CellPuzzles (Cell-o1's batch task): build, read and write, solve, score.

``_records`` (the puzzle and answer records), ``_build`` (drawing puzzles from labelled
data), ``_io`` (JSON Lines and Cell-o1 records), ``_prompt`` (the Cell-o1 prompt and
strict answer parser), ``_solvers`` (one solver per backend kind), ``_solve``
(:func:`solve_puzzles`, through the backend registry) and ``_score``.
"""

from __future__ import annotations

import importlib

from ._build import build_puzzles
from ._io import parse_cello1_question, read_answers, read_puzzles, write_answers, write_puzzles
from ._records import Puzzle, PuzzleAnswer, PuzzleCell
from ._score import PuzzleScores, score_puzzles

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


def __getattr__(name: str) -> object:
    """``solve_puzzles``, loaded on first use (PEP 562).

    It builds its solver through the backend registry (:mod:`llm4cell.annotators`),
    which builds the solvers of this package: loading it with the package would make
    each package need the other while it is imported (importing ``llm4cell.annotators``
    first would then fail). The modules themselves depend one way:
    ``_solve -> annotators._registry -> _solvers``.
    """
    if name == "solve_puzzles":
        return importlib.import_module(f"{__name__}._solve").solve_puzzles
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
