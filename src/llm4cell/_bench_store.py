"""The arena's files: the bench's result store and the checks and writes of output sets.

The store holds one SQLite row per scored item per run, and run records. Rows are keyed
by (run key, item id); a chunk of rows is committed in one transaction, so an interrupted
bench keeps every finished chunk and a re-run skips what is stored.

The output helpers serve ``llm4cell bench`` and ``llm4cell puzzles``: every output path is
checked before any work (it can be written and it is none of the inputs), and a set of
outputs is written all or nothing (:class:`OutputSet`).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import sqlite3
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd

from ._errors import InputError

__all__ = [
    "OutputSet",
    "ResultStore",
    "check_writable",
    "now",
    "refuse_overwriting_inputs",
]


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


class ResultStore:
    """SQLite store of item rows (one per item per run) and run records."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            cols = ", ".join(f"{c} {t}" for c, t in _COLUMNS.items())
            self.db.execute(f"CREATE TABLE IF NOT EXISTS items ({cols}, "
                            "PRIMARY KEY (run_key, item_id))")
            self.db.execute("CREATE TABLE IF NOT EXISTS runs (run_key TEXT PRIMARY KEY, "
                            "annotator TEXT, dataset TEXT, config TEXT, provenance TEXT, "
                            "n_units INTEGER, complete INTEGER, updated TEXT)")
            self.db.commit()
        except sqlite3.DatabaseError as e:
            self.db.close()
            msg = (f"{str(path)!r} is not a bench store ({e}); move it away or choose "
                   "another output folder")
            raise InputError(msg) from None

    def done_items(self, run_key: str) -> set[str]:
        """Ids of the items stored for a run."""
        cur = self.db.execute("SELECT item_id FROM items WHERE run_key = ?", (run_key,))
        return {r[0] for r in cur}

    def add(self, rows: list[dict[str, Any]]) -> None:
        """Store item rows (one transaction; NaN and numpy scalars become SQL values)."""
        cols = list(_COLUMNS)
        sql = (f"INSERT OR REPLACE INTO items ({', '.join(cols)}) VALUES "
               f"({', '.join('?' * len(cols))})")
        with self.db:
            self.db.executemany(sql, [tuple(_sql(r.get(c)) for c in cols) for r in rows])

    def record_run(self, run_key: str, annotator: str, dataset: str, config: dict[str, Any],
                   provenance: dict[str, Any] | None, n_units: int, complete: bool) -> None:
        """Insert or update a run's record (configuration, provenance, completeness)."""
        with self.db:
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


def _existing_ancestor(path: Path) -> Path:
    """The nearest ancestor of ``path`` (or ``path`` itself) that exists."""
    p = path
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    return p


def check_writable(path: str | os.PathLike[str], *, folder: bool = False) -> Path:
    """Check, before any work, that ``path`` (a file, or a folder) can be written.

    Nothing is left behind: a folder that does not exist yet is not created; the check
    creates and removes one temporary file in the nearest existing folder.

    Raises
    ------
    InputError
        When ``path`` or one of its parents is of the wrong kind (a file where a folder is
        needed or the reverse) or the nearest existing folder cannot be written.
    """
    p = Path(path).expanduser().absolute()
    if folder and p.exists() and not p.is_dir():
        msg = f"the output {str(path)!r} is a file; give a folder"
        raise InputError(msg)
    if not folder and p.is_dir():
        msg = f"the output {str(path)!r} is a folder; give a file path"
        raise InputError(msg)
    where = p if folder and p.is_dir() else _existing_ancestor(p.parent)
    if not where.is_dir():
        msg = (f"cannot write {str(path)!r}: {str(where)!r} is a file, not a folder; "
               "choose another output path")
        raise InputError(msg)
    try:
        fd, probe = tempfile.mkstemp(prefix=".llm4cell-write-check.", dir=where)
    except OSError as e:
        reason = e.strerror or type(e).__name__
        msg = (f"cannot write {str(path)!r}: the folder {str(where)!r} is not writable "
               f"({reason}); choose another output path")
        raise InputError(msg) from None
    os.close(fd)
    os.unlink(probe)
    return Path(path)


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
        Naming the first output that is an input, or two outputs that are one file.
    """
    outs = [Path(o) for o in outputs]
    for i, out in enumerate(outs):
        for what, src in inputs:
            if src is not None and _same(out, Path(src)):
                msg = (f"the output {str(out)!r} is the input file {str(src)!r} ({what}); "
                       "llm4cell never overwrites its input: choose another output path")
                raise InputError(msg)
        for other in outs[:i]:
            if _same(out, other):
                msg = f"two outputs share the path {str(out)!r}; give them different paths"
                raise InputError(msg)


# ------------------------------------------------------------------- output sets

#: Temporary files of an output set are ``.NAME.PID.RANDOM.tmp`` beside the target (a
#: writer using :func:`llm4cell._io.atomic_path` on one adds ``.RANDOM.tmp`` and a dot).
_TMP_REST = re.compile(r"^(?P<pid>\d+)\.\w+\.tmp(\.\w+\.tmp)?$")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove the temporary files that a killed writer of ``target`` left beside it.

    Only files named like this module's temporaries for ``target`` whose process is gone
    are removed, so a concurrent writer's files are left alone.
    """
    removed = []
    folder = target.parent
    if not folder.is_dir():
        return removed
    head = f"{target.name}."
    for f in folder.iterdir():
        name = f.name
        if not (name.startswith(f".{head}") or name.startswith(f"..{head}")):
            continue
        m = _TMP_REST.match(name.lstrip(".")[len(head):])
        if m and not _pid_alive(int(m["pid"])):
            try:
                f.unlink()
                removed.append(f)
            except OSError:
                pass
    return removed


class OutputSet:
    """Write several output files all or nothing.

    ``path(target)`` gives a temporary file beside ``target`` to write; on leaving the
    ``with`` block without an error every temporary file is renamed onto its target, and
    on an error every one is removed, so the old outputs (if any) stay as they were.
    """

    def __init__(self) -> None:
        self._tmp: dict[Path, Path] = {}

    def path(self, target: str | os.PathLike[str]) -> Path:
        """A new temporary path for ``target`` (created empty)."""
        t = Path(target)
        t.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(t)
        fd, tmp = tempfile.mkstemp(prefix=f".{t.name}.{os.getpid()}.", suffix=".tmp",
                                   dir=t.parent)
        os.close(fd)
        self._tmp[t] = Path(tmp)
        return Path(tmp)

    def drop(self, target: str | os.PathLike[str]) -> None:
        """Do not write ``target`` after all (its temporary file is removed)."""
        tmp = self._tmp.pop(Path(target), None)
        if tmp is not None:
            tmp.unlink(missing_ok=True)

    def commit(self) -> list[Path]:
        """Rename every temporary file onto its target; return the targets."""
        umask = os.umask(0)
        os.umask(umask)
        for tmp in self._tmp.values():
            os.chmod(tmp, 0o666 & ~umask)
        done = []
        for target, tmp in self._tmp.items():
            os.replace(tmp, target)
            done.append(target)
        self._tmp.clear()
        return done

    def abort(self) -> None:
        """Remove every temporary file."""
        for tmp in self._tmp.values():
            tmp.unlink(missing_ok=True)
        self._tmp.clear()

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()
