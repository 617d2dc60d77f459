"""LLM machinery without a model: answer parsing, specs, consensus on the ontology, the
response cache, prices, redaction, and the failures a llama.cpp server cannot produce
(rate limits, duplicated ids, Anthropic's API), each against a stand-in said so below."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path
from typing import ClassVar

import pytest

import llm4cell
from llm4cell._records import MarkerQuery
from llm4cell.annotators import (
    BACKENDS,
    TASKS,
    ConsensusAnnotator,
    HybridAnnotator,
    KnowledgeAnnotator,
    LLMAnnotator,
    VocabBaseline,
    build_backend,
    consensus_vote,
)
from llm4cell.llm import LLMOptions, ResponseCache, answer_schema, parse_answers
from llm4cell.llm._cache import CachedResponse, cache_key
from llm4cell.llm._options import parse_spec, redact, safe_url
from llm4cell.llm._runner import load_prices, price_for
from llm4cell.puzzles._solvers import (
    ConsensusSolver,
    KnowledgeSolver,
    LLMSolver,
    MostFrequentSolver,
    PuzzleSolver,
    RandomSolver,
)

ITEM = {"cell_type": "B cell", "confidence": 0.8, "reasoning": "MS4A1 and CD79A",
        "alternatives": ["plasma cell"]}

# ------------------------------------------------------------------------------ parsing


def test_parse_valid_answer_keyed_by_id():
    text = json.dumps({"answers": {"7_0": ITEM, "0": {**ITEM, "cell_type": "T cell"}}})
    got = parse_answers(text, ["0", "7_0"])
    assert not got.problems
    assert got.answers["0"].cell_type == "T cell"
    assert got.answers["7_0"].cell_type == "B cell"


def test_parse_tolerates_fences_and_prose():
    text = "Sure! Here it is:\n```json\n" + json.dumps({"answers": {"a": ITEM}}) + "\n```\nBye"
    assert parse_answers(text, ["a"]).answers["a"].confidence == 0.8


def test_duplicate_ids_are_detected_not_overwritten():
    text = '{"answers": {"1": ' + json.dumps(ITEM) + ', "1": ' + json.dumps(ITEM) + \
        ', "2": ' + json.dumps(ITEM) + "}}"
    got = parse_answers(text, ["1", "2"])
    assert "more than once" in got.problems["1"]
    assert set(got.answers) == {"2"}


def test_missing_and_extra_ids():
    text = json.dumps({"answers": {"1": ITEM, "9": ITEM}})
    got = parse_answers(text, ["1", "2"])
    assert set(got.answers) == {"1"}
    assert "missing" in got.problems["2"]
    assert got.extra_ids == ["9"]


def test_items_without_ids_are_never_assigned_by_position():
    text = json.dumps([ITEM, ITEM])
    got = parse_answers(text, ["a", "b"])
    assert not got.answers
    assert set(got.problems) == {"a", "b"}
    # a list carrying ids is fine, in any order
    text = json.dumps([{**ITEM, "id": "b"}, {**ITEM, "id": "a", "cell_type": "T cell"}])
    got = parse_answers(text, ["a", "b"])
    assert got.answers["a"].cell_type == "T cell"


def test_single_bare_item_is_accepted_for_one_id_only():
    assert parse_answers(json.dumps(ITEM), ["x"]).answers["x"].cell_type == "B cell"
    assert not parse_answers(json.dumps(ITEM), ["x", "y"]).answers


@pytest.mark.parametrize(("confidence", "ok"), [(1.5, False), (-0.1, False), ("85%", True),
                                                ("0.4", True), ("high", False), (85, False)])
def test_confidence_must_lie_in_unit_interval(confidence, ok):
    got = parse_answers(json.dumps({"answers": {"a": {**ITEM, "confidence": confidence}}}), ["a"])
    assert ("a" in got.answers) is ok
    if not ok:
        assert "confidence" in got.problems["a"]


def test_cut_off_json_is_a_problem_with_a_reason():
    text = json.dumps({"answers": {"a": ITEM}})[:-7]
    got = parse_answers(text, ["a"])
    assert "not valid JSON" in got.problems["a"]
    assert "no JSON object" in parse_answers("I think B cells.", ["a"]).problems["a"]


def test_schema_requires_exactly_the_asked_ids():
    schema = answer_schema(["0", "7_0"])
    inner = schema["properties"]["answers"]
    assert inner["required"] == ["0", "7_0"]
    assert inner["additionalProperties"] is False
    assert "maxLength" not in json.dumps(schema)
    assert "maxLength" in json.dumps(answer_schema(["0"], lengths=True))


# ------------------------------------------------------------------------------- specs


def test_parse_spec_kinds_and_options():
    p = parse_spec("openai:llama3.1:8b?base_url=http://h:11434/v1&strategy=cot")
    assert (p.kind, p.target) == ("openai", "llama3.1:8b")
    assert p.options == {"base_url": "http://h:11434/v1", "strategy": "cot"}
    assert parse_spec("hybrid:anthropic:claude-x").members == ("anthropic:claude-x",)
    c = parse_spec("consensus:knowledge,openai:a,hybrid:openai:b")
    assert c.members == ("knowledge", "openai:a", "hybrid:openai:b")


@pytest.mark.parametrize(("spec", "message"), [
    ("openai:", "names no model"),
    ("openai:m?api_key=sk-123", "must not hold a key"),
    ("openai:m?colour=red", "unknown option 'colour'"),
    ("consensus:openai:a", "at least two"),
    ("hybrid:knowledge", "hybrid needs one LLM spec"),
    ("hybrid:random", "hybrid needs one LLM spec"),
    ("gemini:pro", "unknown backend"),
    ("random:7", "the random backend takes no argument"),
    # a baseline annotates clusters only over a dataset's label set (the bench gives one)
    ("random", "'random' cannot annotate clusters without a dataset's label set"),
    ("consensus:knowledge,most-frequent", "'most-frequent' cannot annotate clusters"),
])
def test_bad_specs_are_one_clear_error(spec, message):
    with pytest.raises(llm4cell.BackendError, match=message):
        llm4cell.get_annotator(spec, check=False)


def test_bad_spec_option_value_names_the_option():
    with pytest.raises(llm4cell.BackendError, match="batch_size"):
        llm4cell.get_annotator("openai:m?batch_size=0&base_url=http://127.0.0.1:9/v1",
                               check=False)


# ------------------------------------------------------------------ backend registry


def test_show_is_a_view_of_the_registry():
    """One row per entry, every field but the build callable, tasks in TASKS order."""
    table = llm4cell.show()
    assert list(table.columns) == ["name", "desc", "needs_network", "reference", "tasks"]
    assert len(table) == len(BACKENDS)
    for (_, row), entry in zip(table.iterrows(), BACKENDS, strict=True):
        assert (row["name"], row["desc"], row["needs_network"], row["reference"]) == (
            entry.name, entry.desc, entry.needs_network, entry.reference)
        assert row["tasks"].split(", ") == [t for t in TASKS if t in entry.tasks]
        assert entry.tasks <= set(TASKS) and callable(entry.build)
    assert table.set_index("name").at["most-frequent", "tasks"] == "clusters, puzzles"


def test_every_registry_entry_is_a_spec_kind_and_named_when_unknown():
    """The spec grammar and the registry cannot drift: each entry's kind parses, and the
    unknown-backend message lists every entry."""
    kinds = {e.kind for e in BACKENDS}
    assert len(kinds) == len(BACKENDS)  # one entry per kind
    examples = {"knowledge": "knowledge", "openai": "openai:m", "anthropic": "anthropic:m",
                "llamacpp": "llamacpp:x.gguf", "hybrid": "hybrid:openai:m",
                "consensus": "consensus:knowledge,random", "random": "random",
                "most-frequent": "most-frequent"}
    assert set(examples) == {e.kind for e in BACKENDS}
    for kind, spec in examples.items():
        assert parse_spec(spec).kind == kind
    with pytest.raises(llm4cell.BackendError) as info:
        parse_spec("gemini:pro")
    listed = str(info.value).split("available: ")[1]
    assert listed.split(", ") == [e.name.replace(",...", "") for e in BACKENDS]


@pytest.mark.parametrize(("spec", "task", "kind"), [
    ("knowledge", "clusters", KnowledgeAnnotator),
    ("knowledge", "puzzles", KnowledgeSolver),
    ("random", "puzzles", RandomSolver),
    ("random", "clusters", VocabBaseline),
    ("most-frequent", "clusters", VocabBaseline),
    ("most-frequent", "puzzles", MostFrequentSolver),
    ("openai:m?base_url=http://127.0.0.1:9/v1", "clusters", LLMAnnotator),
    ("openai:m?base_url=http://127.0.0.1:9/v1", "puzzles", LLMSolver),
    ("hybrid:openai:m?base_url=http://127.0.0.1:9/v1", "clusters", HybridAnnotator),
    ("hybrid:openai:m?base_url=http://127.0.0.1:9/v1", "puzzles", LLMSolver),
    ("consensus:knowledge,random", "clusters", ConsensusAnnotator),
    ("consensus:knowledge,random", "puzzles", ConsensusSolver),
])
def test_one_factory_builds_every_backend_for_every_task(spec, task, kind):
    labels = [("B cell", "CL:0000236", 3.0), ("T cell", "CL:0000084", 5.0)]
    backend = build_backend(spec, task=task, check=False, labels=labels, seed=1)
    assert isinstance(backend, kind)
    protocol = PuzzleSolver if task == "puzzles" else llm4cell.Annotator
    assert isinstance(backend, protocol)


def test_baselines_answer_from_the_label_set():
    labels = [("B cell", "CL:0000236", 3.0), ("T cell", "CL:0000084", 5.0)]
    q = [llm4cell.MarkerQuery(id=i, genes=("CD3E",)) for i in ("a", "b", "c")]
    top = build_backend("most-frequent", task="clusters", labels=labels).annotate(q)
    assert [(a.label, a.ontology_id, a.backend) for a in top] == [
        ("T cell", "CL:0000084", "most-frequent")] * 3
    drawn = build_backend("random", task="clusters", labels=labels, seed=1).annotate(q)
    assert drawn == build_backend("random", task="clusters", labels=labels, seed=1).annotate(q)
    assert {a.ontology_id for a in drawn} <= {"CL:0000236", "CL:0000084"}


def test_a_task_a_backend_cannot_do_is_one_line_naming_both():
    with pytest.raises(llm4cell.BackendError) as info:
        build_backend("knowledge", task="cells")
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("backend 'knowledge' cannot annotate single cells (it can "
                           "annotate clusters, solve puzzles)")
    with pytest.raises(llm4cell.BackendError, match="'most-frequent' cannot solve puzzles"):
        build_backend("most-frequent", task="puzzles")
    with pytest.raises(ValueError, match="task must be one of"):
        build_backend("knowledge", task="cluster")
    with pytest.raises(TypeError, match="unknown context"):
        build_backend("knowledge", task="clusters", label_set=[])


def test_backend_objects_pass_through_when_they_fit_the_task():
    solver = build_backend("knowledge", task="puzzles")
    assert build_backend(solver, task="puzzles") is solver
    annotator = llm4cell.get_annotator("knowledge")
    assert llm4cell.get_annotator(annotator) is annotator
    with pytest.raises(llm4cell.BackendError, match="a spec string or a puzzle solver"):
        build_backend(annotator, task="puzzles")
    with pytest.raises(llm4cell.BackendError, match="a spec string or an Annotator"):
        llm4cell.get_annotator(solver)


@pytest.mark.parametrize("first", ["llm4cell.annotators", "llm4cell.puzzles._solvers",
                                   "llm4cell.puzzles", "llm4cell.bench._run"])
def test_the_packages_import_in_any_order(first):
    """The registry builds the puzzle solvers and solve_puzzles uses the registry: each
    package must import first in a fresh interpreter, and solve_puzzles be exported."""
    import subprocess
    import sys

    code = (f"import {first}\nfrom llm4cell.puzzles import solve_puzzles\n"
            "import llm4cell.puzzles._solve as s\nassert solve_puzzles is s.solve_puzzles\n"
            "import llm4cell.puzzles as p\nassert 'solve_puzzles' in dir(p)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]


def test_redact_and_safe_url():
    assert safe_url("https://user:pw@host:8000/v1?key=abc#x") == "https://host:8000/v1"
    text = "Incorrect API key provided: sk-abcdefghijkl. Also mysecretvalue here"
    clean = redact(text, ("mysecretvalue",))
    assert "sk-abcdefghijkl" not in clean
    assert "mysecretvalue" not in clean


def test_options_never_expose_the_key():
    o = LLMOptions(api_key="sk-hidden-123456", base_url="http://127.0.0.1:1/v1?api-version=1")
    assert "sk-hidden" not in json.dumps(o.public())
    assert "sk-hidden" not in repr(o)
    assert o.public()["base_url"] == "http://127.0.0.1:1/v1"
    with pytest.raises(ValueError, match="user name or password") as e:  # issue 12
        LLMOptions(base_url="http://u:pw-hidden-123@127.0.0.1:1/v1")
    assert "pw-hidden" not in str(e.value)


# --------------------------------------------------------------------------- consensus

B, T, CD4, CD8, HEP, LYMPH = ("CL:0000236", "CL:0000084", "CL:0000624", "CL:0000625",
                              "CL:0000182", "CL:0000542")


def test_consensus_unanimous():
    v = consensus_vote([B, B, B])
    assert (v.term, v.proportion, v.entropy) == (B, 1.0, 0.0)


def test_consensus_subtype_and_parent_agree_partly_on_the_parent():
    v = consensus_vote([CD4, T])
    assert v.term == T
    assert v.proportion == 0.75
    assert v.entropy == 1.0


def test_consensus_majority_subtype_wins():
    v = consensus_vote([CD4, CD4, T])
    assert v.term == CD4
    assert v.proportion == pytest.approx((1 + 1 + 0.5) / 3, abs=1e-4)


def test_consensus_of_unrelated_siblings_is_their_common_ground():
    v = consensus_vote([B, T])
    assert v.term == LYMPH
    assert v.proportion == 0.5


def test_consensus_without_common_ground_is_unknown():
    v = consensus_vote([B, HEP])
    assert v.term is None
    assert v.entropy == 1.0
    assert consensus_vote([None, None]).term is None
    assert consensus_vote([B, None, None]).proportion == pytest.approx(1 / 3, abs=1e-4)


# ------------------------------------------------------------------------------ cache


def test_cache_survives_reopen_and_is_thread_safe(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = ResponseCache(path)
    keys = [cache_key({"m": i}) for i in range(40)]

    def put(i: int) -> None:
        cache.put(keys[i], "openai", "m", CachedResponse(f"text {i}", i, 2 * i, "stop"))

    threads = [threading.Thread(target=put, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cache.close()
    again = ResponseCache(path)
    assert len(again) == 40
    assert again.get(keys[7]) == CachedResponse("text 7", 7, 14, "stop")
    assert again.get(cache_key({"m": "other"})) is None


def test_cache_key_depends_on_every_part():
    base = {"provider": "openai", "model": "m", "messages": [["user", "hi"]], "seed": 0}
    k = cache_key(base)
    assert k == cache_key(dict(reversed(list(base.items()))))
    for change in ({"model": "n"}, {"messages": [["user", "hi!"]]}, {"seed": 1}):
        assert cache_key({**base, **change}) != k


def test_unwritable_cache_path_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(llm4cell.BackendError, match="cannot open the LLM response cache"):
        ResponseCache(blocker / "sub" / "c.sqlite")


# ------------------------------------------------------------------------------ prices


def test_price_table_longest_prefix_and_override(tmp_path):
    prices = load_prices()
    assert price_for("gpt-4o-mini-2024-07-18", prices) == (0.15, 0.60)
    assert price_for("gpt-4o-2024-08-06", prices) == (2.50, 10.00)
    assert price_for("openai/gpt-4o-mini", prices) == (0.15, 0.60)
    assert price_for("qwen2.5:7b", prices) is None
    f = tmp_path / "p.toml"
    f.write_text('[custom]\n"qwen2.5" = [0.1, 0.2]\n')
    assert price_for("qwen2.5:7b", load_prices(f)) == (0.1, 0.2)
    bad = tmp_path / "bad.json"
    bad.write_text('{"m": [1]}')
    with pytest.raises(llm4cell.InputError, match="must be \\[input, output\\]"):
        load_prices(bad)


# ------------------------------------------------- stand-in servers (failures llama.cpp
# cannot produce): rate limits and a batch answer with duplicated and missing ids.


class _Script(http.server.BaseHTTPRequestHandler):
    """Answers from a script: a list of (status, body) per chat request, then the last."""

    script: ClassVar[list[tuple[int, object]]] = []
    seen: ClassVar[list[dict]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._send(200, {"object": "list", "data": [{"id": "m", "object": "model",
                                                      "owned_by": "test"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append(body)
        status, reply = type(self).script.pop(0) if len(type(self).script) > 1 else \
            type(self).script[0]
        if status != 200:
            self._send(status, {"error": {"message": "slow down", "type": "rate_limit"}},
                       {"Retry-After": "0"})
            return
        content = reply(body) if callable(reply) else reply
        self._send(200, {
            "id": "c", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
        })


@pytest.fixture
def script_server():
    handler = type("Handler", (_Script,), {"script": [], "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def _answer_for_asked(body: dict) -> str:
    ids = body["response_format"]["json_schema"]["schema"]["properties"]["answers"]["required"]
    return json.dumps({"answers": {i: {**ITEM, "reasoning": f"solo {i}"} for i in ids}})


def test_rate_limits_are_retried_with_backoff(script_server):
    """Stand-in server: llama.cpp never answers 429, so a scripted one does."""
    handler, url = script_server
    handler.script = [(429, None), (503, None), (200, _answer_for_asked)]
    opts = LLMOptions(base_url=url, retries=3, backoff=0.01)
    table = llm4cell.annotate_markers(
        _markers(["a", "b"]), backend="openai:m", backend_options=opts)
    u = table.attrs["provenance"]["usage"]
    assert u["retries"] == 2
    assert u["requests"] == 3
    assert list(table["label"]) == ["B cell", "B cell"]


def test_duplicated_and_missing_ids_are_asked_again_alone(script_server):
    """Stand-in server: a grammar-constrained llama.cpp cannot repeat an id, so a scripted
    server returns the broken batch answer peers mis-assign, then solo answers. The model
    sees the clusters a, b, c as the wire ids 1, 2, 3."""
    handler, url = script_server
    broken = ('{"answers": {"1": {"cell_type": "T cell", "confidence": 0.9, "reasoning": "",'
              ' "alternatives": []}, "1": {"cell_type": "hepatocyte", "confidence": 0.9, '
              '"reasoning": "", "alternatives": []}, "2": {"cell_type": "B cell", '
              '"confidence": 0.7, "reasoning": "", "alternatives": []}}}')
    handler.script = [(200, broken), (200, _answer_for_asked)]
    table = llm4cell.annotate_markers(
        _markers(["a", "b", "c"]), backend="openai:m", backend_options=LLMOptions(base_url=url))
    by_id = table.set_index("id")
    assert by_id.loc["b", "label"] == "B cell"  # valid in the batch answer: kept
    assert by_id.loc["b", "confidence"] == 0.7
    assert "solo 1" in by_id.loc["a", "evidence"]  # duplicated: asked alone
    assert "solo 1" in by_id.loc["c", "evidence"]  # missing: asked alone
    assert table.attrs["provenance"]["answers"]["reasked_alone"] == 2
    asked_alone = [b["response_format"]["json_schema"]["schema"]["properties"]["answers"]
                   ["required"] for b in handler.seen[1:]]
    # a and c show the same markers: asked alone they are one request, the second from cache
    assert asked_alone == [["1"]]
    assert table.attrs["provenance"]["usage"]["cache_hits"] == 1


def test_invalid_answer_becomes_unknown_after_repairs(script_server):
    """Stand-in server that always answers prose: the repair turn shows the problem."""
    handler, url = script_server
    handler.script = [(200, "It is probably a B cell.")]
    opts = LLMOptions(base_url=url, repair_attempts=1)
    table = llm4cell.annotate_markers(_markers(["a"]), backend="openai:m", backend_options=opts)
    assert table.loc[0, "label"] == "unknown"
    assert "no valid answer after 2 attempt(s)" in table.loc[0, "evidence"]
    assert "no JSON object" in table.loc[0, "evidence"]
    last = handler.seen[-1]["messages"]
    assert last[-2]["role"] == "assistant"
    assert "could not be used" in last[-1]["content"]


def _markers(ids: list[str]):
    import pandas as pd

    return pd.DataFrame({"id": ids, "markers": ["MS4A1,CD79A,CD79B"] * len(ids),
                         "tissue": ["blood"] * len(ids)})


# ---------------------------------------------------------------------------- Anthropic
# No Anthropic server is reachable here: requests go through the real SDK into a mock
# transport that answers with bodies written from the public Messages API reference.


def _anthropic(handler, **kw):
    httpx2 = pytest.importorskip("httpx2")
    pytest.importorskip("anthropic")
    from llm4cell.llm._clients import AnthropicClient

    opts = LLMOptions(api_key="sk-ant-test-0000000000", retries=2, backoff=0.01, **kw)
    client = AnthropicClient("claude-haiku-4-5-20251001", opts,
                             http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))
    return LLMAnnotator(parse_spec("anthropic:claude-haiku-4-5-20251001"), opts, client=client)


def _tool_use_message(answers: dict) -> dict:
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
        "model": "claude-haiku-4-5-20251001",
        "content": [{"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9",
                     "name": "record_cell_types", "input": {"answers": answers}}],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 1200, "output_tokens": 300},
    }


def test_anthropic_request_building_and_tool_use_parsing():
    httpx2 = pytest.importorskip("httpx2")
    sent: list[tuple[str, dict, str]] = []

    def handler(request):
        body = json.loads(request.content) if request.content else {}
        auth = request.headers.get("x-api-key") or request.headers.get("authorization", "")
        sent.append((request.url.path, body, auth))
        if request.url.path.endswith("/models"):
            return httpx2.Response(200, json={
                "data": [{"type": "model", "id": "claude-haiku-4-5-20251001",
                          "display_name": "Claude Haiku 4.5",
                          "created_at": "2025-10-01T00:00:00Z"}],
                "has_more": False, "first_id": "claude-haiku-4-5-20251001",
                "last_id": "claude-haiku-4-5-20251001"})
        return httpx2.Response(200, json=_tool_use_message({"1": ITEM, "2": {
            **ITEM, "cell_type": "CD4-positive, alpha-beta T cell"}}))

    annotator = _anthropic(handler)
    annotator.check()
    qs = [MarkerQuery(id="q1", genes=("MS4A1", "CD79A"), tissue="blood"),
          MarkerQuery(id="q2", genes=("CD3E", "CD4"), tissue="blood")]
    answers = annotator.annotate(qs)
    assert [a.id for a in answers] == ["q1", "q2"]
    assert answers[0].ontology_id == "CL:0000236"
    assert answers[1].ontology_id == "CL:0000624"
    path, body, key = sent[-1]
    assert path == "/v1/messages"
    assert key.endswith("sk-ant-test-0000000000")  # x-api-key, or Bearer in newer SDKs
    assert body["model"] == "claude-haiku-4-5-20251001"
    assert body["tool_choice"] == {"type": "tool", "name": "record_cell_types"}
    assert body["tools"][0]["input_schema"]["properties"]["answers"]["required"] == ["1", "2"]
    assert "expert in single-cell" in body["system"]
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert body.get("temperature", 0) == 0  # sent where the SDK still takes it
    prov = annotator.provenance()
    assert prov["usage"]["cost_usd"] == pytest.approx((1200 * 1.0 + 300 * 5.0) / 1e6)
    assert "sk-ant-test" not in json.dumps(prov, default=str)


def test_anthropic_overload_is_retried_and_rejected_key_fails_fast():
    httpx2 = pytest.importorskip("httpx2")
    calls = {"n": 0}

    def handler(request):
        calls["n"] += 1
        if calls["n"] == 1:
            return httpx2.Response(529, json={"type": "error", "error": {
                "type": "overloaded_error", "message": "Overloaded"}})
        return httpx2.Response(200, json=_tool_use_message({"1": ITEM}))

    annotator = _anthropic(handler)
    got = annotator.annotate([MarkerQuery(id="q1", genes=("MS4A1",))])
    assert got[0].label == "B cell"
    assert annotator.runner.stats.retries == 1

    def denied(request):
        return httpx2.Response(401, json={"type": "error", "error": {
            "type": "authentication_error", "message": "invalid x-api-key"}})

    with pytest.raises(llm4cell.BackendError, match="rejected the API key") as e:
        _anthropic(denied).check()
    assert "sk-ant-test" not in str(e.value)


def test_anthropic_missing_key_fails_fast(monkeypatch):
    pytest.importorskip("anthropic")
    with pytest.raises(llm4cell.BackendError, match="set ANTHROPIC_API_KEY"):
        llm4cell.get_annotator("anthropic:claude-haiku-4-5-20251001")


def test_prices_file_flag_path(tmp_path: Path):
    f = tmp_path / "prices.json"
    f.write_text(json.dumps({"m": [1.0, 2.0]}))
    assert load_prices(f) == {"m": (1.0, 2.0)}


def test_concurrent_requests_learn_the_json_mode_once(script_server):
    """Stand-in server that, like llama-cpp-python's, answers 500 to OpenAI's json_schema
    form: four requests in flight at once must move to json_object together, not past it
    (a race that once sent requests with no schema at all)."""
    handler, _ = script_server

    def reply(body: dict) -> str:
        fmt = body.get("response_format") or {}
        assert fmt.get("type") == "json_object", "a request lost its schema"
        ids = fmt["schema"]["properties"]["answers"]["required"]
        return json.dumps({"answers": {i: ITEM for i in ids}})

    class Rejecting(handler):  # type: ignore[misc, valid-type]
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            body = json.loads(self.rfile.read(length))
            if (body.get("response_format") or {}).get("type") == "json_schema":
                self._send(500, {"error": {"message": "1 validation error: response_format."
                                                      "type: Input should be 'text' or "
                                                      "'json_object'"}})
                return
            type(self).seen.append(body)
            content = reply(body)
            self._send(200, {
                "id": "c", "object": "chat.completion", "created": 0, "model": "m",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Rejecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        opts = LLMOptions(base_url=f"http://127.0.0.1:{server.server_address[1]}/v1",
                          batch_size=1, concurrency=4, cache=False)  # 8 identical requests
        table = llm4cell.annotate_markers(_markers(list("abcdefgh")), backend="openai:m",
                                          backend_options=opts)
    finally:
        server.shutdown()
    assert (table["label"] == "B cell").all()
    assert table.attrs["provenance"]["json_mode"] == "json_object"
    assert len(Rejecting.seen) == 8


def test_consensus_of_offline_members_through_annotate(pbmc, tmp_path):
    """consensus: works end to end without any server (two knowledge members agree)."""
    import anndata as ad

    llm4cell.annotate(pbmc, groupby="bulk_labels", tissue="blood",
                      backend="consensus:knowledge,knowledge")
    record = pbmc.uns["llm4cell"]["llm4cell"]  # provenance of the default key
    groups = record["groups"]
    known = (groups["label"] != "unknown")
    assert (groups.loc[known, "consensus_proportion"] == 1.0).all()
    assert (groups["consensus_entropy"] == 0.0).all()
    assert not groups["discussed"].any()
    members = record["annotator"]["members"]
    assert set(members) == {"knowledge", "knowledge#2"}
    path = tmp_path / "out.h5ad"
    pbmc.write_h5ad(path)
    back = ad.read_h5ad(path).uns["llm4cell"]["llm4cell"]["groups"]
    assert list(back["consensus_proportion"]) == list(groups["consensus_proportion"])


def test_details_columns_fill_typed_gaps():
    from llm4cell._records import Annotation, details_columns

    a = Annotation(id="a", label="B cell", ontology_id="CL:0000236", confidence=0.5,
                   details={"asked": True, "p": 0.5, "note": "x"})
    b = Annotation(id="b", label="unknown", ontology_id=None, confidence=0.0)
    cols = details_columns([a, b])
    assert cols["asked"] == [True, False]
    assert cols["p"][0] == 0.5 and cols["p"][1] != cols["p"][1]  # NaN
    assert cols["note"] == ["x", ""]


@pytest.mark.parametrize(("flags", "message"), [
    (["--backend", "openai:m", "--batch-size", "0"], "--batch-size"),
    (["--backend", "openai:m", "--prices", "missing.json"], "cannot read the price table"),
    (["--backend", "openai:m?api_key=sk-secret-abcdef"], "must not hold a key"),
    (["--backend", "consensus:knowledge"], "at least two"),
])
def test_bad_llm_flags_are_one_line_exit_2(tmp_path, flags, message):
    import subprocess
    import sys

    from conftest import cli_env

    path = tmp_path / "m.csv"
    _markers(["a"]).to_csv(path, index=False)
    out = tmp_path / "p.csv"
    r = subprocess.run([sys.executable, "-m", "llm4cell", "markers", str(path), "-o", str(out),
                        *flags], capture_output=True, text=True, env=cli_env(), timeout=120,
                       cwd=tmp_path)
    assert r.returncode == 2
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, r.stderr
    assert message in lines[0]
    assert "sk-secret" not in r.stderr
    assert not out.exists()
