"""``llm4cell bench``: the grid of annotators x datasets, its SQLite store with resume,
the leaderboard and report outputs, and bad configs through the CLI.

Real parts only: a hand-written marker table, scanpy's pbmc68k_reduced (cell level,
louvain clusters scored against bulk_labels), puzzles built from it, and a private
llama.cpp server that is stopped mid-run to test resuming.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import _pbmc
from typer.testing import CliRunner

import llm4cell
from llm4cell.bench import run_bench
from llm4cell.cli import app
from llm4cell.puzzles import build_puzzles, write_puzzles

# six clusters with textbook markers; the truth mixes CL IDs and free text
MARKERS_CSV = """id,markers,truth
b,"CD79A,MS4A1,CD19,CD79B",CL:0000236
t,"CD3E,CD3D,IL7R,CD2",T cell
nk,"NKG7,GNLY,KLRD1,PRF1",natural killer cell
mono,"CD14,LYZ,S100A8,FCN1",CL:0000576
hep,"ALB,APOA1,TTR,SERPINA1",hepatocyte
plt,"PPBP,PF4,ITGA2B,GP9",platelet
"""
N_MARKERS = 6
N_PUZZLES = 6
BASELINES = {"knowledge", "random", "most-frequent"}
OUTPUT_FILES = ("results.sqlite", "items.csv", "leaderboard.md", "leaderboard.csv",
                "agreement.png", "reliability.png", "puzzles_by_n.png", "report.html")

MARKERS_DS = """
[[datasets]]
name = "mk"
kind = "markers"
path = "markers.csv"
truth_col = "truth"
tissue = "blood"
"""
PBMC_DS = """
[[datasets]]
name = "pbmc"
kind = "h5ad"
path = "scanpy:pbmc68k_reduced"
label_col = "bulk_labels"
groupby = "louvain"
level = "cell"
tissue = "blood"
"""
PUZZLES_DS = """
[[datasets]]
name = "pz"
kind = "puzzles"
path = "puzzles.jsonl"
"""
HEADER = """
[bench]
name = "test arena"
output = "out"
chunk_size = 4
"""


def pbmc_pairs() -> pd.Series:
    """Cells per (louvain cluster, bulk label) pair present in pbmc68k_reduced."""
    obs = _pbmc().obs
    counts = obs.groupby(["louvain", "bulk_labels"], observed=True).size()
    return counts[counts > 0]


def write_inputs(folder: Path, config: str, *, puzzles: bool = True) -> Path:
    """The marker table, (optionally) ~6 puzzles of N 8-9 and the config in ``folder``."""
    (folder / "markers.csv").write_text(MARKERS_CSV)
    if puzzles:
        found = build_puzzles(_pbmc(), label_col="bulk_labels", n_min=8, n_max=9, per_n=3,
                              seed=0)
        assert len(found) == N_PUZZLES and {p.n for p in found} == {8, 9}
        write_puzzles(found, folder / "puzzles.jsonl")
    path = folder / "bench.toml"
    path.write_text(config)
    return path


def assert_same_scores(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Two leaderboards equal but for the timing column."""
    pd.testing.assert_frame_equal(a.drop(columns="latency_s_per_item"),
                                  b.drop(columns="latency_s_per_item"))


