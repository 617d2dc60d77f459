"""The SQLite files llm4cell keeps (the LLM response cache, the bench's result store).

One way to open them and to write to them:

* :func:`open_db` creates the folder, refuses a file that is not SQLite before SQLite
  reads it (:func:`check_file`), sets a busy timeout (another process writing waits
  instead of failing) and write-ahead logging (readers and one writer at once), creates
  the tables, and checks the layout version kept in ``PRAGMA user_version``: a file of a
  newer llm4cell is refused, a file without a version (written before versions were
  kept, same layout) is stamped with the current one;
* :func:`transaction` holds the write lock from the first statement and commits the block
  whole, or nothing when it raises.

Callers turn :class:`SQLiteFileError` into their own one-line error that names the file,
what it is for and the fix.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["BUSY_TIMEOUT_S", "SQLiteFileError", "check_file", "open_db", "transaction"]

#: Seconds a connection waits for another one's write lock before it fails.
BUSY_TIMEOUT_S = 30.0

_MAGIC = b"SQLite format 3\x00"


class SQLiteFileError(Exception):
    """A database file that cannot be used; ``reason`` says why in a few words."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{str(path)!r}: {reason}")
        self.path = path
        self.reason = reason


def check_file(path: Path) -> None:
    """Refuse a non-empty file that does not start as an SQLite database does (a missing
    or empty file is fine: SQLite creates the database there)."""
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return
        with path.open("rb") as fh:
            head = fh.read(len(_MAGIC))
    except OSError as e:
        raise SQLiteFileError(path, str(e)) from None
    if head != _MAGIC:
        raise SQLiteFileError(path, "not an SQLite file")


def _check_version(db: sqlite3.Connection, path: Path, version: int) -> None:
    found = int(db.execute("PRAGMA user_version").fetchone()[0])
    if found > version:
        reason = (f"written by a newer llm4cell (layout version {found}; this one reads "
                  f"version {version})")
        raise SQLiteFileError(path, reason)
    if found < version:
        # 0: written before versions were kept; the layout of version 1 is that one.
        db.execute(f"PRAGMA user_version = {int(version)}")


def open_db(path: str | Path, *, schema: Sequence[str], version: int,
            threads: bool = False) -> sqlite3.Connection:
    """Open (or create) an SQLite file with its tables, ready for :func:`transaction`.

    Parameters
    ----------
    path
        The database file; its folder is created when missing.
    schema
        ``CREATE TABLE IF NOT EXISTS`` statements, one per item.
    version
        The layout version this code writes and reads (``PRAGMA user_version``).
    threads
        Whether the connection is shared between threads (the caller then serialises
        its use with a lock).

    Returns
    -------
    A connection in autocommit mode: each statement outside :func:`transaction` is
    committed at once.

    Raises
    ------
    SQLiteFileError
        When the folder cannot be made, the file is not SQLite, SQLite cannot open or
        write it, or it was written by a newer llm4cell.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SQLiteFileError(path, str(e)) from None
    check_file(path)
    try:
        db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                             check_same_thread=not threads)
    except sqlite3.Error as e:
        raise SQLiteFileError(path, str(e)) from None
    try:
        db.execute("PRAGMA journal_mode=WAL")
        with transaction(db):
            for statement in schema:
                db.execute(statement)
            _check_version(db, path, version)
    except sqlite3.Error as e:
        db.close()
        raise SQLiteFileError(path, str(e)) from None
    except SQLiteFileError:
        db.close()
        raise
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run the block as one transaction: the write lock is taken at once (waiting up to
    :data:`BUSY_TIMEOUT_S` for another writer), everything is committed at the end, and
    nothing is when the block raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.rollback()
        raise
    db.commit()
