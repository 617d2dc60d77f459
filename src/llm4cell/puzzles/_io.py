"""Reading and writing CellPuzzles: llm4cell JSON Lines and Cell-o1's published records.

Files are JSON Lines, one puzzle per line (:func:`write_puzzles`)::

    {"id": "...", "cells": [{"id": "...", "genes": ["LYZ", ...]}, ...],
     "candidates": ["B cell", ...], "answer": ["T cell", ...], "context": "...",
     "candidate_ids": {"B cell": "CL:0000236", ...}, "tissue": "blood",
     "species": "human", "donor": "D1", "batch": null, "source": "pbmc.h5ad"}

:func:`read_puzzles` also reads the published Cell-o1 records (JSON, JSON Lines or
Parquet with ``user_msg`` / ``question`` and ``assistant_msg`` / ``answer`` fields, the
question text being ``Context: ...``, ``Cell 1: g1, g2, ...`` lines, then ``Match the
cells above to one of the following cell types:`` and one candidate per line).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ValidationError

from .._errors import InputError
from .._io import atomic_path
from ._build import candidate_ids
from ._records import CANDIDATES_INTRO, Puzzle, PuzzleAnswer, PuzzleCell

__all__ = ["parse_cello1_question", "read_answers", "read_puzzles", "write_answers",
           "write_puzzles"]


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
        context=context, candidate_ids=candidate_ids(candidates, None, tissue),
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

