"""Fault injection: the real CLI against a scripted OpenAI-compatible server that
misbehaves on purpose (``fault_server.py``: rate limits, server errors, lost connections,
cut bodies, timeouts, web pages, unusable and mis-keyed answers, an echoed key).

Every fault is one a llama.cpp server cannot be made to produce on demand, hence the
stand-in. For each, the test asserts the exact label of every id, the exit code, ONE
stderr line on failure, which files exist (nothing partial), and that a distinctive fake
key appears in no output file, no cache row, no log record and no stderr line.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from conftest import PROGRAMS, make_planted_counts
from fault_server import WRONG, FaultServer
from typer.testing import CliRunner

import llm4cell
from llm4cell.cli import app

KEY = "sk-FAKEKEY-llm4cell-probe-123456"
#: Not shaped like a key: only cutting out the exact secret keeps it out of outputs.
PLAIN_KEY = "FAKEPLAIN-llm4cell-probe-654321"

#: id -> (markers, the label a good server's answer maps to). Ids are opaque strings.
CLUSTERS = {
    "c0": ("MS4A1,CD79A,CD79B", "B cell"),
    "7_0": ("CD3E,CD3D,CD2", "T cell"),
    "B cells": ("NKG7,GNLY,KLRD1", "natural killer cell"),
    "12": ("CD14,LYZ,S100A8", "monocyte"),
    "x": ("ALB,APOA1,TTR", "hepatocyte"),
}
RIGHT = {i: label for i, (_, label) in CLUSTERS.items()}
UNKNOWN = dict.fromkeys(CLUSTERS, "unknown")


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as s:
        yield s


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
         caplog: pytest.LogCaptureFixture) -> Path:
    """A folder with the marker table; the fake key in OPENAI_API_KEY; logs captured."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    pd.DataFrame({"id": list(CLUSTERS), "markers": [m for m, _ in CLUSTERS.values()],
                  "tissue": "blood"}).to_csv(tmp_path / "markers.csv", index=False)
    return tmp_path


