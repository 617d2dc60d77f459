"""The ``llm4cell`` command line, run as a real subprocess on real files."""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from conftest import cli_env, make_planted_counts

CSV_COLUMNS = [
    "group", "n_cells", "top_markers", "label", "ontology_id", "confidence",
    "candidate_2", "candidate_3", "candidate_4", "evidence",
]
CONTRACT_FLAGS = [
    "--tissue", "--species", "--groupby", "--backend", "--report", "--key-added", "--demo",
]


def run_cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
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
    proc = run_cli(
        "annotate", "in.h5ad", "-o", "out.h5ad", "--report", "r.html", "--groupby", "truth",
        cwd=d,
    )
    return d, proc, before


def test_annotate_exit_code_and_files(annotated_run) -> None:
    d, proc, before = annotated_run
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    after = snapshot(d)
    assert sorted(after) == ["in.h5ad", "out.csv", "out.h5ad", "r.html"]  # no temp files
    assert after["in.h5ad"] == before["in.h5ad"]  # input bytes unchanged


def test_annotate_h5ad_output(annotated_run) -> None:
    d, proc, _ = annotated_run
    assert proc.returncode == 0, proc.stderr
    out = ad.read_h5ad(d / "out.h5ad")
    src = ad.read_h5ad(d / "in.h5ad")
    assert out.shape == src.shape == (200, 195)
    assert list(out.obs_names) == list(src.obs_names)
    assert (out.X != src.X).nnz == 0  # counts written back untouched
    for col in ("cell_type", "cell_type_ontology_id", "cell_type_confidence"):
        assert col in out.obs, col
    conf = out.obs["cell_type_confidence"].to_numpy()
    assert np.all((conf >= 0) & (conf <= 1))
    rec = out.uns["llm4cell"]
    assert rec["groupby"] == "truth"
    assert rec["backend"] == "knowledge"
    groups = rec["groups"]
    assert sorted(groups.index) == sorted(src.obs["truth"].unique())
    # every cell carries the label of its group
    per_group = out.obs["truth"].astype(str).map(groups["label"])
    assert (out.obs["cell_type"].astype(str) == per_group).all()
    assert "cell_type_cluster" not in out.obs  # groupby given: no Leiden


def test_annotate_csv_table(annotated_run) -> None:
    d, proc, _ = annotated_run
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(d / "out.csv", keep_default_na=False)
    cols = [c for c in table.columns if c in CSV_COLUMNS]
    assert cols == CSV_COLUMNS, list(table.columns)  # all present, in contract order
    assert sorted(table["group"]) == ["B", "Hep", "Mono", "NK", "T"]
    assert table["n_cells"].tolist() == [40] * 5
    out = ad.read_h5ad(d / "out.h5ad")
    by_group = out.uns["llm4cell"]["groups"]
    for _, row in table.iterrows():
        assert row["label"] == by_group.loc[row["group"], "label"]
        assert 0.0 <= float(row["confidence"]) <= 1.0
        assert row["evidence"]
    assert any(str(m).startswith("CL:") for m in table["ontology_id"])


def test_annotate_html_report(annotated_run) -> None:
    d, proc, _ = annotated_run
    assert proc.returncode == 0, proc.stderr
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


def test_demo_run(tmp_path: Path) -> None:
    proc = run_cli("annotate", "--demo", "-o", "demo.h5ad", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(snapshot(tmp_path)) == ["demo.csv", "demo.h5ad"]
    out = ad.read_h5ad(tmp_path / "demo.h5ad")
    assert out.n_obs == 700
    assert out.uns["llm4cell"]["params"]["tissue"] == "blood"
    assert "cell_type_cluster" in out.obs  # no --groupby: Leiden clusters computed
    assert len(pd.read_csv(tmp_path / "demo.csv")) == out.obs["cell_type_cluster"].nunique()


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
}


def _make_case_dir(d: Path) -> None:
    src = make_planted_counts(n_per_type=20)
    src.write_h5ad(d / "in.h5ad")
    src.var_names = [f"XYZ{i}" for i in range(1, src.n_vars + 1)]
    src.write_h5ad(d / "nogene.h5ad")
    (d / "fake.h5ad").write_text("this is not an AnnData file\n")


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory: pytest.TempPathFactory):
    """Run every bad case once (two at a time), each in its own folder."""
    dirs = {}
    for case in BAD_CASES:
        d = tmp_path_factory.mktemp(f"bad_{case}")
        _make_case_dir(d)
        dirs[case] = (d, snapshot(d))
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {c: pool.submit(run_cli, *args, cwd=dirs[c][0]) for c, args in BAD_CASES.items()}
        procs = {c: f.result() for c, f in futures.items()}
    return {c: (procs[c], dirs[c][0], dirs[c][1]) for c in BAD_CASES}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_fails_cleanly(bad_runs, case: str) -> None:
    proc, d, before = bad_runs[case]
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert lines[-1] == errors[0]  # the error is the last word
    assert len(errors[0]) > len("error: ")
    assert EXPECTED_WORDS[case].lower() in errors[0].lower(), errors[0]
    assert snapshot(d) == before  # no output, no temp file, inputs byte-identical


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_stderr_is_exactly_one_line(bad_runs, case: str) -> None:
    proc, _, _ = bad_runs[case]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert proc.stdout.strip() == ""


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
    proc = run_cli("annotate", "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for flag in CONTRACT_FLAGS:
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", proc.stdout), flag


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
