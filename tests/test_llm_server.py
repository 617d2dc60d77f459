"""LLM plumbing against a real llama.cpp OpenAI-compatible server on 127.0.0.1.

The model (SmolLM2-135M-Instruct) knows no biology, so these tests assert plumbing only:
structured answers keyed by id, Cell Ontology mapping, the cache, concurrency, retries,
resume after the server stops mid-run, timeouts and failing fast.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
from conftest import cli_env
from llama_server import MODEL_ALIAS, LlamaServer, free_port, require_llm_stack

import llm4cell
from llm4cell.llm import LLMOptions
from llm4cell.ontology import load_ontology

#: Every test here runs the real llama.cpp stack (``make test-fast`` leaves them out).
pytestmark = pytest.mark.llm

SPEC = f"openai:{MODEL_ALIAS}"
MARKERS = pd.DataFrame({
    "id": ["0", "7_0", "B cells", "12"],
    "markers": ["CD3E,CD3D,IL7R,CCR7,LEF1", "MS4A1,CD79A,CD79B,BANK1", "LYZ,CD14,S100A8,FCN1",
                "NKG7,GNLY,KLRD1,PRF1"],
    "tissue": ["blood"] * 4,
})


def opts(server: LlamaServer, **kw: object) -> LLMOptions:
    base = {"base_url": server.base_url, "max_tokens": 96, "batch_size": 4,
            "concurrency": 1, "retries": 1, "backoff": 0.1, "timeout": 60}
    base.update(kw)
    return LLMOptions(**base)


def usage(table: pd.DataFrame) -> dict:
    return table.attrs["provenance"]["usage"]


def assert_valid(table: pd.DataFrame, ids: list[str]) -> None:
    """One row per id, in order; every label a CL term (with its ID) or unknown."""
    assert list(table["id"]) == ids
    onto = load_ontology()
    for _, r in table.iterrows():
        if r["label"] == "unknown":
            assert r["ontology_id"] == ""
            assert r["evidence"]
        else:
            assert r["ontology_id"] in onto
            assert onto.label(r["ontology_id"]) == r["label"]
            assert 0.0 <= r["confidence"] <= 1.0


def test_structured_answers_keyed_by_id_and_mapped(llm_server):
    table = llm4cell.annotate_markers(MARKERS, backend=SPEC, backend_options=opts(llm_server))
    assert_valid(table, list(MARKERS["id"]))
    assert (table["backend"] == SPEC).all()
    prov = table.attrs["provenance"]
    assert prov["json_mode"] == "json_object"  # learned: this server rejects json_schema
    assert prov["model"] == MODEL_ALIAS
    assert usage(table)["requests"] >= 1
    assert usage(table)["prompt_tokens"] > 0
    assert usage(table)["completion_tokens"] > 0
    assert usage(table)["cost_usd"] is None  # a local server has no price


def test_repeat_run_makes_zero_requests(llm_server):
    o = opts(llm_server)
    first = llm4cell.annotate_markers(MARKERS, backend=SPEC, backend_options=o)
    served = llm_server.completions_served()
    second = llm4cell.annotate_markers(MARKERS, backend=SPEC, backend_options=o)
    assert llm_server.completions_served() == served  # the server saw nothing new
    assert usage(second)["requests"] == 0
    assert usage(second)["cache_hits"] == usage(first)["requests"]
    assert usage(second)["cached_prompt_tokens"] == usage(first)["prompt_tokens"]
    cols = ["id", "label", "ontology_id", "confidence", "evidence"]
    pd.testing.assert_frame_equal(first[cols], second[cols])
    # --no-cache asks again
    third = llm4cell.annotate_markers(MARKERS, backend=SPEC,
                                      backend_options=o.model_copy(update={"cache": False}))
    assert usage(third)["requests"] >= 1
    assert llm_server.completions_served() > served


def test_concurrency_keeps_answers_on_their_ids(llm_server):
    o = opts(llm_server, batch_size=1, concurrency=4)
    table = llm4cell.annotate_markers(MARKERS, backend=SPEC, backend_options=o)
    assert_valid(table, list(MARKERS["id"]))
    assert 2 <= usage(table)["peak_in_flight"] <= 4
    # the same answers as one at a time (temperature 0, fixed seed, cached per request)
    serial = llm4cell.annotate_markers(MARKERS, backend=SPEC,
                                       backend_options=o.model_copy(update={"concurrency": 1}))
    assert usage(serial)["requests"] == 0
    assert list(serial["label"]) == list(table["label"])


def test_chain_of_thought_sends_two_stages(llm_server):
    o = opts(llm_server, strategy="cot", max_tokens=64, batch_size=4)
    table = llm4cell.annotate_markers(MARKERS.head(2), backend=SPEC, backend_options=o)
    assert_valid(table, ["0", "7_0"])
    prov = table.attrs["provenance"]
    assert prov["strategy"] == "cot"
    # reasoning + summary for the batch, then two per id asked again alone, plus repairs
    answers = prov["answers"]
    expected = 2 + 2 * answers["reasked_alone"] + answers["repairs"]
    assert usage(table)["requests"] == expected
    assert all("(cot)" in e for e in table["evidence"])


def test_timeout_is_retried_then_fails_with_one_clear_error(llm_server):
    o = opts(llm_server, timeout=0.05, retries=1, backoff=0.05, batch_size=1, max_tokens=64)
    with pytest.raises(llm4cell.BackendError) as e:
        llm4cell.annotate_markers(MARKERS.head(1), backend=SPEC, backend_options=o)
    text = str(e.value)
    assert "timed out after 0.05 s" in text
    assert "gave up after 2 attempts" in text
    assert "re-run the same command to resume" in text


def test_markers_cli_with_openai_backend_and_cache(llm_server, tmp_path):
    path = tmp_path / "markers.csv"
    MARKERS.to_csv(path, index=False)
    out = tmp_path / "pred.csv"
    cmd = [sys.executable, "-m", "llm4cell", "markers", str(path), "-o", str(out),
           "--backend", SPEC, "--base-url", llm_server.base_url, "--max-tokens", "96",
           "--batch-size", "4"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=cli_env(), timeout=600)
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(out, dtype={"id": str}, keep_default_na=False)
    assert_valid(table, list(MARKERS["id"]))
    assert "LLM:" in r.stderr
    r2 = subprocess.run(cmd, capture_output=True, text=True, env=cli_env(), timeout=600)
    assert r2.returncode == 0, r2.stderr
    assert "LLM: 0 requests" in r2.stderr


def test_annotate_cli_h5ad_with_openai_backend(llm_server, pbmc, tmp_path):
    import anndata as ad

    data = tmp_path / "pbmc.h5ad"
    pbmc.write_h5ad(data)
    out = tmp_path / "out.h5ad"
    cmd = [sys.executable, "-m", "llm4cell", "annotate", str(data), "-o", str(out),
           "--groupby", "bulk_labels", "--tissue", "blood", "--backend", SPEC,
           "--base-url", llm_server.base_url, "--max-tokens", "96", "--batch-size", "5"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=cli_env(), timeout=900)
    assert r.returncode == 0, r.stderr
    result = ad.read_h5ad(out)
    assert result.obs["llm4cell"].notna().all()
    rec = llm4cell.get_provenance(result)
    assert rec["backend"] == SPEC
    assert rec["annotator"]["model"] == MODEL_ALIAS
    assert int(rec["annotator"]["usage"]["requests"]) >= 2  # 10 groups, 5 per request
    groups = rec["groups"]
    assert len(groups) == pbmc.obs["bulk_labels"].nunique()
    onto = load_ontology()
    for _, g in groups.iterrows():
        assert g["label"] == "unknown" or onto.label(g["ontology_id"]) == g["label"]
    r2 = subprocess.run([*cmd[:6], str(tmp_path / "out2.h5ad"), *cmd[7:]],
                        capture_output=True, text=True, env=cli_env(), timeout=900)
    assert r2.returncode == 0, r2.stderr
    assert "LLM: 0 requests" in r2.stderr


def test_hybrid_asks_only_where_knowledge_is_unsure(llm_server):
    o = opts(llm_server, llm_when="uncertain", uncertain_below=0.0)
    never = llm4cell.annotate_markers(MARKERS, backend=f"hybrid:{SPEC}", backend_options=o)
    known = llm4cell.annotate_markers(MARKERS, backend="knowledge")
    prov = never.attrs["provenance"]
    assert prov["n_asked"] == 0
    assert prov["llm"]["usage"]["requests"] == 0
    assert list(never["label"]) == list(known["label"])
    assert not never["llm_asked"].any()
    assert never["evidence"].str.startswith("LLM not asked").all()

    always = llm4cell.annotate_markers(
        MARKERS, backend=f"hybrid:{SPEC}",
        backend_options=o.model_copy(update={"llm_when": "always"}))
    assert_valid(always, list(MARKERS["id"]))
    assert always["llm_asked"].all()
    assert always.attrs["provenance"]["n_asked"] == len(MARKERS)
    assert always.attrs["provenance"]["llm"]["usage"]["requests"] >= 1
    # the knowledge candidates stay listed beside the LLM's choice
    cands = [c["ontology_id"] for c in json.loads(always.loc[1, "candidates"])]
    known_top = json.loads(known.loc[1, "candidates"])[0]["ontology_id"]
    assert known_top in cands


def test_consensus_reports_proportion_entropy_and_discusses(llm_server):
    o = opts(llm_server)
    table = llm4cell.annotate_markers(MARKERS, backend=f"consensus:knowledge,{SPEC}",
                                      backend_options=o)
    assert_valid(table, list(MARKERS["id"]))
    assert table["consensus_proportion"].between(0, 1).all()
    assert (table["consensus_entropy"] >= 0).all()
    assert (table["n_members"] == 2).all()
    prov = table.attrs["provenance"]
    assert set(prov["members"]) == {"knowledge", SPEC}
    disputed = int(table["discussed"].sum())
    assert prov["n_discussed"] == disputed
    llm_usage = prov["members"][SPEC]["usage"]
    if disputed:  # the discussion round asks each disputed cluster once more
        assert llm_usage["requests"] + llm_usage["cache_hits"] >= 1 + disputed
    for _, r in table[table["discussed"]].iterrows():
        assert "before discussion" in r["evidence"]


def test_server_down_fails_fast_with_one_line(tmp_path):
    path = tmp_path / "markers.csv"
    MARKERS.to_csv(path, index=False)
    out = tmp_path / "pred.csv"
    url = f"http://127.0.0.1:{free_port()}/v1"
    start = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "llm4cell", "markers", str(path), "-o", str(out),
         "--backend", SPEC, "--base-url", url],
        capture_output=True, text=True, env=cli_env(), timeout=120)
    assert r.returncode == 2
    assert time.monotonic() - start < 30
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, r.stderr
    assert "cannot reach the OpenAI-compatible server" in lines[0]
    assert not out.exists()


def test_missing_openai_key_fails_before_any_work(pbmc, tmp_path):
    data = tmp_path / "pbmc.h5ad"
    pbmc.write_h5ad(data)
    start = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "llm4cell", "annotate", str(data), "-o",
         str(tmp_path / "o.h5ad"), "--backend", "openai:gpt-4o-mini"],
        capture_output=True, text=True, env=cli_env(), timeout=120)
    assert r.returncode == 2
    assert "set OPENAI_API_KEY" in r.stderr
    assert time.monotonic() - start < 30
    assert not (tmp_path / "o.h5ad").exists()


def test_rejected_key_fails_fast_and_keys_never_leak(tmp_path):
    model = require_llm_stack()
    secret = "sk-llm4cell-test-secret-7f3a9c"
    server = LlamaServer(model, tmp_path, api_key=secret).start()
    try:
        path = tmp_path / "markers.csv"
        MARKERS.head(2).to_csv(path, index=False)
        out = tmp_path / "pred.csv"
        cmd = [sys.executable, "-m", "llm4cell", "markers", str(path), "-o", str(out),
               "--backend", SPEC, "--base-url", server.base_url, "--max-tokens", "64"]
        wrong = "sk-wrong-key-0123456789"
        env = cli_env() | {"OPENAI_API_KEY": wrong}
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 2
        assert "rejected the API key" in r.stderr
        assert wrong not in r.stderr + r.stdout
        env = cli_env() | {"OPENAI_API_KEY": secret}
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        assert r.returncode == 0, r.stderr
        written = out.read_text() + r.stderr + r.stdout
        cache = (tmp_path / "llm_cache" / "llm_responses.sqlite").read_bytes()
        assert secret not in written
        assert secret.encode() not in cache
    finally:
        server.stop()


def test_server_stopped_mid_run_keeps_answers_and_resumes(tmp_path):
    model = require_llm_stack()
    server = LlamaServer(model, tmp_path).start()
    try:
        o = opts(server, batch_size=1, concurrency=1, retries=1, backoff=0.1)
        annotator = llm4cell.get_annotator(SPEC, options=o)
        queries = llm4cell.annotation._markers.read_marker_table(MARKERS)[1]
        stopped = threading.Event()

        def stop_after_two(done: int, total: int) -> None:
            if done == 2 and not stopped.is_set():
                stopped.set()
                server.stop()

        annotator.progress = stop_after_two
        with pytest.raises(llm4cell.BackendError, match="re-run the same command to resume"):
            annotator.annotate(queries)
        finished = annotator.runner.stats.answered
        assert finished >= 2
        assert len(annotator.runner.cache) == finished  # every finished answer is kept

        server.start()
        served = server.completions_served("200")
        again = llm4cell.get_annotator(SPEC, options=o)
        answers = again.annotate(queries)
        stats = again.runner.stats
        assert stats.cache_hits == finished  # nothing finished is asked again
        assert server.completions_served("200") - served == stats.answered
        assert [a.id for a in answers] == [q.id for q in queries]
    finally:
        server.stop()


def test_retries_carry_a_run_over_a_server_restart(tmp_path):
    model = require_llm_stack()
    server = LlamaServer(model, tmp_path).start()
    try:
        o = opts(server, batch_size=4, retries=8, backoff=0.5)
        annotator = llm4cell.get_annotator(SPEC, options=o)  # checked while the server is up
        server.stop()
        result: dict[str, object] = {}

        def run() -> None:
            try:
                result["answers"] = annotator.annotate(
                    llm4cell.annotation._markers.read_marker_table(MARKERS)[1])
            except Exception as e:  # reported below
                result["error"] = e

        t = threading.Thread(target=run)
        t.start()
        time.sleep(1.0)
        server.start()
        t.join(timeout=300)
        assert "error" not in result, result.get("error")
        assert len(result["answers"]) == len(MARKERS)  # type: ignore[arg-type]
        assert annotator.runner.stats.retries >= 1
    finally:
        server.stop()


def test_llamacpp_in_process_backend(tmp_path):
    model = require_llm_stack()
    spec = f"llamacpp:{model}"
    o = LLMOptions(max_tokens=96, batch_size=4, concurrency=4)
    table = llm4cell.annotate_markers(MARKERS, backend=spec, backend_options=o)
    assert_valid(table, list(MARKERS["id"]))
    prov = table.attrs["provenance"]
    assert prov["provider"] == "llamacpp"
    assert usage(table)["peak_in_flight"] == 1  # one generation at a time in-process
    assert usage(table)["requests"] >= 1
    again = llm4cell.annotate_markers(MARKERS, backend=spec, backend_options=o)
    assert usage(again)["requests"] == 0
    assert list(again["label"]) == list(table["label"])


def test_llamacpp_missing_file_fails_fast(tmp_path):
    path = tmp_path / "markers.csv"
    MARKERS.to_csv(path, index=False)
    r = subprocess.run(
        [sys.executable, "-m", "llm4cell", "markers", str(path), "-o", str(tmp_path / "p.csv"),
         "--backend", f"llamacpp:{tmp_path / 'nope.gguf'}"],
        capture_output=True, text=True, env=cli_env(), timeout=120)
    assert r.returncode == 2
    assert "model file" in r.stderr and "not found" in r.stderr
    assert not (tmp_path / "p.csv").exists()
