"""CellPuzzles records: a puzzle, its cells and a solver's answer.

A puzzle is a batch of N cells from one donor (and batch), each of a different cell
type, given as its top expressed genes, with a context sentence from donor metadata and
the N candidate types listed alphabetically. The answer names one candidate per cell,
in cell order, each candidate exactly once. Labels are compared case-insensitively
(:func:`label_key`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["CANDIDATES_INTRO", "Puzzle", "PuzzleAnswer", "PuzzleCell", "label_key"]

#: The sentence that introduces the candidate list in Cell-o1's question text.
CANDIDATES_INTRO = "Match the cells above to one of the following cell types:"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PuzzleCell(_Model):
    """One cell of a puzzle: its id in the source data and its top expressed genes."""

    id: str
    genes: tuple[str, ...]


def label_key(label: str) -> str:
    """A label as compared: stripped and case-folded."""
    return label.strip().casefold()


class Puzzle(_Model):
    """One CellPuzzles instance.

    Parameters
    ----------
    id
        Puzzle identifier (answers are keyed by it).
    cells
        The N cells, in the order the answer follows.
    candidates
        The N candidate types (distinct; listed alphabetically by :func:`build_puzzles`).
    answer
        The true type of each cell, in cell order (a permutation of ``candidates``), or
        None for an unlabelled puzzle.
    context
        Donor / sample context sentence.
    candidate_ids
        Candidate -> Cell Ontology ID (None when it maps to no term).
    tissue, species
        For the knowledge engine's tissue factor and gene mapping.
    donor, batch
        The group the cells were drawn from.
    source
        Where the puzzle came from (file name).
    """

    id: str
    cells: tuple[PuzzleCell, ...]
    candidates: tuple[str, ...]
    answer: tuple[str, ...] | None = None
    context: str = ""
    candidate_ids: dict[str, str | None] = Field(default_factory=dict)
    tissue: str | None = None
    species: str = "human"
    donor: str | None = None
    batch: str | None = None
    source: str = ""

    @model_validator(mode="after")
    def _check(self) -> Puzzle:
        n = len(self.cells)
        if n == 0:
            msg = "a puzzle needs at least one cell"
            raise ValueError(msg)
        if len(self.candidates) != n:
            msg = (f"{len(self.candidates)} candidates for {n} cells; every cell needs "
                   "exactly one candidate type")
            raise ValueError(msg)
        keys = [label_key(c) for c in self.candidates]
        if len(set(keys)) != n or any(not k for k in keys):
            msg = "the candidate types must be distinct and non-empty"
            raise ValueError(msg)
        answer = self.answer
        if answer is not None and sorted(label_key(a) for a in answer) != sorted(keys):
            msg = "the answer must use every candidate type exactly once"
            raise ValueError(msg)
        if len({c.id for c in self.cells}) != n:
            msg = "the cell ids of a puzzle must be distinct"
            raise ValueError(msg)
        return self

    @property
    def n(self) -> int:
        """Number of cells (and candidates)."""
        return len(self.cells)

    def candidate_id(self, label: str) -> str | None:
        """The CL ID of a candidate (case-insensitive), None when unknown."""
        by_key = {label_key(k): v for k, v in self.candidate_ids.items()}
        return by_key.get(label_key(label))


class PuzzleAnswer(_Model):
    """A solver's answer to one puzzle (with the gold answer copied, for scoring).

    ``prediction`` is None when the answer was malformed (``format_ok`` False, scored 0).
    ``scores`` is the cells x candidates score matrix of the knowledge engine (higher is
    better), when one was computed; ``confidence`` the per-cell probability of the
    chosen candidate. ``raw`` keeps an LLM's full text.
    """

    id: str
    n: int
    backend: str
    prediction: tuple[str, ...] | None
    format_ok: bool
    unique: bool
    candidates: tuple[str, ...]
    answer: tuple[str, ...] | None = None
    candidate_ids: dict[str, str | None] = Field(default_factory=dict)
    reasoning: str = ""
    raw: str | None = None
    error: str = ""
    scores: list[list[float]] | None = None
    confidence: tuple[float, ...] | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    requests: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0

    @model_validator(mode="after")
    def _sizes(self) -> PuzzleAnswer:
        if len(self.candidates) != self.n:
            msg = f"n is {self.n} but {len(self.candidates)} candidates are listed"
            raise ValueError(msg)
        for name in ("prediction", "answer", "confidence"):
            value = getattr(self, name)
            if value is not None and len(value) != self.n:
                msg = f"{name} lists {len(value)} entries for {self.n} cells"
                raise ValueError(msg)
        return self

