"""A SQLite cache of LLM responses, so that a repeated run makes no request.

Entries are keyed on a SHA-256 of the provider, endpoint, model, messages, response
schema and sampling parameters (:func:`cache_key`); the value is the response text with
its token counts. Every response is written (and committed) as soon as it arrives, so a
run that stops half-way keeps what was answered and a re-run resumes from there. The file
is opened and written through :mod:`llm4cell._sqlite` (busy timeout, WAL, layout version).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .._errors import BackendError
from .._sqlite import SQLiteFileError, open_db, transaction

__all__ = ["CachedResponse", "ResponseCache", "cache_key"]

#: Bump when the meaning of a cached entry changes (prompt wording does so by itself).
CACHE_FORMAT = 1

#: Layout version of the file (``PRAGMA user_version``); bump when the table changes.
SCHEMA_VERSION = 1

_SCHEMA = ("""
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    finish_reason TEXT,
    created REAL NOT NULL
)
""",)


def cache_key(payload: dict[str, object]) -> str:
    """SHA-256 of the canonical JSON of ``payload`` (plus the cache format)."""
    blob = json.dumps({"format": CACHE_FORMAT, **payload}, sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedResponse:
    """A stored response."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None


class ResponseCache:
    """A thread-safe SQLite response cache.

    Parameters
    ----------
    path
        The database file (created with its folder when missing).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._db = open_db(self.path, schema=_SCHEMA, version=SCHEMA_VERSION, threads=True)
        except SQLiteFileError as e:
            msg = (f"cannot open the LLM response cache {str(self.path)!r} ({e.reason}); give "
                   "another path with --cache or set LLM4CELL_CACHE_DIR, or pass --no-cache")
            raise BackendError(msg) from None

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r}, {len(self)} entries)"

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def get(self, key: str) -> CachedResponse | None:
        """The stored response for ``key``, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT text, prompt_tokens, completion_tokens, finish_reason FROM responses "
                "WHERE key = ?", (key,),
            ).fetchone()
        return CachedResponse(*row) if row else None

    def put(self, key: str, provider: str, model: str, response: CachedResponse) -> None:
        """Store (or replace) the response for ``key`` and commit at once."""
        with self._lock, transaction(self._db):
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, provider, model, response.text, response.prompt_tokens,
                 response.completion_tokens, response.finish_reason, time.time()),
            )

    def clear(self) -> int:
        """Delete every entry; returns how many there were."""
        with self._lock, transaction(self._db):
            n = int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
            self._db.execute("DELETE FROM responses")
        return n

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()