def query(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def execute(db: Path, sql: str, params: tuple = ()) -> int:
    con = sqlite3.connect(db)
    try:
        with con:
            return con.execute(sql, params).rowcount
    finally:
        con.close()


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """One bench over markers, pbmc68k cell level and puzzles (read-only for tests)."""
    folder = tmp_path_factory.mktemp("bench_full")
    config = write_inputs(folder, HEADER + MARKERS_DS + PBMC_DS + PUZZLES_DS)
    return folder, run_bench(config)


# ------------------------------------------------------------------------ full run


def test_full_run_stores_every_item_and_writes_every_output(full_run):
    folder, result = full_run
    out = folder / "out"
    db = out / "results.sqlite"
    pairs = pbmc_pairs()
    n_clusters = pairs.index.get_level_values(0).nunique()
    assert result.computed == 3 * (N_MARKERS + n_clusters + N_PUZZLES)
    assert result.skipped == 0

    counts = {(a, d): (n, w) for a, d, n, w in query(
        db, "SELECT annotator, dataset, COUNT(*), SUM(weight) FROM items "
            "GROUP BY annotator, dataset")}
    assert {a for a, _ in counts} == BASELINES
    for a in BASELINES:
        assert counts[(a, "mk")] == (N_MARKERS, N_MARKERS)
        assert counts[(a, "pz")] == (N_PUZZLES, N_PUZZLES)
        # cell level: one row per (cluster, label) pair, weights = labelled cells
        assert counts[(a, "pbmc")] == (len(pairs), _pbmc().n_obs)
    # the pairs and their weights are the real crosstab, cluster by cluster
    rows = query(db, "SELECT item_id, unit_id, weight FROM items WHERE annotator = "
                     "'knowledge' AND dataset = 'pbmc'")
    got = {item: w for item, _, w in rows}
    assert got == {f"{g}|{lab}": float(k) for (g, lab), k in pairs.items()}
    assert all(item.split("|")[0] == unit for item, unit, _ in rows)

    # baselines state no confidence; the knowledge engine always does
    no_conf = query(db, "SELECT annotator, COUNT(*) FROM items WHERE confidence IS NULL "
                        "GROUP BY annotator")
    assert dict(no_conf) == {"random": N_MARKERS + len(pairs) + N_PUZZLES,
                             "most-frequent": N_MARKERS + len(pairs) + N_PUZZLES}
    runs = query(db, "SELECT annotator, dataset, n_units, complete FROM runs")
    assert len(runs) == 9 and all(c == 1 for *_, c in runs)
    assert {(a, d): n for a, d, n, _ in runs}[("random", "pbmc")] == n_clusters

    board = result.leaderboard
    per_ds = board[board["dataset"] != "overall"]
    assert sorted(zip(per_ds["annotator"], per_ds["dataset"], strict=True)) == sorted(
        (a, d) for a in BASELINES for d in ("mk", "pbmc", "pz"))
    overall = board[board["dataset"] == "overall"]
    assert sorted(overall["annotator"]) == sorted(BASELINES)
    assert len(board) == 9 + 3
    assert dict(zip(per_ds["dataset"], per_ds["kind"], strict=True)) == {
        "mk": "markers", "pbmc": "h5ad-cell", "pz": "puzzles"}
    on_disk = pd.read_csv(out / "leaderboard.csv")
    assert list(on_disk["annotator"]) == list(board["annotator"])
    np.testing.assert_allclose(on_disk["agreement"], board["agreement"])
    md = (out / "leaderboard.md").read_text()
    assert md.startswith("## test arena")
    assert md.count("\n| ") == len(board) + 1  # header + one line per row

    for name in OUTPUT_FILES:
        assert (out / name).is_file(), name
    for name in ("agreement.png", "reliability.png", "puzzles_by_n.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(result.outputs.values()) >= {out / n for n in OUTPUT_FILES}
    items = pd.read_csv(out / "items.csv", keep_default_na=False, na_values=[""])
    assert len(items) == 3 * (N_MARKERS + len(pairs) + N_PUZZLES)
    html = (out / "report.html").read_text()
    assert 'src="http' not in html
    assert html.count("data:image/png;base64,") >= 3  # the figures are embedded
    assert all(a in html for a in BASELINES)


def test_cell_level_agreement_is_weighted_by_cells(full_run):
    folder, result = full_run
    items = pd.read_csv(folder / "out" / "items.csv", keep_default_na=False,
                        na_values=[""])
    mine = items[(items["annotator"] == "knowledge") & (items["dataset"] == "pbmc")]
    scored = mine[mine["agreement"].notna()]
    assert 0 < len(scored) < len(mine)  # some bulk labels have no CL term
    by_hand = (scored["agreement"] * scored["weight"]).sum() / scored["weight"].sum()
    board = result.leaderboard
    row = board[(board["annotator"] == "knowledge") & (board["dataset"] == "pbmc")].iloc[0]
    assert row["agreement"] == pytest.approx(by_hand, abs=1e-9)
    assert row["n_items"] == len(mine) and row["n_scored"] == len(scored)
    # the weights matter here: the unweighted mean over pairs is different
    assert abs(scored["agreement"].mean() - by_hand) > 0.01


# -------------------------------------------------------------------------- resume


def test_rerun_resumes_and_recomputes_only_what_is_missing(tmp_path):
    config = write_inputs(tmp_path, HEADER + MARKERS_DS + PBMC_DS, puzzles=False)
    db = tmp_path / "out" / "results.sqlite"
    first = run_bench(config)
    n_clusters = pbmc_pairs().index.get_level_values(0).nunique()
    assert first.computed == 3 * (N_MARKERS + n_clusters)
    assert not (tmp_path / "out" / "puzzles_by_n.png").exists()  # no puzzles here
    # mark every stored row, so that any rewrite shows
    old = "2000-01-01T00:00:00+00:00"
    n_rows = execute(db, "UPDATE items SET created = ?", (old,))

    again = run_bench(config)
    assert (again.computed, again.skipped) == (0, first.computed)
    assert query(db, "SELECT COUNT(*), MIN(created), MAX(created) FROM items") == [
        (n_rows, old, old)]
    assert_same_scores(again.leaderboard, first.leaderboard)

    # a changed dataset option is a new run key: that dataset is computed again
    config.write_text(HEADER + MARKERS_DS + "sample = 4\n" + PBMC_DS)
    sampled = run_bench(config)
    assert (sampled.computed, sampled.skipped) == (3 * 4, 3 * n_clusters)
    mk = sampled.items[sampled.items["dataset"] == "mk"]
    assert mk.groupby("annotator").size().to_dict() == {a: 4 for a in BASELINES}
    assert (mk["created"] != old).all()
    assert query(db, "SELECT COUNT(DISTINCT run_key) FROM runs") == [(9,)]
    assert query(db, "SELECT COUNT(*) FROM items WHERE created = ?", (old,)) == [(n_rows,)]

    # rows deleted from one run are recomputed, and only those units
    key = sampled.items.loc[(sampled.items["annotator"] == "knowledge")
                            & (sampled.items["dataset"] == "pbmc"), "run_key"].iloc[0]
    units = ("3", "9")
    deleted = execute(db, "DELETE FROM items WHERE run_key = ? AND unit_id IN (?, ?)",
                      (key, *units))
    assert deleted >= 2
    fixed = run_bench(config)
    assert (fixed.computed, fixed.skipped) == (len(units), 3 * 4 + 3 * n_clusters - 2)
    redone = query(db, "SELECT DISTINCT unit_id FROM items WHERE created != ?", (old,))
    assert {u for (u,) in redone} - {r for r in mk["unit_id"]} == set(units)
    assert query(db, "SELECT COUNT(*) FROM items WHERE run_key = ?", (key,)) == [
        (len(pbmc_pairs()),)]
    assert_same_scores(fixed.leaderboard, sampled.leaderboard)


def test_rerun_recomputes_a_unit_with_some_of_its_rows_deleted(tmp_path):
    """A cell-level unit (cluster) has several rows; losing one of them redoes the unit."""
    config = write_inputs(tmp_path, HEADER + PBMC_DS, puzzles=False)
    db = tmp_path / "out" / "results.sqlite"
    first = run_bench(config)
    key, item = query(db, "SELECT run_key, item_id FROM items WHERE annotator = 'random' "
                          "AND unit_id = '0' LIMIT 1")[0]
    assert execute(db, "DELETE FROM items WHERE run_key = ? AND item_id = ?",
                   (key, item)) == 1
    again = run_bench(config)
    assert again.computed == 1
    assert query(db, "SELECT COUNT(*) FROM items WHERE run_key = ? AND item_id = ?",
                 (key, item)) == [(1,)]
    assert len(again.items) == len(first.items)
    assert_same_scores(again.leaderboard, first.leaderboard)


@pytest.mark.llm
def test_llm_run_interrupted_by_the_server_resumes(tmp_path, monkeypatch):
    from llama_server import MODEL_ALIAS, LlamaServer, require_llm_stack

    model = require_llm_stack()
    server = LlamaServer(model, tmp_path).start()
    try:
        # one completion per unit (no repairs) in plain text (no slow grammar sampling)
        n_rows, stop_at = 4, 2
        secret = "sk-bench-local-dummy-4b1d"
        monkeypatch.setenv("LLM4CELL_BENCH_TEST_KEY", secret)
        config = write_inputs(tmp_path, f"""
[bench]
output = "out"
chunk_size = 1

[[annotators]]
name = "smol"
backend = "openai:{MODEL_ALIAS}"
options = {{ base_url = "{server.base_url}", api_key_env = "LLM4CELL_BENCH_TEST_KEY", \
max_tokens = 16, batch_size = 1, concurrency = 1, retries = 0, repair_attempts = 0, \
json_mode = "none", timeout = 120 }}
""" + MARKERS_DS + f"limit = {n_rows}\n", puzzles=False)
        out = tmp_path / "out"
        db = out / "results.sqlite"
        seen: dict[str, int] = {}

        def stop_after_two(label: str, done: int, total: int) -> None:
            if not label.startswith("smol"):
                return
            start = seen.setdefault("start", done)  # first call: before its first unit
            if done - start == stop_at and "stopped" not in seen:
                seen["stopped"] = done
                server.stop()

        with pytest.raises(llm4cell.BackendError, match="re-run the same command to resume"
                           ) as e:
            run_bench(config, progress=stop_after_two)
        assert "stopped" in seen
        assert str(e.value).startswith("smol on mk: ")
        assert f"{n_rows + stop_at} finished items are stored" in str(e.value)
        stored = dict(query(db, "SELECT annotator, COUNT(*) FROM items GROUP BY annotator"))
        assert stored == {"knowledge": n_rows, "smol": stop_at}  # the grid runs knowledge first
        assert query(db, "SELECT complete FROM runs WHERE annotator = 'smol'") == [(0,)]
        for name in ("leaderboard.md", "leaderboard.csv", "items.csv", "report.html"):
            assert not (out / name).exists(), name
        first_ids = {u for (u,) in query(db, "SELECT unit_id FROM items WHERE annotator = "
                                             "'smol'")}

        server.start()
        served = server.completions_served("200")
        result = run_bench(config)
        new_requests = server.completions_served("200") - served
        # only the LLM units left, plus the two baselines not reached before
        left = n_rows - stop_at
        assert (result.computed, result.skipped) == (left + 2 * n_rows, n_rows + stop_at)
        smol = result.items[result.items["annotator"] == "smol"]
        assert len(smol) == n_rows
        later = smol[~smol["unit_id"].isin(first_ids)]
        assert len(later) == left
        # the server answered exactly what the re-run counted: one request per unit left
        assert new_requests == left == round(later["requests"].sum())
        assert later["cache_hits"].sum() == 0
        row = result.leaderboard.query("annotator == 'smol' and dataset == 'mk'").iloc[0]
        assert row["n_items"] == n_rows
        assert row["requests"] > new_requests  # the first run's requests are counted too
        assert row["tokens"] > 0
        assert query(db, "SELECT complete FROM runs WHERE annotator = 'smol'") == [(1,)]
        # the key never reaches the store or the outputs
        for path in out.iterdir():
            assert secret.encode() not in path.read_bytes(), path.name
    finally:
        server.stop()


# --------------------------------------------------------------------- bad configs

runner = CliRunner()
ONE_MARKERS = '[[datasets]]\nname = "a"\nkind = "markers"\npath = "markers.csv"\n'


@pytest.mark.parametrize(("text", "expected"), [
    (None, "no such file"),
    ("", "is empty"),
    (" \n\n", "is empty"),
    ("[bench\nname = 'x'\n", "cannot parse"),
    ('[[datasets]]\nname = "a"\nkind = "loom"\npath = "markers.csv"\ntruth_col = "truth"\n',
     "datasets.0.kind"),
    (ONE_MARKERS, "needs truth_col"),
    (ONE_MARKERS.replace("markers.csv", "missing.csv") + 'truth_col = "truth"\n',
     "missing.csv"),
    ('[[datasets]]\nname = "a"\nkind = "h5ad"\npath = "missing.h5ad"\nlabel_col = "x"\n',
     "missing.h5ad"),
    (ONE_MARKERS + 'truth_col = "nope"\n', "truth_col 'nope' is not a column"),
    ('[[annotators]]\nbackend = "foo:bar"\n' + ONE_MARKERS + 'truth_col = "truth"\n',
     "unknown backend 'foo:bar'"),
    ('[[annotators]]\nbackend = "openai:m"\noptions = { api_key = "sk-in-config-123" }\n'
     + ONE_MARKERS + 'truth_col = "truth"\n', "api_key may not be written"),
    ((ONE_MARKERS + 'truth_col = "truth"\n') * 2, "dataset names must be unique"),
    ('[bench]\nnmae = "x"\n' + ONE_MARKERS + 'truth_col = "truth"\n', "bench.nmae"),
], ids=["missing-file", "empty", "blank", "toml-syntax", "unknown-kind", "no-truth-col",
        "missing-markers", "missing-h5ad", "bad-truth-col", "unknown-backend", "api-key",
        "duplicate-names", "unknown-setting"])
def test_bad_config_fails_with_one_line_and_no_output(tmp_path, text, expected):
    (tmp_path / "markers.csv").write_text(MARKERS_CSV)
    config = tmp_path / "bench.toml"
    if text is not None:
        config.write_text(text)
    r = runner.invoke(app, ["bench", str(config)], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert r.exit_code == 2, r.output
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: ")
    assert expected in lines[0]
    assert "sk-in-config-123" not in r.output
    assert not (tmp_path / "bench_results").exists()  # the default output folder
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["markers.csv"] + (["bench.toml"] if text is not None else []))


# ----------------------------------------------------------------------------- YAML


def test_yaml_config_runs_like_toml(tmp_path, pbmc):
    (tmp_path / "markers.csv").write_text(MARKERS_CSV)
    pbmc.write_h5ad(tmp_path / "pbmc.h5ad")
    body = """
datasets:
  - name: mk
    kind: markers
    path: markers.csv
    truth_col: truth
    tissue: blood
  - name: pbmc
    kind: h5ad
    path: pbmc.h5ad
    label_col: bulk_labels
    level: cluster
    tissue: blood
"""
    yaml_cfg = tmp_path / "bench.yaml"
    yaml_cfg.write_text("bench:\n  name: yaml arena\n  output: out_yaml\n" + body)
    toml_cfg = tmp_path / "bench.toml"
    toml_cfg.write_text(
        '[bench]\nname = "yaml arena"\noutput = "out_toml"\n' + MARKERS_DS
        + PBMC_DS.replace('"scanpy:pbmc68k_reduced"', '"pbmc.h5ad"')
        .replace('groupby = "louvain"\n', "").replace('"cell"', '"cluster"'))
    r = runner.invoke(app, ["bench", str(yaml_cfg)], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert r.exit_code == 0, r.output
    assert "units computed" in r.stderr
    from_yaml = pd.read_csv(tmp_path / "out_yaml" / "leaderboard.csv")
    from_toml = run_bench(toml_cfg).leaderboard
    n_labels = pbmc.obs["bulk_labels"].nunique()
    kinds = from_yaml.set_index(["annotator", "dataset"])["kind"]
    assert kinds[("knowledge", "pbmc")] == "h5ad-cluster"
    assert from_yaml.set_index(["annotator", "dataset"]).loc[
        ("knowledge", "pbmc"), "n_items"] == n_labels
    cols = ["annotator", "dataset", "kind", "n_items", "agreement", "full_match"]
    pd.testing.assert_frame_equal(from_yaml[cols], from_toml[cols], check_dtype=False)
    assert (tmp_path / "out_yaml" / "report.html").is_file()
    assert not (tmp_path / "out_yaml" / "puzzles_by_n.png").exists()


def test_a_truth_naming_several_terms_counts_the_best_one():
    from llm4cell.bench._items import best_scores

    # B cell against "T cell or B cell" -> full match; against T cell alone -> 0;
    # a truth without a CL ID is left unscored (NaN), never counted as a miss
    table = best_scores(["CL:0000236", "CL:0000236", "CL:0000236"],
                         [["CL:0000084", "CL:0000236"], ["CL:0000084"], []])
    assert list(table.index) == [0, 1, 2]
    assert table.at[0, "agreement"] == 1.0
    assert table.at[1, "agreement"] == 0.0
    assert np.isnan(table.at[2, "agreement"])


# ------------------------------------------------------------- credentials in URLs

def test_credentials_in_urls_never_reach_outputs_store_or_stderr(tmp_path):
    """A URL with user info or a query, anywhere in a config (a comment, a name), is cut to
    scheme, host and path in the report, items, leaderboards, store and messages."""
    secret = "hunter2-bench-5e1a"
    url = f"http://user:{secret}@10.0.0.1:8080/v1?api_key={secret}"
    (tmp_path / "markers.csv").write_text(MARKERS_CSV)
    config = tmp_path / "bench.toml"
    config.write_text(f'# the old server was {url}\n[bench]\noutput = "out"\n\n'
                      f'[[annotators]]\nname = "kb via {url}"\nbackend = "knowledge"\n'
                      + MARKERS_DS)
    r = runner.invoke(app, ["bench", str(config)], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert r.exit_code == 0, r.output
    assert secret not in r.output
    out = tmp_path / "out"
    written = sorted(p.name for p in out.iterdir())
    assert {"report.html", "items.csv", "leaderboard.csv", "results.sqlite"} <= set(written)
    for path in out.iterdir():
        assert secret.encode() not in path.read_bytes(), path.name
    html = (out / "report.html").read_text()
    assert "the old server was http://10.0.0.1:8080/v1" in html  # the rest of the text stays
    assert "kb via http://10.0.0.1:8080/v1" in set(pd.read_csv(out / "items.csv")["annotator"])


def test_base_url_with_credentials_is_refused_before_anything_is_written(tmp_path):
    """bench passes annotator options through LLMOptions before any work (which refuses a
    key in base_url); the message names the option, never its value."""
    secret = "hunter2-bench-77c0"
    (tmp_path / "markers.csv").write_text(MARKERS_CSV)
    config = tmp_path / "bench.toml"
    config.write_text(f'[bench]\noutput = "out"\n\n[[annotators]]\nbackend = "openai:m"\n'
                      f'options = {{ base_url = "http://u:{secret}@127.0.0.1:9/v1" }}\n'
                      + MARKERS_DS)
    with pytest.raises(llm4cell.InputError, match=r"options\.base_url") as e:
        run_bench(config, check=False)
    assert secret not in str(e.value)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ paths and outputs


def test_paths_are_relative_to_the_config_folder_or_absolute_as_written(tmp_path,
                                                                        monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "markers.csv").write_text(MARKERS_CSV)
    folder = tmp_path / "cfg"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "m.csv").write_text(MARKERS_CSV)
    config = folder / "bench.toml"
    config.write_text(
        '[bench]\noutput = "res/../out"\n'
        + MARKERS_DS.replace("markers.csv", str(elsewhere / "markers.csv"))
        + MARKERS_DS.replace('"mk"', '"mk2"').replace("markers.csv", "sub/x/../m.csv"))
    monkeypatch.chdir(tmp_path)  # not the config's folder
    result = run_bench(config)
    assert set(result.items["dataset"]) == {"mk", "mk2"}
    assert (folder / "out" / "report.html").is_file()
    assert not (tmp_path / "out").exists()


def test_cache_path_is_relative_to_the_config_folder(tmp_path):
    from llm4cell.bench import load_config
    from llm4cell.bench._run import _entrants, _plan_paths

    config = tmp_path / "bench.toml"
    config.write_text('[[annotators]]\nbackend = "openai:m"\n'
                      'options = { cache_path = "cache/llm.sqlite" }\n' + MARKERS_DS)
    cfg, _ = load_config(config)
    entrants = _entrants(cfg)
    _plan_paths(cfg, config, None, entrants)
    opts = next(e for e in entrants if e.backend == "openai:m").llm_options()
    assert opts.cache_path == tmp_path / "cache" / "llm.sqlite"


def test_stale_temporaries_of_a_killed_run_are_removed(tmp_path):
    """Temporaries named for a dead process go; those of a live process stay."""
    import subprocess
    import sys

    config = write_inputs(tmp_path, HEADER + MARKERS_DS, puzzles=False)
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = [out / f".items.csv.llm4cell-tmp-{dead}-0a1b2c3d",
             out / f".report.html.llm4cell-tmp-{dead}-4e5f6a7b"]
    live = out / f".items.csv.llm4cell-tmp-{os.getppid()}-8c9d0e1f"
    for p in [*stale, live]:
        p.write_text("half")
    run_bench(config)
    assert not any(p.exists() for p in stale)
    assert live.exists()
    assert {p.name for p in out.iterdir() if "llm4cell-tmp" in p.name} == {live.name}


def test_a_failed_output_write_keeps_the_old_set_and_leaves_no_temporaries(tmp_path,
                                                                           monkeypatch):
    """A fake full disk while writing the report, the last file of the set (a real one
    cannot be provoked here): the new items and leaderboards must not replace the old
    set alone, and the error is one llm4cell error, not a traceback."""
    import errno

    import llm4cell.bench._run as bench

    config = write_inputs(tmp_path, HEADER + MARKERS_DS, puzzles=False)
    out = tmp_path / "out"
    run_bench(config)

    def files() -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in out.iterdir()
                if not p.name.startswith("results.sqlite")}

    old = files()
    config.write_text(HEADER + MARKERS_DS + "limit = 3\n")  # a new set would differ

    def full_disk(path: Path, html: str) -> None:
        path.write_text(html[:100])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(bench, "_write_html", full_disk)
    with pytest.raises(llm4cell.Llm4cellError, match="No space left on device"):
        run_bench(config)
    assert files() == old


def test_a_renamed_annotator_shows_its_new_name_on_a_rerun(tmp_path):
    """The name is not part of the run key: the stored rows are reused under the new name."""
    base = '[bench]\noutput = "out"\n\n[[annotators]]\nname = "{}"\nbackend = "knowledge"\n'
    config = write_inputs(tmp_path, base.format("first") + MARKERS_DS, puzzles=False)
    first = run_bench(config)
    config.write_text(base.format("second") + MARKERS_DS)
    again = run_bench(config)
    assert again.computed == 0
    assert set(again.items["annotator"]) == {"second", "random", "most-frequent"}
    board = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    assert "first" not in set(board["annotator"])
    assert len(again.items) == len(first.items)
