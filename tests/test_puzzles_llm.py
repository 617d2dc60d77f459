"""CellPuzzles LLM plumbing against a real llama.cpp OpenAI-compatible server on 127.0.0.1.

SmolLM2-135M knows no biology and gets 16 tokens per cell (the least allowed), so its
replies are mostly malformed: the tests assert plumbing (prompt sent, reply kept and
parsed strictly, cache, hybrid fallback), checking each answer against what is true of it.
"""

from __future__ import annotations

import pytest
from conftest import _pbmc
from llama_server import MODEL_ALIAS
from typer.testing import CliRunner

from llm4cell.cli import app
from llm4cell.puzzles import (
    build_puzzles,
    read_answers,
    score_puzzles,
    solve_puzzles,
    write_puzzles,
)
from llm4cell.puzzles._prompt import parse_puzzle_answer

#: Every test here runs the real llama.cpp stack (``make test-fast`` leaves them out).
pytestmark = pytest.mark.llm

SPEC = f"openai:{MODEL_ALIAS}"


@pytest.fixture(scope="module")
def puzzles():
    return build_puzzles(_pbmc().copy(), label_col="bulk_labels", n_min=8, n_max=8, per_n=2,
                         top_genes=3, tissue="blood", seed=0)


@pytest.fixture(scope="module")
def options(llm_server, tmp_path_factory) -> dict[str, object]:
    """One response cache for the module, so the tests share the plain run's replies."""
    return {"base_url": llm_server.base_url, "max_tokens": 16, "concurrency": 1,
            "retries": 1, "backoff": 0.1, "timeout": 300,
            "cache_path": str(tmp_path_factory.mktemp("pz_cache") / "cache.sqlite")}


@pytest.fixture(scope="module")
def plain(llm_server, puzzles, options):
    """The first run of the plain LLM backend, and how many requests the server served."""
    served = llm_server.completions_served("200")
    answers = solve_puzzles(puzzles, backend=SPEC, backend_options=options)
    return answers, llm_server.completions_served("200") - served


def test_llm_answers_are_parsed_strictly_and_cached(llm_server, puzzles, options, plain):
    answers, served_first = plain
    assert [p.n for p in puzzles] == [8, 8]
    assert served_first == len(puzzles)  # one request per puzzle reached the server
    assert [a.id for a in answers] == [p.id for p in puzzles]
    for p, a in zip(puzzles, answers, strict=True):
        assert a.backend == SPEC
        assert (a.requests, a.cache_hits) == (1, 0)
        assert a.prompt_tokens > 0 and 0 < a.completion_tokens <= 16 * p.n
        assert isinstance(a.raw, str)
        parsed = parse_puzzle_answer(a.raw, p)
        assert a.format_ok is parsed.format_ok
        assert a.prediction == parsed.prediction
        assert a.unique is (parsed.prediction is not None and parsed.unique)
        assert a.error == parsed.error
        assert a.details == {"llm_format_ok": parsed.format_ok}
        assert a.answer == p.answer  # gold copied for scoring
    # a malformed answer scores 0 for all its cells
    pp = score_puzzles(answers).per_puzzle
    for a, correct in zip(answers, pp["correct"], strict=True):
        if not a.format_ok:
            assert correct == 0

    served = llm_server.completions_served()
    again = solve_puzzles(puzzles, backend=SPEC, backend_options=options)
    assert llm_server.completions_served() == served  # the server saw nothing new
    assert [(a.requests, a.cache_hits) for a in again] == [(0, 1)] * len(puzzles)
    assert [a.raw for a in again] == [a.raw for a in answers]
    # tokens count sent requests only (as the runner's accounting): none on a cache hit
    assert [(a.prompt_tokens, a.completion_tokens) for a in again] == [(0, 0)] * len(puzzles)


def test_hybrid_falls_back_to_knowledge_on_unusable_replies(llm_server, puzzles, options,
                                                            plain):
    one = puzzles[:1]  # the hints triple the prompt: one puzzle keeps this quick
    served = llm_server.completions_served("200")
    hybrid = solve_puzzles(one, backend=f"hybrid:{SPEC}", backend_options=options)
    knowledge = solve_puzzles(one, backend="knowledge")
    # the hints make a different, longer prompt: asked anew, not served from the cache
    assert llm_server.completions_served("200") - served == 1
    for p, h, k, a in zip(one, hybrid, knowledge, plain[0][:1], strict=True):
        assert h.backend == f"hybrid:{SPEC}"
        assert (h.requests, h.cache_hits) == (1, 0)
        assert h.prompt_tokens > a.prompt_tokens
        parsed = parse_puzzle_answer(h.raw, p)
        usable = parsed.format_ok and parsed.unique and not parsed.error
        assert h.details["llm_format_ok"] is parsed.format_ok
        assert h.details["fallback"] is (not usable)
        assert h.scores == k.scores  # the knowledge matrix rides along either way
        if usable:
            assert h.prediction == parsed.prediction
        else:
            assert h.prediction == k.prediction
            assert h.format_ok and h.unique  # the kept knowledge assignment is well formed
            assert h.error
            assert h.reasoning.startswith("LLM answer unusable")


def test_cli_solve_with_openai_backend(llm_server, puzzles, tmp_path):
    # the test's own (empty) cache: the first run asks the server
    pz = write_puzzles(puzzles[:1], tmp_path / "pz.jsonl")
    out = tmp_path / "ans.jsonl"
    args = ["puzzles", "solve", str(pz), "-o", str(out), "--backend", SPEC,
            "--base-url", llm_server.base_url, "--max-tokens", "16", "--concurrency", "1",
            "--timeout", "300", "--retries", "1"]
    runner = CliRunner()
    served = llm_server.completions_served("200")
    r = runner.invoke(app, args, env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert r.exit_code == 0, r.output
    assert llm_server.completions_served("200") - served == 1
    [a] = read_answers(out)
    assert a.id == puzzles[0].id
    assert a.backend == SPEC
    assert a.format_ok is parse_puzzle_answer(a.raw, puzzles[0]).format_ok
    assert f"1 puzzles solved by {SPEC}: {int(a.format_ok)} well-formed" in r.stderr
    assert "LLM: 1 requests, 0 cache hits" in r.stderr

    r = runner.invoke(app, args, env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert r.exit_code == 0, r.output
    assert "LLM: 0 requests, 1 cache hits" in r.stderr
    assert read_answers(out)[0].raw == a.raw
