"""The SQLite files (LLM response cache, bench result store): opening, versions, writes."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

import llm4cell
from llm4cell._sqlite import SQLiteFileError, open_db, transaction
from llm4cell.bench._store import ResultStore, check_store_file
from llm4cell.llm._cache import SCHEMA_VERSION, CachedResponse, ResponseCache

SCHEMA = ("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INTEGER)",)


def _open_cache(path):
    return ResponseCache(path)


def _open_store(path):
    return ResultStore(path)


OPENERS = {
    "cache": (_open_cache, llm4cell.BackendError, "cannot open the LLM response cache"),
    "store": (_open_store, llm4cell.InputError, "is not a bench store"),
}


@pytest.mark.parametrize("kind", OPENERS)
def test_a_file_that_is_not_sqlite_is_one_clear_line(tmp_path, kind):
    opener, error, says = OPENERS[kind]
    path = tmp_path / "x.sqlite"
    path.write_text("id,markers\nc1,CD3E\n")
    with pytest.raises(error, match=says) as caught:
        opener(path)
    assert "(not an SQLite file)" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert path.read_text() == "id,markers\nc1,CD3E\n"  # left as it was


@pytest.mark.parametrize("kind", OPENERS)
def test_a_file_of_a_newer_llm4cell_is_refused(tmp_path, kind):
    opener, error, says = OPENERS[kind]
    path = tmp_path / "x.sqlite"
    opener(path).close()
    with sqlite3.connect(path) as con:
        con.execute("PRAGMA user_version = 99")
    with pytest.raises(error, match=rf"{says}.*written by a newer llm4cell \(layout version 99"):
        opener(path)


def test_a_cache_written_before_versions_is_read_and_stamped(tmp_path):
    """A cache file of llm4cell 0.1.0 (same table, no user_version) keeps its answers."""
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE responses (key TEXT PRIMARY KEY, provider TEXT NOT NULL, "
                    "model TEXT NOT NULL, text TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, "
                    "completion_tokens INTEGER NOT NULL, finish_reason TEXT, "
                    "created REAL NOT NULL)")
        con.execute("INSERT INTO responses VALUES ('k', 'openai', 'm', 'T cell', 3, 4, 'stop', 0)")
    cache = ResponseCache(path)
    assert cache.get("k") == CachedResponse("T cell", 3, 4, "stop")
    cache.close()
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_failed_transaction_writes_nothing(tmp_path):
    db = open_db(tmp_path / "t.sqlite", schema=SCHEMA, version=1)
    with pytest.raises(RuntimeError), transaction(db):
        db.execute("INSERT INTO t VALUES ('a', 1)")
        raise RuntimeError
    with transaction(db):
        db.execute("INSERT INTO t VALUES ('b', 2)")
    assert db.execute("SELECT k FROM t").fetchall() == [("b",)]


def test_a_second_writer_waits_for_the_first(tmp_path):
    """Two processes on one cache (two connections here): the second write waits for the
    first transaction's lock instead of failing with 'database is locked'."""
    path = tmp_path / "t.sqlite"
    first = open_db(path, schema=SCHEMA, version=1, threads=True)
    other = open_db(path, schema=SCHEMA, version=1)
    held = threading.Event()

    def hold() -> None:
        with transaction(first):
            first.execute("INSERT INTO t VALUES ('first', 1)")
            held.set()
            time.sleep(0.5)

    t = threading.Thread(target=hold)
    t.start()
    held.wait()
    start = time.monotonic()
    with transaction(other):
        other.execute("INSERT INTO t VALUES ('second', 2)")
    waited = time.monotonic() - start
    t.join()
    assert waited >= 0.3
    assert sorted(other.execute("SELECT k FROM t").fetchall()) == [("first",), ("second",)]


def test_a_folder_that_cannot_be_made_is_a_file_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SQLiteFileError, match=r"Not a directory|exists"):
        open_db(blocker / "sub" / "t.sqlite", schema=SCHEMA, version=1)


def test_the_store_check_before_work_gives_the_store_error(tmp_path):
    path = tmp_path / "results.sqlite"
    check_store_file(path)  # missing: fine
    path.write_bytes(b"")
    check_store_file(path)  # empty: fine, SQLite makes a database there
    path.write_text("not a database")
    with pytest.raises(llm4cell.InputError, match=r"is not a bench store \(not an SQLite file\); "
                       "move it away"):
        check_store_file(path)
