"""CellPuzzles without an LLM: building from pbmc68k_reduced, reading Cell-o1 records,
the knowledge / random / consensus solvers, the strict answer parser, scoring and the
``llm4cell puzzles`` command line (in-process, on real files)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import _pbmc
from typer.testing import CliRunner

from llm4cell._errors import BackendError, InputError
from llm4cell.annotators import build_backend
from llm4cell.cli import app
from llm4cell.puzzles import (
    Puzzle,
    PuzzleAnswer,
    PuzzleCell,
    build_puzzles,
    read_answers,
    read_puzzles,
    score_puzzles,
    solve_puzzles,
    write_answers,
    write_puzzles,
)
from llm4cell.puzzles._prompt import parse_puzzle_answer, puzzle_question
from llm4cell.puzzles._records import CANDIDATES_INTRO

BUILD = {"label_col": "bulk_labels", "n_min": 8, "n_max": 10, "per_n": 2, "top_genes": 15,
         "tissue": "blood"}

B, MONO, NK, T = "B cell", "CD14-positive monocyte", "natural killer cell", "T cell"
IDS = {B: "CL:0000236", MONO: "CL:0001054", NK: "CL:0000623", T: "CL:0000084"}
B_GENES = ("CD79A", "MS4A1", "CD19", "CD79B", "BANK1", "PAX5")
MONO_GENES = ("CD14", "LYZ", "S100A8", "S100A9", "FCN1", "VCAN")
NK_GENES = ("NKG7", "GNLY", "KLRD1", "KLRF1", "PRF1", "GZMB")


@pytest.fixture(scope="module")
def built() -> list[Puzzle]:
    return build_puzzles(_pbmc().copy(), seed=0, **BUILD)


def textbook(candidate_ids: dict[str, str | None]) -> Puzzle:
    """NK, B, monocyte cells; candidates in another (alphabetical) order."""
    return Puzzle(
        id="textbook",
        cells=(PuzzleCell(id="nk", genes=NK_GENES), PuzzleCell(id="b", genes=B_GENES),
               PuzzleCell(id="mono", genes=MONO_GENES)),
        candidates=(B, MONO, NK), answer=(NK, B, MONO),
        candidate_ids=candidate_ids, tissue="blood",
    )


# ---------------------------------------------------------------------------- building


def test_built_puzzles_are_batches_of_distinct_real_cells(built):
    adata = _pbmc()
    truth = adata.obs["bulk_labels"].astype(str)
    # one group of 10 types: every round draws one puzzle until each N has per_n
    assert Counter(p.n for p in built) == {8: 2, 9: 2, 10: 2}
    for p in built:
        assert 8 <= p.n <= 10
        assert len(set(p.answer)) == p.n
        assert list(p.candidates) == sorted(p.answer, key=str.casefold)
        assert sorted(p.candidates) == sorted(p.answer)
        assert [truth[c.id] for c in p.cells] == list(p.answer)
        assert set(p.candidate_ids) == set(p.candidates)
        assert p.tissue == "blood"
        assert "blood" in p.context
        assert p.donor is None
    # the shipped label "CD14+ Monocyte" is the CL term CD14-positive monocyte
    assert {p.candidate_ids.get("CD14+ Monocyte") for p in built} <= {"CL:0001054", None}
    assert any(p.candidate_ids.get("CD14+ Monocyte") == "CL:0001054" for p in built)


def test_built_genes_are_each_cells_top_raw_genes_descending(built):
    adata = _pbmc()
    raw = adata.raw.to_adata()
    names = np.asarray(raw.var_names.astype(str))
    top = BUILD["top_genes"]
    for p in built:
        for cell in p.cells:
            values = np.asarray(raw[cell.id].X.todense()).ravel()
            got = values[[raw.var_names.get_loc(g) for g in cell.genes]]
            assert len(cell.genes) == top
            assert (got > 0).all()
            assert (np.diff(got) <= 0).all()  # descending
            rest = np.delete(values, [raw.var_names.get_loc(g) for g in cell.genes])
            assert rest.max() <= got.min()  # nothing left out beats what is listed
    # one cell recomputed from adata.raw directly (ties broken by name)
    cell = built[0].cells[0]
    values = np.asarray(adata.raw[cell.id].X.todense()).ravel()
    order = np.lexsort((names, -values))[:top]
    assert cell.genes == tuple(names[order])


def test_build_is_seeded(built):
    again = build_puzzles(_pbmc().copy(), seed=0, **BUILD)
    assert again == built
    other = build_puzzles(_pbmc().copy(), seed=1, **BUILD)
    assert [[c.id for c in p.cells] for p in other] != [[c.id for c in p.cells] for p in built]


def test_puzzles_round_trip_through_jsonl(built, tmp_path):
    path = write_puzzles(built, tmp_path / "p.jsonl")
    assert len(path.read_text().splitlines()) == len(built)
    assert read_puzzles(path) == built


def test_per_n_counts_per_size():
    ps = build_puzzles(_pbmc().copy(), label_col="bulk_labels", n_min=9, n_max=10, per_n=3,
                       top_genes=5, seed=2)
    assert Counter(p.n for p in ps) == {9: 3, 10: 3}
    assert len({p.id for p in ps}) == 6


@pytest.mark.parametrize(("kw", "match"), [
    ({"label_col": "phase"}, "at most 3 distinct types"),
    ({"label_col": "nope"}, "'nope' is not an obs column"),
    ({"label_col": "bulk_labels", "n_min": 9, "n_max": 8}, "--n-max"),
    ({"label_col": "bulk_labels", "donor_col": "nope"}, "--donor-col 'nope'"),
])
def test_build_rejects_bad_arguments(kw, match):
    with pytest.raises(InputError, match=match):
        build_puzzles(_pbmc().copy(), **kw)


# ---------------------------------------------------------------- knowledge solver


@pytest.mark.parametrize("ids", [IDS, {}], ids=["mapped", "empty"])
def test_knowledge_solves_a_textbook_puzzle(ids):
    p = textbook({k: v for k, v in ids.items() if k in (B, MONO, NK)})
    [a] = solve_puzzles([p], backend="knowledge")
    assert a.prediction == p.answer
    assert a.format_ok and a.unique
    S = np.array(a.scores)
    assert S.shape == (3, 3)
    for i, truth in enumerate(p.answer):
        j = p.candidates.index(truth)
        assert S[i, j] == S[i].max()
        assert (np.delete(S[i], j) < S[i, j]).all()  # a strict winner
    assert all(0 < c <= 1 for c in a.confidence)
    assert a.details["changed_by_assignment"] == 0


def test_assignment_makes_repeated_best_labels_unique_and_right():
    # cell 2 carries NK genes plus CD3E/CD8A/CD2, so "T cell" edges out NK as its best;
    # cell 1 is the clearer T cell, so the one-to-one assignment gives cell 2 NK.
    p = Puzzle(
        id="tt", tissue="blood", candidate_ids={B: IDS[B], NK: IDS[NK], T: IDS[T]},
        cells=(PuzzleCell(id="t", genes=("CD3D", "CD3E", "CD3G", "CD2", "IL7R", "LCK")),
               PuzzleCell(id="nkt", genes=("NKG7", "GNLY", "CD3E", "CD8A", "GZMB", "CD2")),
               PuzzleCell(id="b", genes=B_GENES)),
        candidates=(B, NK, T), answer=(T, NK, B),
    )
    [argmax] = solve_puzzles([p], backend="knowledge", assignment=False)
    [assigned] = solve_puzzles([p], backend="knowledge")
    S = np.array(assigned.scores)
    assert np.argmax(S[0]) == np.argmax(S[1]) == p.candidates.index(T)  # the setup holds
    assert argmax.prediction == (T, T, B)
    assert argmax.format_ok and not argmax.unique
    assert assigned.prediction == p.answer
    assert assigned.unique
    assert assigned.details["changed_by_assignment"] == 1
    assert "went to cell 1" in assigned.reasoning


# ----------------------------------------------------------------- random, consensus


def test_random_baseline_is_a_seeded_permutation(built):
    first = solve_puzzles(built, backend="random", seed=3)
    assert solve_puzzles(built, backend="random", seed=3) == first
    other = solve_puzzles(built, backend="random", seed=4)
    assert [a.prediction for a in other] != [a.prediction for a in first]
    for p, a in zip(built, first, strict=True):
        assert a.unique and a.format_ok
        assert sorted(a.prediction) == sorted(p.candidates)


def test_consensus_of_knowledge_and_random(built):
    answers = solve_puzzles(built, backend="consensus:knowledge,random", seed=3)
    knowledge = solve_puzzles(built, backend="knowledge")
    for p, a, k in zip(built, answers, knowledge, strict=True):
        assert a.backend == "consensus:knowledge,random"
        assert a.unique and a.format_ok
        assert sorted(a.prediction) == sorted(p.candidates)
        assert a.details["members"]["knowledge"] == list(k.prediction)
        # the knowledge assignment alone collects N votes: the best one has at least N
        assert sum(c * 2 for c in a.confidence) >= p.n - 1e-9


def test_unknown_backend_is_a_backend_error():
    with pytest.raises(BackendError, match="unknown backend 'foo:bar'"):
        build_backend("foo:bar", task="puzzles")
    with pytest.raises(BackendError, match="at least two"):
        build_backend("consensus:random", task="puzzles")


# ------------------------------------------------------------------------- scoring


def answer(pid: str, candidates, truth, pred, *, ids=IDS, format_ok=True) -> PuzzleAnswer:
    pred = tuple(pred) if pred is not None else None
    unique = pred is not None and len({x.casefold() for x in pred}) == len(pred)
    return PuzzleAnswer(
        id=pid, n=len(truth), backend="hand", prediction=pred, format_ok=format_ok,
        unique=unique, candidates=tuple(candidates), answer=tuple(truth),
        candidate_ids={c: ids.get(c) for c in candidates},
    )


def test_score_known_accuracies():
    cands = (B, MONO, NK)
    answers = [
        # all right, one spelled in lower case: 3/3, the batch is right
        answer("right", cands, (NK, B, MONO), ("natural killer cell", "b cell", MONO)),
        # B and NK swapped: 1/3 (siblings, no ontology credit)
        answer("swap", cands, (NK, B, MONO), (B, NK, MONO)),
        # malformed: 0 for every cell, not unique
        answer("bad", cands, (NK, B, MONO), None, format_ok=False),
        # N=2 with opaque names: each prediction is the ancestor / descendant of the truth
        answer("onto", ("type X", "type Y"), ("type X", "type Y"), ("type Y", "type X"),
               ids={"type X": "CL:0001054", "type Y": "CL:0000576"}),
    ]
    s = score_puzzles(answers)
    overall = s.summary.loc["overall"]
    assert overall["n_puzzles"] == 4 and overall["n_cells"] == 11
    assert overall["cell_accuracy"] == pytest.approx(4 / 11)
    assert overall["batch_accuracy"] == pytest.approx(1 / 4)
    assert overall["format_compliance"] == pytest.approx(3 / 4)
    assert overall["uniqueness"] == pytest.approx(3 / 4)
    assert overall["agreement"] == pytest.approx((3 + 1 + 0 + 0.5 * 2) / 11)
    assert list(s.summary.index) == ["overall", "2", "3"]
    three, two = s.summary.loc["3"], s.summary.loc["2"]
    assert (three["n_puzzles"], three["n_cells"]) == (3, 9)
    assert three["cell_accuracy"] == pytest.approx(4 / 9)
    assert three["batch_accuracy"] == pytest.approx(1 / 3)
    assert (two["n_puzzles"], two["cell_accuracy"], two["agreement"]) == (1, 0.0, 0.5)

    pp = s.per_puzzle.set_index("id")
    assert list(pp["correct"]) == [3, 1, 0, 0]
    assert list(pp["batch_correct"]) == [True, False, False, False]
    assert list(pp["unique"]) == [True, True, False, True]
    assert list(pp["agreement"]) == pytest.approx([1, 1 / 3, 0, 0.5])

    pc = s.per_cell
    assert len(pc) == 11
    bad = pc[pc["id"] == "bad"]
    assert bad["prediction"].isna().all() and not bad["correct"].any()
    assert (bad["agreement"] == 0).all()
    onto = pc[pc["id"] == "onto"]
    assert list(onto["truth_id"]) == ["CL:0001054", "CL:0000576"]
    assert list(onto["pred_id"]) == ["CL:0000576", "CL:0001054"]
    assert list(onto["agreement"]) == [0.5, 0.5]
    assert list(pc.loc[pc["id"] == "right", "position"]) == [1, 2, 3]
    assert "4 puzzles" in repr(s)
    assert s.to_markdown().count("\n") == 2 + 3


def test_score_needs_gold_answers():
    a = answer("x", (B, NK), (B, NK), (B, NK)).model_copy(update={"answer": None})
    with pytest.raises(InputError, match="none of the answers carries the true answer"):
        score_puzzles([a])


def test_answers_round_trip(tmp_path):
    answers = solve_puzzles([textbook(IDS)], backend="knowledge")
    path = write_answers(answers, tmp_path / "a.jsonl")
    assert read_answers(path) == answers


# ---------------------------------------------------------------- Cell-o1 records

CELLO1_Q = (
    "Context: The cells come from a 45-year-old female donor; tissue: blood.\n\n"
    "Cell 1: NKG7, GNLY, KLRD1\n"
    "Cell 2: CD79A, MS4A1\n"
    "Cell 3: CD14, LYZ, S100A8\n\n"
    f"{CANDIDATES_INTRO}\n"
    f"{B}\n{MONO}\n{NK}"
)
CELLO1_A = f"<think>NKG7 and GNLY are NK genes.</think>\n<answer>{NK} | {B} | {MONO}</answer>"


def check_cello1(p: Puzzle) -> None:
    assert [c.genes for c in p.cells] == [("NKG7", "GNLY", "KLRD1"), ("CD79A", "MS4A1"),
                                          ("CD14", "LYZ", "S100A8")]
    assert [c.id for c in p.cells] == ["cell1", "cell2", "cell3"]
    assert p.candidates == (B, MONO, NK)
    assert p.answer == (NK, B, MONO)
    assert p.context == "The cells come from a 45-year-old female donor; tissue: blood."
    assert p.candidate_ids[B] == "CL:0000236"  # mapped by the label matcher


def test_reads_cello1_jsonl_and_json_array(tmp_path):
    rec = {"user_msg": CELLO1_Q, "assistant_msg": CELLO1_A}
    jl = tmp_path / "c.jsonl"
    jl.write_text(json.dumps(rec) + "\n\n" + json.dumps(rec) + "\n")
    arr = tmp_path / "c.json"
    arr.write_text(json.dumps([rec, rec], indent=2))
    from_jl, from_arr = read_puzzles(jl), read_puzzles(arr)
    assert [p.id for p in from_jl] == ["cello1-00000", "cello1-00001"]
    for p in (*from_jl, *from_arr):
        check_cello1(p)
    assert from_jl[0].source == "c.jsonl" and from_arr[0].source == "c.json"
    # what we ask an LLM is the published layout again
    assert puzzle_question(from_jl[0]).splitlines()[2:] == CELLO1_Q.splitlines()[2:]
    # and the knowledge engine solves it
    assert solve_puzzles(from_jl[:1])[0].prediction == (NK, B, MONO)


def test_reads_question_with_instruction_after_the_last_candidate(tmp_path):
    q = CELLO1_Q + " You are an expert assistant specialized in cell type annotation. " \
                   "Reply in <answer></answer> tags.\nMore instructions."
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"question": q, "answer": f"{NK} | {B} | {MONO}"}) + "\n")
    [p] = read_puzzles(path)
    check_cello1(p)


@pytest.mark.parametrize(("second", "match"), [
    ({"user_msg": CELLO1_Q.replace(CANDIDATES_INTRO, "Pick:"), "assistant_msg": CELLO1_A},
     "no line 'Match the cells"),
    ({"user_msg": CELLO1_Q, "assistant_msg": f"<answer>{NK} | {B}</answer>"},
     "the answer lists 2 types for 3 cells"),
    ({"user_msg": CELLO1_Q.replace(f"\n{NK}", ""), "assistant_msg": CELLO1_A},
     "2 candidates for 3 cells"),
    ({"user_msg": CELLO1_Q.replace("Cell 2:", "Cell 5:"), "assistant_msg": CELLO1_A},
     "out of order at 'Cell 5'"),
    ({"assistant_msg": CELLO1_A}, "no 'user_msg', 'question' or 'prompt' text"),
    (["not", "an", "object"], "is not a JSON object"),
])
def test_malformed_cello1_record_names_the_record(tmp_path, second, match):
    path = tmp_path / "bad.jsonl"
    good = {"user_msg": CELLO1_Q, "assistant_msg": CELLO1_A}
    path.write_text(json.dumps(good) + "\n" + json.dumps(second) + "\n")
    with pytest.raises(InputError, match=match) as e:
        read_puzzles(path)
    assert "bad.jsonl record 2" in str(e.value)


def test_repeated_puzzle_ids_are_refused(tmp_path, built):
    path = write_puzzles([built[0], built[0]], tmp_path / "p.jsonl")
    with pytest.raises(InputError, match=r"record 2: puzzle id 'p00000-n\d+' is repeated"):
        read_puzzles(path)


# ------------------------------------------------------------------- answer parser


@pytest.mark.parametrize(("text", "pred", "ok", "unique", "error"), [
    (f"<think>r</think><answer>{NK} | {B} | {MONO}</answer>", (NK, B, MONO), True, True, ""),
    (f" <THINK>r\nmore</THINK>\n<Answer>{NK}|{B}|{MONO}.</Answer>\n", (NK, B, MONO), True,
     True, ""),
    (f"<answer>{NK} | {B} | {MONO}</answer>", None, False, False, "no <think>"),
    (f"<think>r</think>{NK} | {B} | {MONO}", None, False, False, "no <answer>"),
    (f"<think>r</think><answer>{NK} | {B} | {MONO}</answer> Hope this helps", None, False,
     False, "text outside"),
    ("", None, False, False, "empty reply"),
    (f"<think>r</think><answer>{NK} | {B}</answer>", None, False, False,
     "lists 2 types for 3 cells"),
    ("<think>r</think><answer>NATURAL KILLER CELL | b cell | cd14-positive monocyte</answer>",
     (NK, B, MONO), True, True, ""),
    (f"<think>r</think><answer>{NK} | plasma cell | {MONO}</answer>",
     (NK, "plasma cell", MONO), True, True, "not candidates: ['plasma cell']"),
    (f"<think>r</think><answer>{NK} | {NK} | {MONO}</answer>", (NK, NK, MONO), True, False,
     ""),
])
def test_parse_puzzle_answer_is_strict(text, pred, ok, unique, error):
    got = parse_puzzle_answer(text, textbook(IDS))
    assert got.prediction == pred
    assert got.format_ok is ok
    assert got.unique is unique
    assert error in got.error if error else got.error == ""


# ---------------------------------------------------------------------------- CLI

runner = CliRunner()


@pytest.fixture(scope="module")
def h5ad(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pz") / "pbmc.h5ad"
    _pbmc().write_h5ad(path)
    return path


def invoke(*args: str):
    return runner.invoke(app, ["puzzles", *map(str, args)], env={"COLUMNS": "200",
                                                                  "NO_COLOR": "1"})


def assert_one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    assert "Traceback" not in result.output
    for n in needles:
        assert n in lines[0]


def test_cli_round_trip_build_solve_score(h5ad, tmp_path):
    pz, ans = tmp_path / "pz.jsonl", tmp_path / "ans.jsonl"
    js, csv = tmp_path / "s.json", tmp_path / "s.csv"
    r = invoke("build", h5ad, "-o", pz, "--label-col", "bulk_labels", "--n-min", 8,
               "--n-max", 9, "--per-n", 1, "--top-genes", 20, "--tissue", "blood")
    assert r.exit_code == 0, r.output
    puzzles = read_puzzles(pz)
    assert sorted(p.n for p in puzzles) == [8, 9]
    assert all(p.source == "pbmc.h5ad" for p in puzzles)
    assert "2 puzzles from 1 donor group(s) (N=8: 1, N=9: 1)" in r.stderr

    r = invoke("solve", pz, "-o", ans)
    assert r.exit_code == 0, r.output
    answers = read_answers(ans)
    assert [a.id for a in answers] == [p.id for p in puzzles]
    same = [a.model_dump(exclude={"latency_s"}) for a in solve_puzzles(puzzles)]
    assert [a.model_dump(exclude={"latency_s"}) for a in answers] == same
    assert "2 puzzles solved by knowledge: 2 well-formed, 2 with unique labels" in r.stderr

    r = invoke("score", ans, "--json", js, "--csv", csv)
    assert r.exit_code == 0, r.output
    rows = json.loads(js.read_text())
    assert [row["n"] for row in rows] == ["overall", "8", "9"]
    cells = pd.read_csv(csv)
    assert len(cells) == 17
    assert cells.groupby("id").size().to_dict() == {p.id: p.n for p in puzzles}
    assert rows[0]["cell_accuracy"] == pytest.approx(cells["correct"].mean())
    assert rows[0]["n_cells"] == 17
    assert "llm4cell puzzles score (knowledge)" in r.output


def test_cli_no_assignment_and_random(h5ad, tmp_path, built):
    pz = write_puzzles(built[:2], tmp_path / "pz.jsonl")
    r = invoke("solve", pz, "-o", tmp_path / "r.jsonl", "--backend", "random", "--seed", 5)
    assert r.exit_code == 0, r.output
    assert read_answers(tmp_path / "r.jsonl") == solve_puzzles(built[:2], backend="random", seed=5)
    r = invoke("solve", pz, "-o", tmp_path / "k.jsonl", "--no-assignment")
    assert r.exit_code == 0, r.output
    assert all(a.backend == "knowledge (per-cell argmax)"
               for a in read_answers(tmp_path / "k.jsonl"))


@pytest.mark.parametrize(("col", "needle"), [
    ("phase", "--label-col 'phase' has at most 3 distinct types"),
    ("nope", "--label-col 'nope' is not an obs column"),
])
def test_cli_build_bad_label_column(h5ad, tmp_path, col, needle):
    out = tmp_path / "pz.jsonl"
    r = invoke("build", h5ad, "-o", out, "--label-col", col)
    assert_one_line_error(r, needle)
    assert not out.exists()


def test_cli_build_output_equal_to_input(h5ad):
    before = h5ad.read_bytes()
    r = invoke("build", h5ad, "-o", h5ad, "--label-col", "bulk_labels")
    assert_one_line_error(r, "is the input file")
    assert h5ad.read_bytes() == before


def test_cli_solve_bad_inputs(tmp_path, built):
    out = tmp_path / "ans.jsonl"
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert_one_line_error(invoke("solve", empty, "-o", out), "holds no puzzles")

    rec = json.loads(built[0].model_dump_json())
    rec["candidates"] = rec["candidates"][:-1]
    uneven = tmp_path / "uneven.jsonl"
    uneven.write_text(json.dumps(rec) + "\n")
    assert_one_line_error(invoke("solve", uneven, "-o", out), "uneven.jsonl record 1",
                          f"{built[0].n - 1} candidates for {built[0].n} cells")

    good = write_puzzles(built[:1], tmp_path / "good.jsonl")
    assert_one_line_error(invoke("solve", good, "-o", out, "--backend", "foo:bar"),
                          "unknown backend 'foo:bar'")
    assert not out.exists()

    before = good.read_bytes()
    assert_one_line_error(invoke("solve", good, "-o", good), "is the input file")
    assert good.read_bytes() == before


def test_cli_score_bad_inputs(tmp_path, built):
    pz = write_puzzles(built[:1], tmp_path / "pz.jsonl")
    js = tmp_path / "s.json"
    assert_one_line_error(invoke("score", pz, "--json", js), "is not a puzzle answer")
    assert not js.exists()


def test_puzzles_with_a_byte_order_mark_are_read(tmp_path, built):
    path = write_puzzles(built[:2], tmp_path / "pz.jsonl")
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert read_puzzles(bom) == read_puzzles(path)


def test_cli_solve_removes_temporaries_left_by_a_killed_writer(tmp_path, built):
    """A temporary answers file of a dead process goes; nothing else is left beside it."""
    import subprocess
    import sys

    pz = write_puzzles(built[:2], tmp_path / "pz.jsonl")
    out = tmp_path / "ans.jsonl"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = tmp_path / f".ans.jsonl.llm4cell-tmp-{dead}-0a1b2c3d"
    stale.write_text('{"half": ')
    r = invoke("solve", pz, "-o", out, "--backend", "random")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ans.jsonl", "pz.jsonl"]
