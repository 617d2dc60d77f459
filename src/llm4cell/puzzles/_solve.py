"""Solving puzzles with any backend: :func:`solve_puzzles`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._records import Progress
from ..annotators._registry import build_backend
from ._records import Puzzle, PuzzleAnswer
from ._solvers import PuzzleSolver

__all__ = ["solve_puzzles"]


def solve_puzzles(
    puzzles: Sequence[Puzzle],
    *,
    backend: str | PuzzleSolver = "knowledge",
    backend_options: Mapping[str, object] | Any | None = None,
    assignment: bool = True,
    seed: int = 0,
    progress: Progress | None = None,
) -> list[PuzzleAnswer]:
    """Solve puzzles with a backend; see :mod:`llm4cell.puzzles._solvers`.

    Parameters
    ----------
    puzzles
        The puzzles.
    backend
        ``"knowledge"`` (offline: score matrix + optimal one-to-one assignment),
        ``"random"`` (a random permutation, the baseline), an LLM spec
        (``"openai:MODEL"``, ``"anthropic:MODEL"``, ``"llamacpp:PATH.gguf"``: Cell-o1
        prompt, ``<think>...</think><answer>...</answer>`` parsed strictly),
        ``"hybrid:<llm spec>"`` (the LLM sees the knowledge score matrix and may revise
        its assignment) or ``"consensus:<spec>,<spec>,..."`` (members' votes, assigned
        one-to-one); or a solver built by
        :func:`~llm4cell.annotators.build_backend` with ``task="puzzles"``.
    backend_options
        How LLM backends are called (:class:`~llm4cell.LLMOptions` or a dict).
        ``max_tokens`` is per cell: a puzzle of N cells may use N times as many.
    assignment
        Knowledge backend only: False takes each cell's best candidate independently
        (labels may repeat), for comparison.
    seed
        Seed of the random baseline.
    progress
        Called as ``progress(done, total)`` after each puzzle.

    Returns
    -------
    One answer per puzzle, in puzzle order.

    Raises
    ------
    BackendError
        For unknown specs, backends that cannot solve puzzles, or LLM backends that
        cannot answer.
    """
    solver = build_backend(backend, backend_options, task="puzzles", assignment=assignment,
                           seed=seed)
    return solver.solve(puzzles, progress=progress)
