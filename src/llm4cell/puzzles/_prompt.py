"""The CellPuzzles prompt (Cell-o1's task, our wording) and the strict answer parser.

The question follows the published layout, so that models tuned on it (Cell-o1) see
what they know: ``Context: ...``, one ``Cell i: genes`` line per cell, then ``Match the
cells above to one of the following cell types:`` and one candidate per line. The
answer must be ``<think>...</think>`` followed by ``<answer>t1 | t2 | ... | tN</answer>``
and nothing else; anything else is a format failure (the puzzle scores 0).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ._records import CANDIDATES_INTRO, Puzzle

__all__ = ["PUZZLE_PROMPT_VERSION", "PUZZLE_SYSTEM", "ParsedPuzzleAnswer",
           "hints_block", "parse_puzzle_answer", "puzzle_question"]

PUZZLE_PROMPT_VERSION = "puzzle-1"

PUZZLE_SYSTEM = (
    "You are an expert in single-cell biology who annotates cell types. You receive a "
    "batch of N cells from one donor; each cell is a different cell type and is described "
    "by its most highly expressed genes, highest first. You also receive N candidate cell "
    "types: give every candidate to exactly one cell, reasoning over the whole batch "
    "rather than one cell at a time. Reply with your reasoning inside <think> and </think>, "
    "then the final answer inside <answer> and </answer>: the N candidate names in cell "
    "order, exactly as written in the list, separated by ' | '. Write nothing after "
    "</answer>."
)

_STRICT = re.compile(r"^\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*$",
                     re.DOTALL | re.IGNORECASE)


def puzzle_question(puzzle: Puzzle, *, max_genes: int | None = None) -> str:
    """The question text in the published layout (candidates alphabetical)."""
    lines = [f"Context: {puzzle.context}".rstrip(), ""]
    for i, cell in enumerate(puzzle.cells, start=1):
        genes = cell.genes[:max_genes] if max_genes else cell.genes
        lines.append(f"Cell {i}: {', '.join(genes)}")
    lines += ["", CANDIDATES_INTRO, *sorted(puzzle.candidates, key=str.casefold)]
    return "\n".join(lines)


def hints_block(puzzle: Puzzle, scores: Sequence[Sequence[float]],
                assignment: Sequence[str], top: int = 3) -> str:
    """The knowledge engine's scores and assignment, for the hybrid backend."""
    lines = [
        "",
        "A curated marker database scored every cell against every candidate (higher "
        "means more of the cell's top genes are known markers of that type). The "
        f"{top} best candidates per cell:",
    ]
    for i, row in enumerate(scores, start=1):
        order = sorted(range(len(row)), key=lambda j: -row[j])[:top]
        lines.append(f"Cell {i}: " + "; ".join(
            f"{puzzle.candidates[j]} {row[j]:.2f}" for j in order))
    lines += [
        "The best one-to-one assignment by these scores is: " + " | ".join(assignment),
        "Use this as evidence: keep it where the genes agree, revise it where they do not.",
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class ParsedPuzzleAnswer:
    """What the parser made of a reply."""

    prediction: tuple[str, ...] | None
    format_ok: bool
    unique: bool
    reasoning: str
    error: str


def parse_puzzle_answer(text: str, puzzle: Puzzle) -> ParsedPuzzleAnswer:
    """Parse a reply strictly.

    The reply must be ``<think>...</think>`` then ``<answer>...</answer>`` (whitespace
    around them only) and the answer must list exactly N types. Types are matched to the
    candidates case-insensitively and written in the candidates' spelling; a type that is
    not a candidate is kept as given (it scores as wrong). ``unique`` is True when no
    type repeats.
    """
    m = _STRICT.match(text or "")
    if not m:
        if not text or not text.strip():
            why = "empty reply"
        elif "<answer>" not in text.lower():
            why = "no <answer>...</answer> in the reply"
        elif "<think>" not in text.lower():
            why = "no <think>...</think> before the answer"
        else:
            why = "text outside <think>...</think><answer>...</answer>"
        return ParsedPuzzleAnswer(None, False, False, "", why)
    reasoning = " ".join(m.group(1).split())
    parts = [p.strip().rstrip(".").strip() for p in m.group(2).split("|")]
    if len(parts) != puzzle.n or any(not p for p in parts):
        why = f"the answer lists {sum(bool(p) for p in parts)} types for {puzzle.n} cells"
        return ParsedPuzzleAnswer(None, False, False, reasoning, why)
    spelling = {c.casefold(): c for c in puzzle.candidates}
    labels = tuple(spelling.get(p.casefold(), p) for p in parts)
    unique = len({x.casefold() for x in labels}) == len(labels)
    strangers = [p for p in labels if p.casefold() not in spelling]
    error = f"not candidates: {strangers[:3]}" if strangers else ""
    return ParsedPuzzleAnswer(labels, True, unique, reasoning, error)
