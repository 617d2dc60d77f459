"""The ``llm4cell`` command line on real files: in-process through typer's ``CliRunner``,
plus a few true subprocess smoke tests (``python -m llm4cell``, the console script, a
``--debug`` traceback)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import typer
from click.testing import Result
from conftest import cli_env, make_planted_counts
from typer.testing import CliRunner

from llm4cell import LLMOptions, build_puzzles, write_puzzles
from llm4cell.cli import app
from llm4cell.cli._llm_options import FLAGS, LLMFlags, llm_flags
from llm4cell.puzzles import read_answers

CSV_COLUMNS = [
    "group", "n_cells", "top_markers", "label", "ontology_id", "confidence",
    "candidate_2", "candidate_3", "candidate_4", "evidence",
]
CONTRACT_FLAGS = [
    "--tissue", "--species", "--groupby", "--backend", "--report", "--key-added", "--demo",
]
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}
runner = CliRunner()


@contextlib.contextmanager
def _python_default_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Warnings as a plain ``python -m llm4cell`` run shows them (pytest's filters
    replaced by Python's defaults), collected so that a test can count them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("default")
        for cat in (DeprecationWarning, PendingDeprecationWarning, ImportWarning,
                    ResourceWarning):
            warnings.simplefilter("ignore", cat)
        yield caught


def invoke(*args: str, cwd: Path) -> tuple[Result, list[str]]:
    """Run ``llm4cell ARGS`` in-process inside ``cwd``: the result and the stderr lines a
    user would see (warnings included)."""
    with contextlib.chdir(cwd), _python_default_warnings() as caught:
        result = runner.invoke(app, list(args), env=ENV, prog_name="llm4cell")
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    lines += [f"{w.category.__name__}: {w.message}" for w in caught]
    return result, lines


def run_cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m llm4cell ARGS`` as a real child process."""
    return subprocess.run(
        [sys.executable, "-m", "llm4cell", *args], cwd=cwd, env=cli_env(), capture_output=True,
        text=True, timeout=timeout, check=False,
    )


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` (hidden ones too) with the SHA-256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _write_planted(path: Path, n_per_type: int = 40) -> Path:
    make_planted_counts(n_per_type=n_per_type).write_h5ad(path)
    return path


# ---------------------------------------------------------------------------- happy path


@pytest.fixture(scope="module")
def annotated_run(tmp_path_factory: pytest.TempPathFactory):
    """One real end-to-end run on planted counts, shared by the checks below."""
    d = tmp_path_factory.mktemp("cli_ok")
    _write_planted(d / "in.h5ad")
    before = snapshot(d)
    result, lines = invoke(
        "annotate", "in.h5ad", "-o", "out.h5ad", "--report", "r.html", "--groupby", "truth",
        cwd=d,
    )
    return d, result, lines, before


def test_annotate_exit_code_and_files(annotated_run) -> None:
    d, result, lines, before = annotated_run
    assert result.exit_code == 0, (result.exception, lines)
    assert result.exception is None
    after = snapshot(d)
    assert sorted(after) == ["in.h5ad", "out.csv", "out.h5ad", "r.html"]  # no temp files
    assert after["in.h5ad"] == before["in.h5ad"]  # input bytes unchanged
    assert lines[-3:] == ["Wrote out.h5ad", "Wrote out.csv", "Wrote r.html"]
    assert not [ln for ln in lines if "Warning" in ln], lines


def test_annotate_h5ad_output(annotated_run) -> None:
    d, result, _, _ = annotated_run
    assert result.exit_code == 0, result.exception
    out = ad.read_h5ad(d / "out.h5ad")
    src = ad.read_h5ad(d / "in.h5ad")
    assert out.shape == src.shape == (200, 195)
    assert list(out.obs_names) == list(src.obs_names)
    assert (out.X != src.X).nnz == 0  # counts written back untouched
    for col in ("llm4cell", "llm4cell_ontology_id", "llm4cell_confidence"):
        assert col in out.obs, col
    assert "cell_type" not in out.obs  # the default key is not a CELLxGENE column
    conf = out.obs["llm4cell_confidence"].to_numpy()
    assert np.all((conf >= 0) & (conf <= 1))
    rec = out.uns["llm4cell"]["llm4cell"]  # provenance per key
    assert rec["groupby"] == "truth"
    assert rec["backend"] == "knowledge"
    groups = rec["groups"]
    assert sorted(groups.index) == sorted(src.obs["truth"].unique())
    # every cell carries the label of its group
    per_group = out.obs["truth"].astype(str).map(groups["label"])
    assert (out.obs["llm4cell"].astype(str) == per_group).all()
    assert "llm4cell_cluster" not in out.obs  # groupby given: no Leiden


def test_annotate_csv_table(annotated_run) -> None:
    d, result, _, _ = annotated_run
    assert result.exit_code == 0, result.exception
    table = pd.read_csv(d / "out.csv", keep_default_na=False)
    cols = [c for c in table.columns if c in CSV_COLUMNS]
    assert cols == CSV_COLUMNS, list(table.columns)  # all present, in contract order
    assert sorted(table["group"]) == ["B", "Hep", "Mono", "NK", "T"]
    assert table["n_cells"].tolist() == [40] * 5
    out = ad.read_h5ad(d / "out.h5ad")
    by_group = out.uns["llm4cell"]["llm4cell"]["groups"]
    for _, row in table.iterrows():
        assert row["label"] == by_group.loc[row["group"], "label"]
        assert 0.0 <= float(row["confidence"]) <= 1.0
        assert row["evidence"]
    assert any(str(m).startswith("CL:") for m in table["ontology_id"])


def test_annotate_prints_every_label(annotated_run) -> None:
    """stdout holds the result table: every label and CL ID written to the CSV."""
    d, result, _, _ = annotated_run
    assert result.exit_code == 0, result.exception
    table = pd.read_csv(d / "out.csv", keep_default_na=False)
    assert "llm4cell annotation" in result.stdout
    for _, row in table.iterrows():
        assert row["label"] in result.stdout
        assert row["ontology_id"] in result.stdout


def test_annotate_html_report(annotated_run) -> None:
    d, result, _, _ = annotated_run
    assert result.exit_code == 0, result.exception
    html = (d / "r.html").read_text(encoding="utf-8")
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    assert len(images) >= 2  # UMAP and dot plot
    for img in images:
        assert base64.b64decode(img)[:8] == b"\x89PNG\r\n\x1a\n"
    external = re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert external == []
    assert not re.search(r"""@import|url\(\s*["']?(?:https?:)?//""", html, re.I)
    assert "<script" not in html.lower()
    for group in ("B", "Hep", "Mono", "NK", "T"):
        assert f"<td>{group}</td>" in html


@pytest.mark.slow
def test_demo_run(tmp_path: Path) -> None:
    result, _ = invoke("annotate", "--demo", "-o", "demo.h5ad", cwd=tmp_path)
    assert result.exit_code == 0, result.exception
    assert sorted(snapshot(tmp_path)) == ["demo.csv", "demo.h5ad"]
    out = ad.read_h5ad(tmp_path / "demo.h5ad")
    assert out.n_obs == 700
    assert out.uns["llm4cell"]["llm4cell"]["params"]["tissue"] == "blood"
    assert "llm4cell_cluster" in out.obs  # no --groupby: Leiden clusters computed
    assert len(pd.read_csv(tmp_path / "demo.csv")) == out.obs["llm4cell_cluster"].nunique()


# ---------------------------------------------------------------------------- bad input

#: case -> arguments after ``llm4cell`` (run inside a folder holding in.h5ad etc.)
BAD_CASES: dict[str, list[str]] = {
    "missing_file": ["annotate", "missing.h5ad", "-o", "out.h5ad"],
    "not_anndata": ["annotate", "fake.h5ad", "-o", "out.h5ad"],
    "output_is_input": ["annotate", "in.h5ad", "-o", "in.h5ad"],
    "csv_is_input": ["annotate", "in.h5ad", "-o", "out.h5ad", "--csv", "in.h5ad"],
    "report_is_input": ["annotate", "in.h5ad", "-o", "out.h5ad", "--report", "in.h5ad"],
    "csv_is_output": ["annotate", "in.h5ad", "-o", "out.h5ad", "--csv", "out.h5ad"],
    "report_is_csv": ["annotate", "in.h5ad", "-o", "out.h5ad", "--report", "out.csv"],
    "output_not_h5ad": ["annotate", "in.h5ad", "-o", "out.txt"],
    "missing_groupby": ["annotate", "in.h5ad", "-o", "out.h5ad", "--groupby", "nope"],
    "unknown_backend": ["annotate", "in.h5ad", "-o", "out.h5ad", "--backend", "nope"],
    "no_gene_matches": ["annotate", "nogene.h5ad", "-o", "out.h5ad", "--groupby", "truth"],
    "data_and_demo": ["annotate", "in.h5ad", "--demo", "-o", "out.h5ad"],
    "neither_data_nor_demo": ["annotate", "-o", "out.h5ad"],
    "llm_flag_out_of_range": ["annotate", "in.h5ad", "-o", "out.h5ad", "--backend",
                              "openai:m", "--batch-size", "0"],
    "llm_flag_of_another_command": ["puzzles", "solve", "p.jsonl", "-o", "a.jsonl",
                                    "--batch-size", "2"],
}
#: a word the one-line message must contain, per case
EXPECTED_WORDS: dict[str, str] = {
    "missing_file": "missing.h5ad",
    "not_anndata": "not a readable anndata",
    "output_is_input": "is the input file",
    "csv_is_input": "is the input file",
    "report_is_input": "is the input file",
    "csv_is_output": "share the path",
    "report_is_csv": "share the path",
    "output_not_h5ad": ".h5ad",
    "missing_groupby": "'nope' not found",
    "unknown_backend": "unknown backend",
    "no_gene_matches": "marker database",
    "data_and_demo": "--demo",
    "neither_data_nor_demo": "--demo",
    "llm_flag_out_of_range": "--batch-size",
    "llm_flag_of_another_command": "no such option: --batch-size",
}


def _make_case_dir(d: Path) -> None:
    src = make_planted_counts(n_per_type=20)
    src.write_h5ad(d / "in.h5ad")
    src.var_names = [f"XYZ{i}" for i in range(1, src.n_vars + 1)]
    src.write_h5ad(d / "nogene.h5ad")
    (d / "fake.h5ad").write_text("this is not an AnnData file\n")


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory: pytest.TempPathFactory):
    """Run every bad case once, each in its own folder."""
    runs = {}
    for case, args in BAD_CASES.items():
        d = tmp_path_factory.mktemp(f"bad_{case}")
        _make_case_dir(d)
        before = snapshot(d)
        result, lines = invoke(*args, cwd=d)
        runs[case] = (result, lines, d, before)
    return runs


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_fails_cleanly(bad_runs, case: str) -> None:
    result, lines, d, before = bad_runs[case]
    assert result.exit_code == 2, (result.exit_code, result.exception, lines)
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, lines
    assert lines[-1] == errors[0]  # the error is the last word
    assert len(errors[0]) > len("error: ")
    assert EXPECTED_WORDS[case].lower() in errors[0].lower(), errors[0]
    assert snapshot(d) == before  # no output, no temp file, inputs byte-identical


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_stderr_is_exactly_one_line(bad_runs, case: str) -> None:
    result, lines, _, _ = bad_runs[case]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert result.stdout.strip() == ""


def test_debug_shows_traceback(tmp_path: Path) -> None:
    proc = run_cli("annotate", "missing.h5ad", "-o", "out.h5ad", "--debug", cwd=tmp_path)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr
    assert "InputError" in proc.stderr
    assert "no such file" in proc.stderr
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- help


def test_top_level_help_lists_annotate(tmp_path: Path) -> None:
    proc = run_cli("--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"(?m)^\W*annotate\b", proc.stdout), proc.stdout


def test_annotate_help_lists_contract_flags(tmp_path: Path) -> None:
    result, _ = invoke("annotate", "--help", cwd=tmp_path)
    assert result.exit_code == 0, result.exception
    for flag in CONTRACT_FLAGS:
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", result.stdout), flag


def test_console_script_matches_module(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("llm4cell")
    if not script.exists():
        pytest.skip("console script not installed next to the interpreter")
    proc = subprocess.run(
        [str(script), "annotate", "missing.h5ad", "-o", "out.h5ad"], cwd=tmp_path, env=cli_env(),
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error:")
    assert "Traceback" not in proc.stderr


# ------------------------------------------------------------------- the option contract

_LLM_FLAGS = {
    "--base-url", "--api-key-env", "--api-key", "--strategy", "--batch-size",
    "--concurrency", "--timeout", "--retries", "--max-tokens", "--json-mode", "--cache",
    "--no-cache", "--llm-when", "--uncertain-below", "--no-discuss", "--prices",
}
_SOLVE_LLM_FLAGS = _LLM_FLAGS - {"--strategy", "--batch-size", "--llm-when",
                                 "--uncertain-below", "--no-discuss"}
#: Every command's options and arguments, as recorded before the CLI was split into one
#: module per command (the GUIDE contract: names stay).
OPTIONS: dict[str, set[str]] = {
    "annotate": _LLM_FLAGS | {
        "data", "-o", "--output", "--tissue", "--species", "--groupby", "--backend",
        "--report", "--csv", "--key-added", "--overwrite-key", "--layer", "--resolution",
        "--n-markers", "--random-state", "--demo", "--debug"},
    "markers": _LLM_FLAGS | {
        "markers", "-o", "--output", "--backend", "--tissue", "--species", "--n-markers",
        "--debug"},
    "score": {
        "pred", "--truth", "--id-col", "--pred-col", "--truth-col", "--tissue-col",
        "--confidence-col", "--weight-col", "--by", "--json", "--csv", "--debug"},
    "puzzles build": {
        "data", "-o", "--output", "--label-col", "--donor-col", "--batch-col",
        "--context-cols", "--label-id-col", "--n-min", "--n-max", "--top-genes", "--per-n",
        "--seed", "--tissue", "--species", "--layer", "--debug"},
    "puzzles solve": _SOLVE_LLM_FLAGS | {
        "puzzles_path", "-o", "--output", "--backend", "--no-assignment", "--seed",
        "--debug"},
    "puzzles score": {"answers_path", "--json", "--csv", "--debug"},
    "bench": {"config", "-o", "--output", "--debug"},
    "types": {"--tissue", "--search", "-o", "--output", "--debug"},
    "describe": {"name", "--n-markers", "--debug"},
}


def _commands() -> dict[str, Any]:
    root = typer.main.get_command(app)
    found = {}
    for name, cmd in root.commands.items():  # type: ignore[attr-defined]
        subs = getattr(cmd, "commands", None)
        found.update({f"{name} {s}": c for s, c in subs.items()} if subs else {name: cmd})
    return found


def test_every_command_keeps_its_options() -> None:
    commands = _commands()
    assert set(commands) == set(OPTIONS)
    for name, cmd in commands.items():
        names = {n for p in cmd.params for n in (*p.opts, *getattr(p, "secondary_opts", []))
                 if p.name != "help"}
        assert names == OPTIONS[name], (name, names ^ OPTIONS[name])


def test_llm_flags_are_one_panel_with_the_api_defaults() -> None:
    """The LLM flags sit in the "LLM backends" panel of --help, everything else not; a
    command line without them gives LLMOptions' own defaults (the CLI cannot drift)."""
    for name, cmd in _commands().items():
        panel = {o for p in cmd.params if getattr(p, "rich_help_panel", None) == "LLM backends"
                 for o in p.opts}
        expected = OPTIONS[name] & _LLM_FLAGS
        assert panel == expected, (name, panel ^ expected)
    assert LLMFlags({}).options("openai:m") == LLMOptions()
    assert LLMFlags({}).options(" Knowledge ") is None


def test_llm_flags_reach_llm_options(tmp_path: Path) -> None:
    """Every LLM flag given on a command line arrives in the command's LLMOptions."""
    prices = tmp_path / "prices.json"
    prices.write_text('{"m": [1.5, 2.5]}', encoding="utf-8")
    seen: list[LLMOptions | None] = []
    probe = typer.Typer()

    @probe.command()
    @llm_flags()
    def cmd(backend: str = "openai:m", debug: bool = False, *, llm: LLMFlags) -> None:
        seen.append(llm.options(backend))

    args = ["--base-url", "http://127.0.0.1:9/v1", "--api-key-env", "MY_KEY",
            "--strategy", "cot", "--batch-size", "7", "--concurrency", "3", "--timeout", "9.5",
            "--retries", "2", "--max-tokens", "300", "--json-mode", "json_object",
            "--cache", str(tmp_path / "c.sqlite"), "--no-cache", "--llm-when", "uncertain",
            "--uncertain-below", "0.25", "--no-discuss", "--prices", str(prices)]
    assert {a for a in args if a.startswith("--")} == _LLM_FLAGS - {"--api-key"}
    result = runner.invoke(probe, [*args, "--api-key", "sk-test"])
    assert result.exit_code == 0, result.output
    got = seen[0]
    assert got is not None
    expected = {"base_url": "http://127.0.0.1:9/v1", "api_key_env": "MY_KEY",
                "api_key": "sk-test", "strategy": "cot", "batch_size": 7, "concurrency": 3,
                "timeout": 9.5, "retries": 2, "max_tokens": 300, "json_mode": "json_object",
                "cache_path": tmp_path / "c.sqlite", "cache": False, "llm_when": "uncertain",
                "uncertain_below": 0.25, "discuss": False}
    assert {k: getattr(got, k) for k in expected} == expected
    assert got.prices["m"] == (1.5, 2.5)
    assert len(FLAGS) == len(_LLM_FLAGS)


def test_puzzles_solve_checks_llm_flags_only_for_llm_backends(tmp_path: Path) -> None:
    """random uses no LLM, so its LLM flags are not checked (as before the flags were
    declared once); an LLM backend refuses the same flag in one line, writing nothing."""
    puzzles = build_puzzles(make_planted_counts(n_per_type=10), label_col="truth", n_min=3,
                            n_max=4, per_n=2, top_genes=10)
    write_puzzles(puzzles, tmp_path / "p.jsonl")
    result, lines = invoke("puzzles", "solve", "p.jsonl", "-o", "a.jsonl", "--backend",
                           "random", "--timeout", "0", cwd=tmp_path)
    assert result.exit_code == 0, (result.exception, lines)
    assert len(read_answers(tmp_path / "a.jsonl")) == len(puzzles) == 4
    assert lines[-1] == "Wrote a.jsonl"
    result, lines = invoke("puzzles", "solve", "p.jsonl", "-o", "b.jsonl", "--backend",
                           "openai:m", "--timeout", "0", cwd=tmp_path)
    assert result.exit_code == 2
    assert len(lines) == 1 and lines[0].startswith("error: --timeout"), lines
    assert not (tmp_path / "b.jsonl").exists()
