"""Bad input to the arena's commands: ``llm4cell puzzles build|solve|score`` and ``bench``.

One table of cases, each run in-process in a fresh folder holding every input (a small
labelled h5ad, puzzles, answers, a marker table and a bench config). Every case must end
with exit code 2 and exactly one ``error:`` line on stderr (no traceback), create no file
or folder (no output, no hidden temporary file), leave every input byte for byte as it
was, and never show the fake credential some cases carry in a URL.

The cases collect issue 12's list (an output over an input, malformed and ``!!python``
YAML, an .h5ad given to ``puzzles solve``, paths that climb out of the config's folder,
outputs that cannot be written, credentials in URLs) and the earlier issues' bad inputs
(empty files, wrong kinds of file, missing columns, unknown backends, keys in configs).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import make_planted_counts
from typer.testing import CliRunner

from llm4cell.cli import app
from llm4cell.puzzles import build_puzzles, solve_puzzles, write_answers, write_puzzles

runner = CliRunner()
SECRET = "hunter2-arena-7c41"  # not key-shaped: only URL handling can keep it out
CRED_URL = f"http://user:{SECRET}@127.0.0.1:9/v1?api_key={SECRET}"
MARKERS_CSV = """id,markers,truth
b,"CD79A,MS4A1,CD19,CD79B",CL:0000236
t,"CD3E,CD3D,IL7R,CD2",T cell
"""
MK = 'name = "mk"\nkind = "markers"\npath = "markers.csv"\ntruth_col = "truth"\n'
GOOD_TOML = '[bench]\noutput = "out"\n\n[[datasets]]\n' + MK

Setup = Callable[[Path], object]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """The folder of good inputs every case starts from."""
    folder = tmp_path_factory.mktemp("arena_inputs")
    adata = make_planted_counts(n_per_type=8)
    adata.write_h5ad(folder / "data.h5ad")
    puzzles = build_puzzles(adata, label_col="truth", n_min=3, n_max=4, per_n=1, seed=0)
    write_puzzles(puzzles, folder / "puzzles.jsonl")
    write_answers(solve_puzzles(puzzles, backend="random"), folder / "answers.jsonl")
    (folder / "markers.csv").write_text(MARKERS_CSV)
    (folder / "bench.toml").write_text(GOOD_TOML)
    return folder


# ------------------------------------------------------------------------ set-ups


def write(name: str, text: str | bytes) -> Setup:
    def setup(d: Path) -> None:
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            (d / name).write_bytes(text)
        else:
            (d / name).write_text(text)
    return setup


def config(text: str, name: str = "bench.toml") -> Setup:
    return write(name, text)


def dataset(body: str) -> Setup:
    return config('[bench]\noutput = "out"\n\n[[datasets]]\n' + body)


def annotator(body: str) -> Setup:
    return config(f'[bench]\noutput = "out"\n\n[[annotators]]\n{body}\n\n[[datasets]]\n{MK}')


def both(*setups: Setup) -> Setup:
    def setup(d: Path) -> None:
        for s in setups:
            s(d)
    return setup


def symlink(name: str, target: str) -> Setup:
    def setup(d: Path) -> None:
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(d / target, d / name)
    return setup


def hardlink(name: str, target: str) -> Setup:
    return lambda d: os.link(d / target, d / name)


def first_puzzle(change: Callable[[dict], object]) -> Setup:
    def setup(d: Path) -> None:
        rec = json.loads((d / "puzzles.jsonl").read_text().splitlines()[0])
        change(rec)
        (d / "p.jsonl").write_text(json.dumps(rec) + "\n")
    return setup


def first_answer(change: Callable[[dict], object]) -> Setup:
    def setup(d: Path) -> None:
        lines = (d / "answers.jsonl").read_text().splitlines()
        rec = json.loads(lines[0])
        change(rec)
        (d / "x.jsonl").write_text("\n".join([json.dumps(rec), *lines[1:]]) + "\n")
    return setup


def _short_prediction(rec: dict) -> None:
    rec["prediction"] = rec["prediction"][:2]


def _wrong_n(rec: dict) -> None:
    rec["n"] = 99


def _drop_answer(rec: dict) -> None:
    rec["answer"] = None


def _drop_candidate(rec: dict) -> None:
    rec["candidates"] = rec["candidates"][:-1]


def _cells_int(rec: dict) -> None:
    rec["cells"] = 5


def _twice(d: Path) -> None:
    line = (d / "puzzles.jsonl").read_text().splitlines()[0]
    (d / "p.jsonl").write_text(line + "\n" + line + "\n")


# ------------------------------------------------------------------------- cases

HDF5 = b"\x89HDF\r\n\x1a\n\x00\x00\x00\x00\x00\x08\x08\x00\x04\x00\xff\xfe"
BUILD = ["puzzles", "build", "data.h5ad", "--label-col", "truth", "--n-min", "3",
         "--n-max", "4"]
SOLVE = ["puzzles", "solve", "puzzles.jsonl"]
SCORE = ["puzzles", "score", "answers.jsonl"]
BENCH = ["bench", "bench.toml"]
P_DS = 'name = "pz"\nkind = "puzzles"\npath = "p.jsonl"\n'

CASES: dict[str, tuple[list[str], Setup | None, str]] = {
    # ---- puzzles build
    "build/input-is-csv": (["puzzles", "build", "markers.csv", "-o", "p.jsonl",
                            "--label-col", "truth"], None, "unsupported format '.csv'"),
    "build/input-is-puzzles": (["puzzles", "build", "puzzles.jsonl", "-o", "p.jsonl",
                                "--label-col", "truth"], None, "unsupported format"),
    "build/input-missing": (["puzzles", "build", "nope.h5ad", "-o", "p.jsonl",
                             "--label-col", "truth"], None, "no such file"),
    "build/input-empty": (["puzzles", "build", "e.h5ad", "-o", "p.jsonl", "--label-col",
                           "truth"], write("e.h5ad", ""), "not a readable AnnData"),
    "build/input-not-hdf5": (["puzzles", "build", "e.h5ad", "-o", "p.jsonl", "--label-col",
                              "truth"], write("e.h5ad", "just text"), "not a readable AnnData"),
    "build/label-col-missing": ([*BUILD[:3], "-o", "p.jsonl", "--label-col", "nope"], None,
                                "--label-col 'nope' is not an obs column"),
    "build/donor-col-missing": ([*BUILD, "-o", "p.jsonl", "--donor-col", "nope"], None,
                                "--donor-col 'nope'"),
    "build/context-col-missing": ([*BUILD, "-o", "p.jsonl", "--context-cols", "nope"], None,
                                  "--context-cols 'nope'"),
    "build/too-few-types": ([*BUILD[:5], "-o", "p.jsonl", "--n-min", "9", "--n-max", "9"],
                            None, "at most 5 distinct types"),
    "build/n-min-negative": ([*BUILD[:5], "-o", "p.jsonl", "--n-min", "-1"], None,
                             "--n-min must be at least 2"),
    "build/n-min-above-n-max": ([*BUILD[:5], "-o", "p.jsonl", "--n-min", "5", "--n-max", "4"],
                                None, "--n-max"),
    "build/top-genes-zero": ([*BUILD, "-o", "p.jsonl", "--top-genes", "0"], None,
                             "--top-genes"),
    "build/layer-missing": ([*BUILD, "-o", "p.jsonl", "--layer", "nope"], None, "'nope'"),
    "build/output-is-input": ([*BUILD, "-o", "data.h5ad"], None, "is the input file"),
    "build/output-hardlink-of-input": ([*BUILD, "-o", "hl.h5ad"],
                                       hardlink("hl.h5ad", "data.h5ad"), "is the input file"),
    "build/output-symlink-to-input": ([*BUILD, "-o", "ln.h5ad"],
                                      symlink("ln.h5ad", "data.h5ad"), "is the input file"),
    "build/output-is-folder": ([*BUILD, "-o", "."], None, "is a folder"),
    "build/output-parent-is-file": ([*BUILD, "-o", "markers.csv/p.jsonl"], None,
                                    "is a file, not a folder"),
    "build/output-in-proc": ([*BUILD, "-o", "/proc/llm4cell/p.jsonl"], None,
                             "does not accept new files"),
    # ---- puzzles solve
    "solve/input-is-h5ad": (["puzzles", "solve", "data.h5ad", "-o", "a.jsonl"], None,
                            "is an .h5ad file, not puzzles"),
    "solve/input-is-binary": (["puzzles", "solve", "p.jsonl", "-o", "a.jsonl"],
                              write("p.jsonl", HDF5), "not UTF-8 text"),
    "solve/input-is-csv": (["puzzles", "solve", "markers.csv", "-o", "a.jsonl"], None,
                           "not valid JSON"),
    "solve/input-is-fake-parquet": (["puzzles", "solve", "p.parquet", "-o", "a.jsonl"],
                                    write("p.parquet", "not parquet"), "Parquet"),
    "solve/input-is-answers": (["puzzles", "solve", "answers.jsonl", "-o", "a.jsonl"], None,
                               "record 1"),
    "solve/input-empty": (["puzzles", "solve", "p.jsonl", "-o", "a.jsonl"],
                          write("p.jsonl", "\n"), "holds no puzzles"),
    "solve/input-missing": (["puzzles", "solve", "p.jsonl", "-o", "a.jsonl"], None,
                            "no such file"),
    "solve/input-is-folder": (["puzzles", "solve", ".", "-o", "a.jsonl"], None,
                              "is a folder"),
    "solve/input-bracket-path": (["puzzles", "solve", "p[/x].jsonl", "-o", "a.jsonl"], None,
                                 "'p[/x].jsonl'"),
    "solve/cells-not-a-list": (["puzzles", "solve", "p.jsonl", "-o", "a.jsonl"],
                               first_puzzle(_cells_int), "record 1: cells"),
    "solve/candidates-cells-differ": (["puzzles", "solve", "p.jsonl", "-o", "a.jsonl"],
                                      first_puzzle(_drop_candidate), "candidates for"),
    "solve/repeated-ids": (["puzzles", "solve", "p.jsonl", "-o", "a.jsonl"], _twice,
                           "is repeated"),
    "solve/cello1-without-question": (["puzzles", "solve", "p.jsonl", "-o", "a.jsonl"],
                                      write("p.jsonl", '{"user_msg": 5}\n'), "no 'user_msg'"),
    "solve/json-array-broken": (["puzzles", "solve", "p.json", "-o", "a.jsonl"],
                                write("p.json", "[1, 2"), "not valid JSON"),
    "solve/unknown-backend": ([*SOLVE, "-o", "a.jsonl", "--backend", "foo:bar"], None,
                              "unknown backend 'foo:bar'"),
    "solve/key-in-spec": ([*SOLVE, "-o", "a.jsonl", "--backend", f"openai:m?api_key={SECRET}"],
                          None, "must not hold a key"),
    "solve/credentials-in-base-url": ([*SOLVE, "-o", "a.jsonl", "--backend", "openai:m",
                                       "--base-url", CRED_URL, "--retries", "0"], None, "url"),
    "solve/output-is-input": ([*SOLVE, "-o", "puzzles.jsonl"], None, "is the input file"),
    "solve/output-symlink-to-input": ([*SOLVE, "-o", "ln.jsonl"],
                                      symlink("ln.jsonl", "puzzles.jsonl"), "is the input file"),
    "solve/output-is-prices": ([*SOLVE, "-o", "pr.json", "--backend", "openai:m", "--prices",
                                "pr.json"], write("pr.json", '{"m": [1, 2]}'), "--prices"),
    "solve/output-is-cache": ([*SOLVE, "-o", "c.sqlite", "--backend", "openai:m", "--cache",
                               "c.sqlite"], write("c.sqlite", b""), "--cache"),
    "solve/output-is-folder": ([*SOLVE, "-o", "."], None, "is a folder"),
    "solve/output-parent-is-file": ([*SOLVE, "-o", "markers.csv/a.jsonl"], None,
                                    "is a file, not a folder"),
    "solve/output-in-proc": ([*SOLVE, "-o", "/proc/a.jsonl"], None, "does not accept new files"),
    # ---- puzzles score
    "score/input-is-h5ad": (["puzzles", "score", "data.h5ad"], None,
                            "is an .h5ad file, not answers"),
    "score/input-is-puzzles": (["puzzles", "score", "puzzles.jsonl", "--json", "s.json"], None,
                               "is not a puzzle answer"),
    "score/input-empty": (["puzzles", "score", "e.jsonl", "--csv", "c.csv"],
                          write("e.jsonl", ""), "holds no answers"),
    "score/input-missing": (["puzzles", "score", "nope.jsonl"], None, "no such file"),
    "score/prediction-shorter-than-n": (["puzzles", "score", "x.jsonl"],
                                        first_answer(_short_prediction),
                                        "prediction lists 2 entries"),
    "score/n-not-the-candidates": (["puzzles", "score", "x.jsonl"], first_answer(_wrong_n),
                                   "n is 99"),
    "score/json-is-input": ([*SCORE, "--json", "answers.jsonl"], None, "is the input file"),
    "score/csv-symlink-to-input": ([*SCORE, "--csv", "ln.csv"],
                                   symlink("ln.csv", "answers.jsonl"), "is the input file"),
    "score/json-and-csv-one-path": ([*SCORE, "--json", "s.x", "--csv", "s.x"], None,
                                    "two outputs share the path"),
    "score/csv-is-folder": ([*SCORE, "--csv", "."], None, "is a folder"),
    "score/csv-parent-is-file": ([*SCORE, "--json", "s.json", "--csv", "markers.csv/c.csv"],
                                 None, "is a file, not a folder"),
    "score/csv-in-proc": ([*SCORE, "--json", "s.json", "--csv", "/proc/c.csv"], None,
                          "does not accept new files"),
    # ---- bench: the config itself
    "bench/config-missing": (["bench", "nope.toml"], None, "no such file"),
    "bench/config-empty": (BENCH, config(" \n"), "is empty"),
    "bench/config-is-folder": (["bench", "."], None, "is a folder"),
    "bench/config-is-h5ad": (["bench", "data.h5ad"], None, "must end in .toml"),
    "bench/config-not-utf8": (BENCH, write("bench.toml", HDF5), "not UTF-8"),
    "bench/toml-syntax": (BENCH, config("[bench\nname = 'x'\n"), "cannot parse"),
    "bench/yaml-malformed": (["bench", "b.yaml"], config("datasets: [\n  - name: a\n  kind: x\n",
                                                         "b.yaml"), "cannot parse 'b.yaml'"),
    "bench/yaml-python-tag": (["bench", "b.yaml"], config(
        "datasets: !!python/object/apply:os.system ['touch PWNED']\n", "b.yaml"),
        "tags such as !!python"),
    "bench/yaml-not-a-mapping": (["bench", "b.yaml"], config("- a\n- b\n", "b.yaml"),
                                 "must be a table of bench"),
    "bench/unknown-setting": (BENCH, config('[bench]\nnmae = "x"\n[[datasets]]\n' + MK),
                              "bench.nmae"),
    "bench/unknown-kind": (BENCH, dataset(MK.replace('"markers"\n', '"loom"\n', 1)),
                           "datasets.0.kind"),
    "bench/no-truth-col": (BENCH, dataset(MK.replace('truth_col = "truth"\n', "")),
                           "needs truth_col"),
    "bench/blank-dataset-name": (BENCH, dataset(MK.replace('"mk"', '""')), "datasets.0.name"),
    "bench/negative-resolution": (BENCH, dataset(
        'name = "h"\nkind = "h5ad"\npath = "data.h5ad"\nlabel_col = "truth"\n'
        'level = "cell"\nresolution = -1\n'), "datasets.0.resolution"),
    "bench/mouse-when-not-a-list": (BENCH, dataset(
        MK + 'mouse_when = { column = "truth", values = 5 }\n'), "mouse_when needs"),
    "bench/duplicate-datasets": (BENCH, config('[[datasets]]\n' + MK + '[[datasets]]\n' + MK),
                                 "dataset names must be unique"),
    # ---- bench: paths
    "bench/output-over-dataset": (BENCH, both(
        write("items.csv", MARKERS_CSV),
        config('[bench]\noutput = "."\n[[datasets]]\n' + MK.replace("markers.csv", "items.csv"))),
        "is the input file"),
    "bench/cli-output-over-dataset": (["bench", "b.toml", "-o", "."], both(
        write("leaderboard.csv", MARKERS_CSV),
        config("[[datasets]]\n" + MK.replace("markers.csv", "leaderboard.csv"), "b.toml")),
        "is the input file"),
    "bench/output-symlink-to-dataset": (BENCH, symlink("out/items.csv", "markers.csv"),
                                        "is the input file"),
    "bench/output-over-cache": (BENCH, annotator(
        'backend = "knowledge"\noptions = { cache_path = "out/report.html" }'),
        "the cache of annotator"),
    "bench/dataset-climbs-out": (BENCH, dataset(MK.replace("markers.csv", "../markers.csv")),
                                 "climbs out of the config's folder"),
    "bench/output-climbs-out": (BENCH, config('[bench]\noutput = "../../x"\n[[datasets]]\n'
                                              + MK), "climbs out of the config's folder"),
    "bench/cache-climbs-out": (BENCH, annotator(
        'backend = "knowledge"\noptions = { cache_path = "../c.sqlite" }'),
        "climbs out of the config's folder"),
    "bench/output-is-file": (["bench", "bench.toml", "-o", "markers.csv"], None, "is a file"),
    "bench/output-parent-is-file": (["bench", "bench.toml", "-o", "markers.csv/out"], None,
                                    "is a file, not a folder"),
    "bench/output-in-proc": (["bench", "bench.toml", "-o", "/proc/llm4cell_out"], None,
                             "does not accept new files"),
    "bench/output-file-is-folder": (BENCH, lambda d: (d / "out" / "report.html").mkdir(
        parents=True), "is a folder"),
    "bench/store-not-sqlite": (BENCH, write("out/results.sqlite", "not a database"),
                               "is not a bench store"),
    # ---- bench: datasets
    "bench/markers-missing": (BENCH, dataset(MK.replace("markers.csv", "nope.csv")),
                              "nope.csv"),
    "bench/markers-empty": (BENCH, write("markers.csv", ""), "is empty"),
    "bench/markers-header-only": (BENCH, write("markers.csv", "id,markers,truth\n"),
                                  "no rows"),
    "bench/markers-not-utf8": (BENCH, write("markers.csv", HDF5), "not a readable CSV"),
    "bench/markers-is-h5ad": (BENCH, dataset(MK.replace("markers.csv", "data.h5ad")),
                              "not a readable CSV"),
    "bench/markers-no-marker-column": (BENCH, write("markers.csv", "id,truth\na,T cell\n"),
                                       "marker table"),
    "bench/truth-col-missing": (BENCH, dataset(MK.replace('"truth"', '"nope"')),
                                "truth_col 'nope' is not a column"),
    "bench/h5ad-is-csv": (BENCH, dataset(
        'name = "h"\nkind = "h5ad"\npath = "markers.csv"\nlabel_col = "truth"\n'),
        "unsupported format"),
    "bench/h5ad-missing": (BENCH, dataset(
        'name = "h"\nkind = "h5ad"\npath = "nope.h5ad"\nlabel_col = "truth"\n'), "nope.h5ad"),
    "bench/h5ad-label-col-missing": (BENCH, dataset(
        'name = "h"\nkind = "h5ad"\npath = "data.h5ad"\nlabel_col = "nope"\n'),
        "label_col 'nope' is not an obs column"),
    "bench/h5ad-groupby-missing": (BENCH, dataset(
        'name = "h"\nkind = "h5ad"\npath = "data.h5ad"\nlabel_col = "truth"\n'
        'groupby = "nope"\n'), "groupby 'nope'"),
    "bench/puzzles-is-h5ad-file": (BENCH, both(write("p.jsonl", HDF5), dataset(P_DS)),
                                   "not UTF-8 text"),
    "bench/puzzles-empty": (BENCH, both(write("p.jsonl", ""), dataset(P_DS)),
                            "holds no puzzles"),
    "bench/puzzles-are-answers": (BENCH, dataset(P_DS.replace("p.jsonl", "answers.jsonl")),
                                  "record 1"),
    "bench/puzzles-unlabelled": (BENCH, both(first_puzzle(_drop_answer), dataset(P_DS)),
                                 "without answers"),
    "bench/puzzles-cells-not-a-list": (BENCH, both(first_puzzle(_cells_int), dataset(P_DS)),
                                       "record 1: cells"),
    # ---- bench: annotators
    "bench/unknown-backend": (BENCH, annotator('backend = "foo:bar"'),
                              "unknown backend 'foo:bar'"),
    "bench/key-in-config": (BENCH, annotator(
        f'backend = "openai:m"\noptions = {{ api_key = "{SECRET}" }}'),
        "api_key may not be written"),
    "bench/bad-option": (BENCH, annotator(
        'backend = "openai:m"\noptions = { retries = -3 }'), "options.retries"),
    "bench/unknown-option": (BENCH, annotator(
        'backend = "openai:m"\noptions = { retires = 3 }'), "options.retires"),
    "bench/credentials-in-base-url": (BENCH, annotator(
        f'backend = "openai:m"\noptions = {{ base_url = "{CRED_URL}", retries = 0 }}'),
        "base_url"),
    "bench/credentials-in-spec": (BENCH, annotator(
        f'backend = "openai:m?base_url={CRED_URL}"'), "base_url"),
    "bench/credentials-in-unknown-spec": (BENCH, annotator(
        f'backend = "foo:m?base_url={CRED_URL}"'), "unknown backend"),
    "bench/duplicate-annotators": (BENCH, config(
        '[[annotators]]\nbackend = "knowledge"\n[[annotators]]\nbackend = "knowledge"\n'
        '[[datasets]]\n' + MK), "annotator names must be unique"),
    "bench/baseline-name-taken": (BENCH, annotator('name = "random"\nbackend = "knowledge"'),
                                  "taken by the baselines"),
}


def _snapshot(folder: Path) -> dict[str, str | None]:
    """Relative path -> sha256 of every file (None for folders), hidden ones included."""
    out: dict[str, str | None] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            out[os.path.relpath(os.path.join(root, name), folder)] = None
        for name in files:
            p = Path(root, name)
            rel = os.path.relpath(p, folder)
            out[rel] = (hashlib.sha256(p.read_bytes()).hexdigest() if p.exists()
                        else "dangling link")
    return out


@pytest.mark.parametrize(("args", "setup", "needle"), list(CASES.values()), ids=list(CASES))
def test_bad_input_fails_with_one_line_and_writes_nothing(inputs, tmp_path, monkeypatch,
                                                          args, setup, needle):
    work = tmp_path / "w"
    shutil.copytree(inputs, work)
    if setup is not None:
        setup(work)
    before = _snapshot(work)
    monkeypatch.chdir(work)
    r = runner.invoke(app, args, env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: ")
    assert needle.lower() in lines[0].lower(), lines[0]
    assert "Traceback" not in r.output
    assert SECRET not in r.output
    after = _snapshot(work)
    assert sorted(set(after) - set(before)) == []  # no output, no temporary file
    assert after == before  # every input unchanged, byte for byte


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
@pytest.mark.parametrize("args", [
    [*BUILD, "-o", "ro/p.jsonl"], [*SOLVE, "-o", "ro/a.jsonl"],
    [*SCORE, "--json", "s.json", "--csv", "ro/c.csv"], ["bench", "bench.toml", "-o", "ro/out"],
], ids=["build", "solve", "score", "bench"])
def test_unwritable_folder_fails_before_the_work(inputs, tmp_path, monkeypatch, args):
    work = tmp_path / "w"
    shutil.copytree(inputs, work)
    (work / "ro").mkdir()
    (work / "ro").chmod(0o555)
    before = _snapshot(work)
    monkeypatch.chdir(work)
    try:
        r = runner.invoke(app, args, env={"COLUMNS": "200", "NO_COLOR": "1"})
    finally:
        (work / "ro").chmod(0o755)
    assert r.exit_code == 2, r.output
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "does not accept new files" in lines[0], r.stderr
    assert _snapshot(work) == before


def test_yaml_python_tag_is_never_run(inputs, tmp_path, monkeypatch):
    """The tag would create a file if it were executed; safe_load refuses it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "b.yaml").write_text(
        "bench: !!python/object/apply:os.system ['touch PWNED']\ndatasets: []\n")
    r = runner.invoke(app, ["bench", "b.yaml"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert r.exit_code == 2
    assert not (tmp_path / "PWNED").exists()
