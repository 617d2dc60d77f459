"""CellPuzzles: batch-level annotation puzzles (Cell-o1's task), built, read and scored.

A puzzle is a batch of N cells from one donor (and batch), each of a different cell
type, given as its top expressed genes, with a context sentence from donor metadata and
the N candidate types listed alphabetically. The answer names one candidate per cell,
in cell order, each candidate exactly once.

Files are JSON Lines, one puzzle per line (:func:`write_puzzles`)::

    {"id": "...", "cells": [{"id": "...", "genes": ["LYZ", ...]}, ...],
     "candidates": ["B cell", ...], "answer": ["T cell", ...], "context": "...",
     "candidate_ids": {"B cell": "CL:0000236", ...}, "tissue": "blood",
     "species": "human", "donor": "D1", "batch": null, "source": "pbmc.h5ad"}

:func:`read_puzzles` also reads the published Cell-o1 records (JSON, JSON Lines or
Parquet with ``user_msg`` / ``question`` and ``assistant_msg`` / ``answer`` fields, the
question text being ``Context: ...``, ``Cell 1: g1, g2, ...`` lines, then ``Match the
cells above to one of the following cell types:`` and one candidate per line).

Scoring (:func:`score_puzzles`) follows Cell-o1: cell-level accuracy (positions right,
case-insensitive), batch-level accuracy (all N right), format compliance and label
uniqueness; a malformed answer scores 0. Beside the exact match each cell gets the
Cell Ontology agreement (1 same term, 0.5 ancestor or descendant, 0 otherwise) of its
predicted and true types.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .._errors import InputError
from .._io import atomic_path
from ..metrics._metrics import score_pairs

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

#: The sentence that introduces the candidate list in Cell-o1's question text.
CANDIDATES_INTRO = "Match the cells above to one of the following cell types:"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PuzzleCell(_Model):
    """One cell of a puzzle: its id in the source data and its top expressed genes."""

    id: str
    genes: tuple[str, ...]


def _key(label: str) -> str:
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
        keys = [_key(c) for c in self.candidates]
        if len(set(keys)) != n or any(not k for k in keys):
            msg = "the candidate types must be distinct and non-empty"
            raise ValueError(msg)
        if self.answer is not None and sorted(_key(a) for a in self.answer) != sorted(keys):
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
        by_key = {_key(k): v for k, v in self.candidate_ids.items()}
        return by_key.get(_key(label))


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


# ---------------------------------------------------------------------------- building


def _check_build_args(n_min: int, n_max: int, top_genes: int, per_n: int) -> None:
    if n_min < 2:
        msg = f"--n-min must be at least 2, got {n_min}"
        raise InputError(msg)
    if n_max < n_min:
        msg = f"--n-max ({n_max}) must be at least --n-min ({n_min})"
        raise InputError(msg)
    if top_genes < 1 or per_n < 1:
        msg = f"--top-genes and --per-n must be at least 1, got {top_genes} and {per_n}"
        raise InputError(msg)


def _column(adata: ad.AnnData, col: str, option: str) -> pd.Series:
    if col not in adata.obs.columns:
        cols = ", ".join(map(repr, list(adata.obs.columns)[:12]))
        msg = f"{option} {col!r} is not an obs column; choose one of: {cols}"
        raise InputError(msg)
    return adata.obs[col]


def _id_column(adata: ad.AnnData, label_col: str, label_id_col: str | None) -> str | None:
    if label_id_col is not None:
        _column(adata, label_id_col, "--label-id-col")
        return label_id_col
    for guess in (f"{label_col}_ontology_term_id", f"{label_col}_ontology_id"):
        if guess in adata.obs.columns:
            return guess
    return None


def _candidate_ids(
    labels: Iterable[str], ids: Mapping[str, str] | None, tissue: str | None
) -> dict[str, str | None]:
    from ..ontology._graph import load_ontology
    from ..ontology._matcher import get_matcher

    onto = load_ontology()
    matcher = get_matcher()
    out: dict[str, str | None] = {}
    for label in labels:
        given = (ids or {}).get(label)
        tid = onto.resolve(given.replace("_", ":")) if given else None
        out[label] = tid if tid is not None else matcher.match(label, tissue=tissue).ontology_id
    return out


def _context(obs: pd.DataFrame, cols: Sequence[str], tissue: str | None) -> str:
    parts = []
    for col in cols:
        values = [str(v) for v in pd.unique(obs[col].dropna().astype(str)) if str(v).strip()]
        if values:
            parts.append(f"{col.replace('_', ' ')}: {', '.join(values[:5])}")
    if tissue and not any(c.lower() == "tissue" for c in cols):
        parts.append(f"tissue: {tissue}")
    if not parts:
        return "The cells come from one donor."
    return "The cells come from one donor (" + "; ".join(parts) + ")."


def _top_genes(X: Any, names: np.ndarray, row: int, k: int) -> tuple[str, ...]:
    values = X[row]
    values = values.toarray().ravel() if hasattr(values, "toarray") else np.asarray(values).ravel()
    nz = np.flatnonzero(values > 0)
    if nz.size == 0:
        return ()
    order = nz[np.lexsort((names[nz], -values[nz]))][:k]
    return tuple(str(g) for g in names[order])


def build_puzzles(
    adata: ad.AnnData,
    *,
    label_col: str,
    donor_col: str | None = None,
    batch_col: str | None = None,
    context_cols: Sequence[str] = (),
    label_id_col: str | None = None,
    n_min: int = 8,
    n_max: int = 15,
    top_genes: int = 50,
    per_n: int = 40,
    seed: int = 0,
    tissue: str | None = None,
    species: str = "human",
    layer: str | None = None,
    source: str = "",
) -> list[Puzzle]:
    """Draw CellPuzzles instances from a labelled AnnData.

    Cells are grouped by donor (and batch); rounds over the groups draw, per group, a
    size N among those still wanted (``per_n`` puzzles per N from ``n_min`` to
    ``n_max``, at most the group's number of types), N distinct types and one random
    cell of each type, until every N is filled or no group can give more.

    Parameters
    ----------
    adata
        Labelled data (counts, normalised or log-normalised; scaled ``X`` uses ``.raw``
        or ``layers["counts"]``, as in :func:`~llm4cell.annotate`).
    label_col
        ``obs`` column of the true cell types.
    donor_col, batch_col
        ``obs`` columns to group by (all cells form one group without them).
    context_cols
        ``obs`` columns written into the context sentence (sex, age, disease, ...).
    label_id_col
        ``obs`` column of the labels' Cell Ontology IDs (default:
        ``{label_col}_ontology_term_id`` when present; otherwise labels are mapped to CL
        by the label matcher).
    n_min, n_max
        Puzzle sizes.
    top_genes
        Genes per cell, by expression, descending (Cell-o1 uses 50).
    per_n
        Puzzles wanted per size N.
    seed
        Random seed (same seed, same puzzles).
    tissue, species
        Written into each puzzle (the knowledge engine uses them).
    layer
        Matrix to use instead of the detected one.
    source
        Recorded in each puzzle (file name).

    Returns
    -------
    The puzzles, in drawing order.

    Raises
    ------
    InputError
        For unknown columns, bad sizes, or when no group holds ``n_min`` distinct types.
    """
    from ..preprocess._preprocess import prepare_expression

    _check_build_args(n_min, n_max, top_genes, per_n)
    labels = _column(adata, label_col, "--label-col")
    group_cols = [c for c in (donor_col, batch_col) if c is not None]
    for col, opt in zip((donor_col, batch_col), ("--donor-col", "--batch-col"), strict=True):
        if col is not None:
            _column(adata, col, opt)
    for col in context_cols:
        _column(adata, col, "--context-cols")
    id_col = _id_column(adata, label_col, label_id_col)

    obs = adata.obs
    ok = labels.notna().to_numpy() & (labels.astype(str).str.strip() != "").to_numpy()
    for col in group_cols:
        ok &= obs[col].notna().to_numpy()
    positions = np.flatnonzero(ok)
    label_arr = labels.astype(str).to_numpy()
    if group_cols:
        keys = obs[group_cols].astype(str).agg(" / ".join, axis=1).to_numpy()
    else:
        keys = np.full(adata.n_obs, "all cells", dtype=object)
    groups: dict[str, dict[str, list[int]]] = {}
    for i in positions:
        groups.setdefault(str(keys[i]), {}).setdefault(str(label_arr[i]), []).append(int(i))
    most = max((len(t) for t in groups.values()), default=0)
    if most < n_min:
        where = "per donor" if group_cols else "in the data"
        msg = (f"--label-col {label_col!r} has at most {most} distinct types {where}, but "
               f"puzzles need {n_min} (--n-min): lower --n-min or use a finer label column")
        raise InputError(msg)

    expr = prepare_expression(adata, layer=layer, species=species)
    X = expr.adata.X
    X = X.tocsr() if hasattr(X, "tocsr") else np.asarray(X)
    names = np.asarray(expr.adata.var_names.astype(str), dtype=object)
    genes_of: dict[int, tuple[str, ...]] = {}

    def genes(row: int) -> tuple[str, ...]:
        if row not in genes_of:
            genes_of[row] = _top_genes(X, names, row, top_genes)
        return genes_of[row]

    id_map: dict[str, str] | None = None
    if id_col is not None:
        pairs = pd.DataFrame({"l": label_arr, "i": obs[id_col].astype(str).to_numpy()})
        id_map = dict(pairs.loc[positions].drop_duplicates("l").itertuples(index=False))
    all_labels = sorted({str(label_arr[i]) for i in positions})
    cl_ids = _candidate_ids(all_labels, id_map, tissue)

    rng = np.random.default_rng(seed)
    remaining = dict.fromkeys(range(n_min, n_max + 1), per_n)
    group_keys = sorted(groups)
    puzzles: list[Puzzle] = []
    progress = True
    while progress and any(remaining.values()):
        progress = False
        for g in group_keys:
            types = sorted(groups[g])
            sizes = [n for n in range(n_min, min(len(types), n_max) + 1) if remaining[n] > 0]
            if not sizes:
                continue
            n = int(rng.choice(sizes))
            chosen = [types[k] for k in rng.choice(len(types), size=n, replace=False)]
            rows = [int(rng.choice(groups[g][t])) for t in chosen]
            cells = tuple(PuzzleCell(id=str(adata.obs_names[r]), genes=genes(r)) for r in rows)
            group_obs = obs.iloc[rows]
            first = obs.iloc[rows[0]]
            puzzles.append(Puzzle(
                id=f"p{len(puzzles):05d}-n{n}",
                cells=cells,
                candidates=tuple(sorted(chosen, key=lambda s: (s.casefold(), s))),
                answer=tuple(chosen),
                context=_context(group_obs, context_cols, tissue),
                candidate_ids={t: cl_ids[t] for t in chosen},
                tissue=tissue, species=species,
                donor=str(first[donor_col]) if donor_col else None,
                batch=str(first[batch_col]) if batch_col else None,
                source=source,
            ))
            remaining[n] -= 1
            progress = True
    return puzzles


# ------------------------------------------------------------------------- reading


_CELL_LINE = re.compile(r"^\s*Cell\s+(\d+)\s*:\s*(.*)$", re.IGNORECASE)
_CONTEXT = re.compile(r"Context:\s*(.*?)\s*(?=^\s*Cell\s+1\s*:)", re.IGNORECASE | re.DOTALL | re.M)
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.IGNORECASE | re.DOTALL)
_INSTRUCTION_START = re.compile(r"\s+You are an expert\b.*$", re.DOTALL)


def parse_cello1_question(text: str) -> tuple[str, list[list[str]], list[str]]:
    """Split a Cell-o1 question into context, per-cell genes and candidates.

    Raises
    ------
    ValueError
        When the text has no ``Cell 1:`` lines or no candidate list.
    """
    ctx = _CONTEXT.search(text)
    context = " ".join(ctx.group(1).split()) if ctx else ""
    head, sep, tail = text.partition(CANDIDATES_INTRO)
    if not sep:
        msg = f"no line {CANDIDATES_INTRO!r} before the candidate list"
        raise ValueError(msg)
    cells: list[list[str]] = []
    for line in head.splitlines():
        m = _CELL_LINE.match(line)
        if m:
            if int(m.group(1)) != len(cells) + 1:
                msg = f"cell lines out of order at 'Cell {m.group(1)}'"
                raise ValueError(msg)
            cells.append([g.strip() for g in m.group(2).split(",") if g.strip()])
    if not cells:
        msg = "no 'Cell 1: gene, gene, ...' lines"
        raise ValueError(msg)
    tail = _INSTRUCTION_START.sub("", tail)
    candidates = []
    for line in tail.strip().splitlines():
        if not line.strip():
            break
        candidates.append(line.strip())
    return context, cells, candidates


def _answer_labels(text: str) -> list[str]:
    m = _ANSWER_TAG.search(text)
    body = m.group(1) if m else text
    return [part.strip() for part in body.strip().split("|")]


def _from_cello1(rec: Mapping[str, Any], index: int, source: str) -> Puzzle:
    question = next((rec[k] for k in ("user_msg", "question", "prompt") if rec.get(k)), None)
    if not isinstance(question, str):
        msg = "no 'user_msg', 'question' or 'prompt' text"
        raise ValueError(msg)
    context, cells, candidates = parse_cello1_question(question)
    gold = next((rec[k] for k in ("assistant_msg", "answer", "ground_truth") if rec.get(k)),
                None)
    answer = _answer_labels(gold) if isinstance(gold, str) else None
    if answer is not None and len(answer) != len(cells):
        msg = f"the answer lists {len(answer)} types for {len(cells)} cells"
        raise ValueError(msg)
    tissue = rec.get("tissue") if isinstance(rec.get("tissue"), str) else None
    pid = str(rec.get("id", rec.get("group", f"cello1-{index:05d}")))
    if "group" in rec and "id" not in rec:
        pid = f"cello1-{index:05d}"
    return Puzzle(
        id=pid,
        cells=tuple(PuzzleCell(id=f"cell{i + 1}", genes=tuple(g)) for i, g in enumerate(cells)),
        candidates=tuple(candidates), answer=tuple(answer) if answer else None,
        context=context, candidate_ids=_candidate_ids(candidates, None, tissue),
        tissue=tissue, source=source,
    )


#: What each reader expects, for the message when it is given another kind of file.
_EXPECTED = {
    "puzzles": ("a puzzles file (llm4cell JSON Lines, or Cell-o1 JSON/JSONL/Parquet); "
                "to draw puzzles from labelled data use `llm4cell puzzles build`"),
    "answers": "the answers JSONL written by `llm4cell puzzles solve`",
}


def _records(path: Path, what: str = "puzzles") -> list[tuple[int, Any]]:
    """(line number, JSON value) for a JSON Lines, JSON array or Parquet file."""
    expected = _EXPECTED.get(what, "a JSON Lines file")
    if path.suffix.lower() == ".parquet":
        try:
            df = pd.read_parquet(path)
        except ImportError:
            msg = (f"reading {str(path)!r} needs a Parquet engine: pip install pyarrow, or "
                   "convert the file to JSON Lines")
            raise InputError(msg) from None
        except Exception as e:  # the engines raise their own types for a bad file
            msg = (f"{str(path)!r} is not a readable Parquet file ({type(e).__name__}); "
                   f"give {expected}")
            raise InputError(msg) from None
        return [(i + 1, rec) for i, rec in enumerate(df.to_dict(orient="records"))]
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte order mark is skipped
    except UnicodeDecodeError:
        kind = "an .h5ad file" if path.suffix.lower() == ".h5ad" else "not UTF-8 text"
        msg = f"{str(path)!r} is {kind}, not {what}; give {expected}"
        raise InputError(msg) from None
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            msg = f"{str(path)!r} is not valid JSON ({e.msg} at line {e.lineno}); fix the file"
            raise InputError(msg) from None
        return list(enumerate(data, start=1))
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append((lineno, json.loads(line)))
        except json.JSONDecodeError as e:
            msg = f"{str(path)!r} line {lineno} is not valid JSON ({e.msg}); fix the line"
            raise InputError(msg) from None
    return out


def _open_records(path: str | os.PathLike[str], what: str) -> tuple[Path, list[tuple[int, Any]]]:
    p = Path(path)
    if p.is_dir():
        msg = f"{str(p)!r} is a folder; give {_EXPECTED.get(what, 'a file')}"
        raise InputError(msg)
    if not p.is_file():
        msg = f"cannot read {str(p)!r}: no such file; check the path"
        raise InputError(msg)
    recs = _records(p, what)
    if not recs:
        msg = f"{str(p)!r} holds no {what}; give a non-empty file"
        raise InputError(msg)
    return p, recs


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(x) for x in err.get("loc", ()))
    text = str(err.get("msg", "")).removeprefix("Value error, ")
    return f"{where}: {text}" if where else text


def read_puzzles(path: str | os.PathLike[str]) -> list[Puzzle]:
    """Read puzzles: llm4cell JSON Lines or Cell-o1 records (see the module docstring).

    Raises
    ------
    InputError
        For missing or empty files, invalid JSON, malformed puzzles (e.g. candidates and
        cells differing in number) and repeated puzzle ids; the message names the line.
    """
    p, recs = _open_records(path, "puzzles")
    puzzles: list[Puzzle] = []
    seen: set[str] = set()
    for lineno, rec in recs:
        if not isinstance(rec, dict):
            msg = f"{p.name} record {lineno} is not a JSON object; one puzzle per line"
            raise InputError(msg)
        try:
            if isinstance(rec.get("cells"), list):
                rec = {**rec, "cells": [
                    c if isinstance(c, dict) else {"id": f"cell{i + 1}", "genes": c}
                    for i, c in enumerate(rec["cells"])
                ]}
                puzzle = Puzzle.model_validate(rec)
            elif "cells" in rec:
                puzzle = Puzzle.model_validate(rec)  # fails: cells must be a list
            else:
                puzzle = _from_cello1(rec, len(puzzles), p.name)
        except ValidationError as e:
            msg = f"{p.name} record {lineno}: {_first_error(e)}; fix or drop that puzzle"
            raise InputError(msg) from None
        except ValueError as e:
            msg = f"{p.name} record {lineno}: {e}; fix or drop that puzzle"
            raise InputError(msg) from None
        if puzzle.id in seen:
            msg = (f"{p.name} record {lineno}: puzzle id {puzzle.id!r} is repeated; ids must "
                   "be unique")
            raise InputError(msg)
        seen.add(puzzle.id)
        puzzles.append(puzzle)
    return puzzles


def _write_jsonl(models: Iterable[BaseModel], path: str | os.PathLike[str]) -> Path:
    # a temporary file renamed into place; one left by a killed writer goes on the next write
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for m in models:
            fh.write(m.model_dump_json(exclude_none=False) + "\n")
    return Path(path)


def write_puzzles(puzzles: Iterable[Puzzle], path: str | os.PathLike[str]) -> Path:
    """Write puzzles as JSON Lines, atomically."""
    return _write_jsonl(puzzles, path)


def write_answers(answers: Iterable[PuzzleAnswer], path: str | os.PathLike[str]) -> Path:
    """Write puzzle answers as JSON Lines, atomically."""
    return _write_jsonl(answers, path)


def read_answers(path: str | os.PathLike[str]) -> list[PuzzleAnswer]:
    """Read the answers written by :func:`write_answers` / ``llm4cell puzzles solve``.

    Raises
    ------
    InputError
        For missing or empty files and records that are not puzzle answers.
    """
    p, recs = _open_records(path, "answers")
    out = []
    for lineno, rec in recs:
        try:
            out.append(PuzzleAnswer.model_validate(rec))
        except ValidationError as e:
            msg = (f"{p.name} record {lineno} is not a puzzle answer ({_first_error(e)}); "
                   "give the output of `llm4cell puzzles solve`")
            raise InputError(msg) from None
    return out


# -------------------------------------------------------------------------- solving


def solve_puzzles(
    puzzles: Sequence[Puzzle],
    backend: str = "knowledge",
    *,
    backend_options: Mapping[str, object] | Any | None = None,
    assignment: bool = True,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
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
        one-to-one).
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
        For unknown specs or LLM backends that cannot answer.
    """
    from ._solvers import get_solver

    solver = get_solver(backend, backend_options, assignment=assignment, seed=seed)
    return solver.solve(puzzles, progress=progress)


# -------------------------------------------------------------------------- scoring


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
    by_key = {_key(k): v for k, v in answer.candidate_ids.items()}
    if _key(label) in by_key:
        return by_key[_key(label)]
    from ..ontology._matcher import get_matcher

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
            ok = guess is not None and _key(guess) == _key(truth)
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
