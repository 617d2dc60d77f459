"""The bench's result store, and the arena's check that no output is one of its inputs.

The store holds one SQLite row per scored item per run, and run records. Rows are keyed
by (run key, item id); a chunk of rows is committed in one transaction, so an interrupted
bench keeps every finished chunk and a re-run skips what is stored. The file is opened and
written through :mod:`llm4cell._sqlite` (busy timeout, WAL, layout version).

:func:`refuse_overwriting_inputs` serves ``llm4cell bench`` and ``llm4cell puzzles``; its
message names which input an output would overwrite (a dataset, the config, a cache).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._errors import InputError
from .._sqlite import SQLiteFileError, check_file, open_db, transaction

__all__ = ["ResultStore", "check_store_file", "now", "refuse_overwriting_inputs"]

#: Layout version of the file (``PRAGMA user_version``); bump when a table changes.
SCHEMA_VERSION = 1

_COLUMNS: dict[str, str] = {
    "run_key": "TEXT", "unit_id": "TEXT", "item_id": "TEXT", "annotator": "TEXT",
    "backend": "TEXT", "dataset": "TEXT", "kind": "TEXT", "prediction": "TEXT",
    "pred_id": "TEXT", "truth": "TEXT", "truth_id": "TEXT", "confidence": "REAL",
    "weight": "REAL", "agreement": "REAL", "full_match": "REAL", "partial_match": "REAL",
    "hierarchical_f1": "REAL", "lca_similarity": "REAL", "n": "INTEGER",
    "cell_accuracy": "REAL", "batch_correct": "REAL", "format_ok": "REAL",
    "unique_labels": "REAL", "requests": "INTEGER", "cache_hits": "INTEGER",
    "prompt_tokens": "INTEGER", "completion_tokens": "INTEGER", "cost_usd": "REAL",
    "latency_s": "REAL", "evidence": "TEXT", "created": "TEXT",
}

_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS items ({', '.join(f'{c} {t}' for c, t in _COLUMNS.items())}, "
    "PRIMARY KEY (run_key, item_id))",
    "CREATE TABLE IF NOT EXISTS runs (run_key TEXT PRIMARY KEY, annotator TEXT, dataset TEXT, "
    "config TEXT, provenance TEXT, n_units INTEGER, complete INTEGER, updated TEXT)",
)


class ResultStore:
    """SQLite store of item rows (one per item per run) and run records."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.db = open_db(path, schema=_SCHEMA, version=SCHEMA_VERSION)
        except SQLiteFileError as e:
            raise _not_a_store(e) from None

    def done_items(self, run_key: str) -> set[str]:
        """Ids of the items stored for a run."""
        cur = self.db.execute("SELECT item_id FROM items WHERE run_key = ?", (run_key,))
        return {r[0] for r in cur}

    def add(self, rows: list[dict[str, Any]]) -> None:
        """Store item rows (one transaction; NaN and numpy scalars become SQL values)."""
        cols = list(_COLUMNS)
        sql = (f"INSERT OR REPLACE INTO items ({', '.join(cols)}) VALUES "
               f"({', '.join('?' * len(cols))})")
        values = [tuple(_sql(r.get(c)) for c in cols) for r in rows]
        with transaction(self.db):
            self.db.executemany(sql, values)

    def record_run(self, run_key: str, annotator: str, dataset: str, config: dict[str, Any],
                   provenance: dict[str, Any] | None, n_units: int, complete: bool) -> None:
        """Insert or update a run's record (configuration, provenance, completeness)."""
        with transaction(self.db):
            self.db.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_key, annotator, dataset, json.dumps(config, default=str),
                 json.dumps(provenance, default=str) if provenance is not None else None,
                 n_units, int(complete), now()),
            )

    def items(self, run_keys: Sequence[str]) -> pd.DataFrame:
        """The item rows of these runs (column ``unique_labels`` read as ``unique``)."""
        marks = ", ".join("?" * len(run_keys))
        df = pd.read_sql_query(f"SELECT * FROM items WHERE run_key IN ({marks})", self.db,
                               params=list(run_keys))
        return df.rename(columns={"unique_labels": "unique"})

    def provenance(self, run_keys: Sequence[str]) -> dict[str, Any]:
        """Provenance of these runs, keyed ``annotator / dataset``."""
        marks = ", ".join("?" * len(run_keys))
        cur = self.db.execute(f"SELECT annotator, dataset, provenance FROM runs WHERE run_key "
                              f"IN ({marks})", list(run_keys))
        return {f"{a} / {d}": json.loads(p) if p else None for a, d, p in cur}

    def close(self) -> None:
        """Close the database."""
        self.db.close()


def _not_a_store(e: SQLiteFileError) -> InputError:
    return InputError(f"{str(e.path)!r} is not a bench store ({e.reason}); move it away or "
                      "choose another output folder")


def check_store_file(path: Path) -> None:
    """Refuse, before any work, a store path holding a file that is not SQLite.

    Raises
    ------
    InputError
        The one-line error :class:`ResultStore` gives for that file.
    """
    try:
        check_file(path)
    except SQLiteFileError as e:
        raise _not_a_store(e) from None


def _sql(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if np.isnan(value) else float(value)
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def now() -> str:
    """The current UTC time, ISO format to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------ output checks


def _same(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def refuse_overwriting_inputs(outputs: Iterable[str | os.PathLike[str]],
                              inputs: Iterable[tuple[str, str | os.PathLike[str] | None]]
                              ) -> None:
    """Refuse any output that is one of the inputs (resolved paths, symlinks, hard links).

    Parameters
    ----------
    outputs
        Every path the command may write.
    inputs
        ``(what, path)`` of every file the command reads; ``what`` names it in the error.

    Raises
    ------
    InputError
        Naming the first output that is an input.
    """
    sources = [(what, Path(src)) for what, src in inputs if src is not None]
    for out in map(Path, outputs):
        for what, src in sources:
            if _same(out, src):
                msg = (f"the output {str(out)!r} is the input file {str(src)!r} ({what}); "
                       "llm4cell never overwrites its input: choose another output path")
                raise InputError(msg)