def markers(work: Path, url: str | None, *extra: str, backend: str = "openai:m?backoff=0"
            ) -> tuple[int, str, str, float]:
    """``llm4cell markers`` in-process: exit code, stdout, stderr, seconds."""
    args = ["markers", str(work / "markers.csv"), "-o", str(work / "out" / "pred.csv"),
            "--backend", backend, "--cache", str(work / "cache" / "llm.sqlite"),
            "--retries", "2", "--timeout", "5", "--batch-size", "5", "--concurrency", "1"]
    if url is not None:
        args += ["--base-url", url]
    start = time.perf_counter()
    r = CliRunner().invoke(app, [*args, *extra], catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr, time.perf_counter() - start


def labels(work: Path) -> dict[str, str]:
    table = pd.read_csv(work / "out" / "pred.csv", dtype=str, keep_default_na=False)
    return dict(zip(table["id"], table["label"], strict=True))


def one_error_line(stderr: str) -> str:
    lines = [x for x in stderr.splitlines() if x.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


def no_key_anywhere(root: Path, *texts: str, keys: tuple[str, ...] = (KEY, PLAIN_KEY),
                    caplog: pytest.LogCaptureFixture | None = None) -> None:
    """No key in any file under ``root`` (outputs, cache database and its WAL), in the
    given texts (stdout, stderr), in any cache row or in any log record."""
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for k in keys:
                assert k.encode() not in data, f"{k} in {path}"
    for db in root.rglob("*.sqlite"):
        with sqlite3.connect(db) as con:
            rows = json.dumps(con.execute("SELECT * FROM responses").fetchall())
        assert not any(k in rows for k in keys), db
    logged = caplog.text if caplog is not None else ""
    for text in (*texts, logged):
        assert not any(k in text for k in keys)


def output_files(work: Path) -> list[str]:
    out = work / "out"
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


def cache_rows(work: Path) -> int:
    db = work / "cache" / "llm.sqlite"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as con:
        return int(con.execute("SELECT COUNT(*) FROM responses").fetchone()[0])


# --------------------------------------------------------------- faults that are retried


@pytest.mark.parametrize("faults", [
    ("429", "429"), ("500", "503"), ("drop",), ("partial",), ("drop", "partial"),
])
def test_transient_faults_are_retried_and_labels_stay(work, server, caplog, faults):
    server.script(*faults, "ok", retry_after=0)
    code, out, err, _ = markers(work, server.url)
    assert code == 0, err
    assert labels(work) == RIGHT
    assert f"{len(faults)} retries" in err
    assert output_files(work) == ["pred.csv"]
    assert len(server.seen) == len(faults) + 1
    no_key_anywhere(work, out, err, caplog=caplog)


def test_retry_after_is_honoured(work, server, caplog):
    server.script("429", "ok", retry_after=0.4)
    code, out, err, seconds = markers(work, server.url)
    assert code == 0, err
    assert labels(work) == RIGHT
    assert seconds >= 0.4  # backoff is 0 here: only Retry-After can make it wait
    no_key_anywhere(work, out, err, caplog=caplog)


def test_slow_answer_times_out_and_is_retried(work, server, caplog):
    server.script("slow", "ok", slow_seconds=1.5)
    code, out, err, _ = markers(work, server.url, "--timeout", "0.4")
    assert code == 0, err
    assert labels(work) == RIGHT
    assert "1 retries" in err
    no_key_anywhere(work, out, err, caplog=caplog)


@pytest.mark.parametrize(("mode", "says"), [
    ("500", "HTTP 500 from http://127.0.0.1:"),
    ("drop", "lost the connection to http://127.0.0.1:"),
    ("slow", "timed out after 0.4 s"),
])
def test_persistent_faults_fail_in_one_line_and_write_nothing(work, server, caplog, mode,
                                                              says):
    server.script(mode, slow_seconds=1.0)
    code, out, err, _ = markers(work, server.url, "--timeout", "0.4", "--retries", "1")
    assert code == 2
    line = one_error_line(err)
    assert says in line
    assert "gave up after 2 attempts" in line
    assert output_files(work) == []
    assert cache_rows(work) == 0
    no_key_anywhere(work, out, err, caplog=caplog)


# ------------------------------------------------------- replies that are not the API


@pytest.mark.parametrize("mode", ["html", "html_json", "not_chat"])
def test_a_web_page_in_reply_to_a_request_is_one_line(work, server, caplog, mode):
    """Issue 12: a 200 that is not JSON ended in an 80-line JSONDecodeError traceback."""
    server.script(mode)
    code, out, err, _ = markers(work, server.url)
    assert code == 2
    line = one_error_line(err)
    assert server.url in line
    assert "not OpenAI-compatible JSON" in line
    assert output_files(work) == []
    assert len(server.seen) == 1  # not retried: a web page does not become an API
    no_key_anywhere(work, out, err, caplog=caplog)


def test_a_web_page_at_the_models_endpoint_fails_fast_in_one_line(work, server, caplog):
    server.script("ok", models="html")
    code, out, err, _ = markers(work, server.url)
    assert code == 2
    line = one_error_line(err)
    assert server.url in line
    assert "/models" in line
    assert server.seen == []  # failed before any request
    assert output_files(work) == []
    no_key_anywhere(work, out, err, caplog=caplog)


# ---------------------------------------------------------- answers keyed in odd ways


@pytest.mark.parametrize(("mode", "reasked"), [
    ("ok", []), ("reordered", []), ("integer", []), ("extra", []),
    ("missing", [["1"]]), ("duplicated", [["1"]]), ("spaces", []),
])
def test_answers_land_on_their_own_ids(work, server, caplog, mode, reasked):
    """Issue 12: answer keys were stripped, so ``{"1": right, "1 ": wrong}`` gave the
    wrong answer to id 1, silently. Every label must stay on its own id."""
    server.script(mode, "ok")
    code, out, err, _ = markers(work, server.url)
    assert code == 0, err
    assert labels(work) == RIGHT
    asked = server.asked()
    assert asked[0] == ["1", "2", "3", "4", "5"]  # the wire ids, whatever the user's ids
    assert asked[1:] == reasked
    assert cache_rows(work) == 1 + len(reasked)
    no_key_anywhere(work, out, err, caplog=caplog)


def test_whitespace_variants_are_never_taken_for_an_id(work, server, caplog):
    """A server that answers only under ``"1 "`` answers no asked id: every cluster is
    asked alone, repaired once, then ``unknown``; nothing is cached."""
    server.script("spaces_only")
    code, out, err, _ = markers(work, server.url)
    assert code == 0, err
    assert labels(work) == UNKNOWN
    table = pd.read_csv(work / "out" / "pred.csv")
    assert table["evidence"].str.contains("'1' is missing from the answer").all()
    assert WRONG not in set(table["label"])
    assert len(server.seen) == 1 + 5 * 2  # the batch, then each alone with one repair
    assert cache_rows(work) == 0
    no_key_anywhere(work, out, err, caplog=caplog)


# ------------------------------------------------------------------ unusable answers


@pytest.mark.parametrize(("mode", "why"), [
    ("prose", "no JSON object"),
    ("invalid", "confidence"),
    ("truncated", "cut off at the token limit"),
])
def test_unusable_answers_are_unknown_then_asked_again_once_fixed(work, server, caplog,
                                                                 mode, why):
    """Issue 12: invalid answers were cached like good ones, so after the server was
    fixed the same command still said unknown without asking."""
    server.script(mode)
    code, out, err, _ = markers(work, server.url)
    assert code == 0, err
    assert labels(work) == UNKNOWN
    assert pd.read_csv(work / "out" / "pred.csv")["evidence"].str.contains(why).all()
    assert cache_rows(work) == 0
    sent = len(server.seen)
    server.script("ok")
    code, out2, err2, _ = markers(work, server.url)
    assert code == 0, err2
    assert labels(work) == RIGHT
    assert len(server.seen) == sent + 1  # asked again, one batch
    code, out3, err3, _ = markers(work, server.url)
    assert labels(work) == RIGHT
    assert len(server.seen) == sent + 1  # and now from the cache
    assert "1 cache hits" in err3
    no_key_anywhere(work, out, err, out2, err2, out3, err3, caplog=caplog)


def test_unusable_rows_cached_before_the_fix_are_asked_again(tmp_path, server):
    """Caches written before issue 12 hold unusable answers: they are not served."""
    from llm4cell.llm._clients import ChatRequest, OpenAIClient
    from llm4cell.llm._runner import RequestRunner

    opts = llm4cell.LLMOptions(base_url=server.url, cache_path=tmp_path / "c.sqlite")
    request = ChatRequest(messages=(("user", "hi"),), max_tokens=16)
    server.script("prose")
    old = RequestRunner(OpenAIClient("m", opts), opts)
    assert "B cells" in old.complete(request).text  # no judge: cached, as before the fix
    server.script("ok")
    new = RequestRunner(OpenAIClient("m", opts), opts)
    done = new.complete(request, accept=lambda c: c.text.startswith("{"))
    assert done.text.startswith("{") and not done.cached
    assert len(server.seen) == 2
    again = RequestRunner(OpenAIClient("m", opts), opts)
    assert again.complete(request, accept=lambda c: c.text.startswith("{")).cached


def test_a_batch_answer_partly_valid_is_kept_and_the_rest_asked_alone(work, server, caplog):
    server.script("missing", "prose", "ok")
    code, out, err, _ = markers(work, server.url, "--batch-size", "2")
    assert code == 0, err
    got = labels(work)
    # batch 1 (c0, 7_0): 7_0 missing, asked alone: prose, repaired: ok
    assert got == RIGHT
    no_key_anywhere(work, out, err, caplog=caplog)


@pytest.mark.parametrize("backend", ["hybrid:openai:m?backoff=0",
                                     "consensus:knowledge,openai:m?backoff=0"])
def test_hybrid_and_consensus_send_wire_ids_and_keep_labels_on_ids(work, server, caplog,
                                                                   backend):
    """The hybrid prompt and the consensus discussion round go through the same wire ids;
    a wrong answer under a whitespace variant lands nowhere."""
    server.script("spaces")
    code, out, err, _ = markers(work, server.url, backend=backend)
    assert code == 0, err
    got = labels(work)
    asked = server.asked()
    if backend.startswith("hybrid"):
        assert got == RIGHT
    else:
        assert len(asked) > 1  # knowledge and the model disagreed somewhere: discussed
    assert WRONG not in got.values()
    assert asked[0] == ["1", "2", "3", "4", "5"]
    assert all(a == ["1"] for a in asked[1:])  # discussion: one cluster at a time
    no_key_anywhere(work, out, err, caplog=caplog)


# ------------------------------------------------------------------------ the key


@pytest.mark.parametrize("key", [KEY, PLAIN_KEY])
def test_an_echoed_key_reaches_no_output_cache_or_log(work, server, caplog, monkeypatch, key):
    """Issue 12: a server that repeats the Authorization header in its answer got the key
    into the response cache (and, when not shaped like sk-..., into the evidence)."""
    monkeypatch.setenv("OPENAI_API_KEY", key)
    server.script("echo")
    code, out, err, _ = markers(work, server.url)
    assert code == 0, err
    assert labels(work) == RIGHT
    assert server.auth[0] == f"Bearer {key}"  # the key was sent, and echoed
    assert cache_rows(work) == 1
    assert "reasoning: you sent ***" in pd.read_csv(work / "out" / "pred.csv")["evidence"][0]
    no_key_anywhere(work, out, err, caplog=caplog)


@pytest.mark.parametrize("key", [KEY, PLAIN_KEY])
def test_an_echoed_key_in_errors_is_cut_out(work, server, caplog, monkeypatch, key):
    monkeypatch.setenv("OPENAI_API_KEY", key)
    server.script("400echo")
    code, out, err, _ = markers(work, server.url)
    assert code == 2
    assert "HTTP 400" in one_error_line(err)
    server.script("ok", models="echo")  # the key as the only model served
    code, out2, err2, _ = markers(work, server.url)
    assert code == 2
    assert "is not served" in one_error_line(err2)
    assert output_files(work) == []
    no_key_anywhere(work, out, err, out2, err2, caplog=caplog)


@pytest.mark.parametrize("how", ["flag", "spec", "env", "query", "spec-query"])
def test_a_key_in_a_url_is_refused_without_repeating_it(work, server, caplog, monkeypatch,
                                                        how):
    """Issue 12: ``openai:m?base_url=http://user:KEY@host/v1`` was written verbatim to
    uns['llm4cell'], the report and stderr. Now refused, in one line, before any work."""
    host = server.url.removeprefix("http://")
    with_user = f"http://user:{KEY}@{host}"
    with_query = f"{server.url}?api_key={KEY}"
    url: str | None = None
    backend = "openai:m"
    if how == "flag":
        url = with_user
    elif how == "spec":
        backend = f"openai:m?base_url={with_user}"
    elif how == "env":
        monkeypatch.setenv("OPENAI_BASE_URL", with_user)
    elif how == "query":
        url = with_query
    else:
        backend = f"openai:m?base_url={with_query.replace('?', '%3F').replace('=', '%3D')}"
    code, out, err, _ = markers(work, url, backend=backend)
    assert code == 2
    line = one_error_line(err)
    assert "api_key_env" in line
    assert server.seen == []
    assert output_files(work) == []
    no_key_anywhere(work, out, err, caplog=caplog)


def test_a_url_in_any_options_path_is_checked(monkeypatch):
    """The check sits in LLMOptions and parse_spec, which bench and puzzles pass too."""
    secret = f"http://u:{KEY}@127.0.0.1:9/v1"
    for attempt in (
        lambda: llm4cell.get_annotator("openai:m", options={"base_url": secret}, check=False),
        lambda: llm4cell.get_annotator(f"hybrid:openai:m?base_url={secret}", check=False),
        lambda: llm4cell.get_annotator(f"consensus:knowledge,openai:m?base_url={secret}",
                                       check=False),
        lambda: llm4cell.get_annotator(f"openai:m?name=mine at {secret}", check=False),
    ):
        with pytest.raises(llm4cell.BackendError, match="api_key_env") as e:
            attempt()
        assert KEY not in str(e.value)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"https://api.example/v1?token={KEY}")
    with pytest.raises(llm4cell.BackendError, match="ANTHROPIC_BASE_URL") as e:
        llm4cell.get_annotator("anthropic:claude-x", options={"api_key": "k" * 12}, check=False)
    assert KEY not in str(e.value)


def test_non_secret_query_parameters_stay_out_of_outputs(server):
    server.script("ok")
    opts = llm4cell.LLMOptions(base_url=f"{server.url}?api-version=2024-06-01", backoff=0)
    table = llm4cell.annotate_markers(
        pd.DataFrame({"id": ["a"], "markers": ["MS4A1,CD79A"]}), backend="openai:m",
        backend_options=opts)
    assert table["label"].tolist() == ["B cell"]
    prov = json.dumps(table.attrs["provenance"], default=str)
    assert "api-version" not in prov
    assert server.url in prov


# ------------------------------------------------------------ annotate, opaque group ids


def test_groupby_ids_that_differ_only_in_spaces_keep_their_own_labels(tmp_path, server,
                                                                      caplog, monkeypatch):
    """Issue 12: with groups "A", "A " and " A" and a server answering each id exactly
    as asked, cluster "A" got the answer meant for "A ". Here five groups whose names
    collide after trimming or lower-casing (and one that looks like a wire id) each keep
    the label of their own markers, per cell, in the h5ad and the CSV."""
    import anndata as ad

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    names = {"B": "A", "T": "A ", "NK": " A", "Mono": "a", "Hep": "1"}
    expected = {"A": "B cell", "A ": "T cell", " A": "natural killer cell", "a": "monocyte",
                "1": "hepatocyte"}
    assert set(names) == set(PROGRAMS)
    adata = make_planted_counts(n_per_type=12)
    adata.obs["grp"] = adata.obs["truth"].map(names).astype(str)
    data = tmp_path / "in.h5ad"
    adata.write_h5ad(data)
    server.script("ok")
    out = tmp_path / "out" / "annotated.h5ad"
    r = CliRunner().invoke(app, [
        "annotate", str(data), "-o", str(out), "--groupby", "grp",
        "--backend", "openai:m?backoff=0", "--base-url", server.url,
        "--cache", str(tmp_path / "cache" / "llm.sqlite"), "--batch-size", "5"],
        catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    result = ad.read_h5ad(out)
    per_cell = result.obs["grp"].astype(str).map(expected)
    assert (result.obs["llm4cell"].astype(str) == per_cell).all()
    table = pd.read_csv(out.with_suffix(".csv"), dtype=str, keep_default_na=False)
    assert dict(zip(table["group"], table["label"], strict=True)) == expected
    assert server.asked() == [["1", "2", "3", "4", "5"]]
    no_key_anywhere(tmp_path, r.stdout, r.stderr, caplog=caplog)
