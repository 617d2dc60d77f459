"""Bad input for ``llm4cell annotate``, ``markers`` and ``score``: one table, one promise.

Every row must end with exit code 2, exactly one non-empty stderr line (``error: ...``,
no traceback, no warning), nothing written (no output, no temporary file) and every
input byte-identical (SHA-256 of every file in the run's folder before and after).
The commands run in-process through typer's ``CliRunner`` on tiny files built here.

Below the table: outputs are written as a set (all new files or none) and the
temporary files of a killed writer are removed by the next run.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy  # noqa: F401  (import-time warnings stay out of the cases)
from conftest import make_planted_counts
from scipy import sparse
from test_io import write_10x_mtx
from typer.testing import CliRunner

import llm4cell
from llm4cell.cli import app

runner = CliRunner()
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}
TMP_PATTERN = re.compile(r"\.llm4cell-tmp-\d+")

# ------------------------------------------------------------------------ input files

MARKERS = 'id,markers\n1,"CD3D,CD3E,IL7R"\n2,"MS4A1,CD79A,CD19"\n'
PRED = "id,prediction,confidence\na,B cell,0.5\nb,T cell,0.8\n"
TRUTH = "id,truth\na,B cell\nb,T cell\n"


def _unsampled_row_matrix(value: float) -> ad.AnnData:
    """Dense counts with more than 4,000 cells, so that the sampled matrix check skips
    odd rows; row 1 holds ``value``."""
    big = make_planted_counts(n_per_type=801)
    x = big.X.toarray()
    x[1, 0] = value
    big.X = x
    return big


def _write_inputs(d: Path) -> None:
    src = make_planted_counts(n_per_type=8)  # 40 cells x 195 genes, sparse counts
    src.write_h5ad(d / "in.h5ad")
    cxg = src.copy()
    cxg.obs["cell_type"] = cxg.obs["truth"].astype(str)  # CELLxGENE's own column
    cxg.write_h5ad(d / "cxg.h5ad")
    src[:1].copy().write_h5ad(d / "one_cell.h5ad")
    src[:0].copy().write_h5ad(d / "zero_cells.h5ad")
    src[:, :0].copy().write_h5ad(d / "zero_genes.h5ad")
    zeros = src.copy()
    zeros.X = sparse.csr_matrix(zeros.shape, dtype=np.float32)
    zeros.write_h5ad(d / "zeros.h5ad")
    for name, value in (("nan", np.nan), ("inf", np.inf)):
        bad = src.copy()
        bad.X = bad.X.toarray()
        bad.X[3, 5] = value
        bad.write_h5ad(d / f"{name}.h5ad")
    nogene = src.copy()
    nogene.var_names = [f"XYZ{i}" for i in range(1, nogene.n_vars + 1)]
    nogene.write_h5ad(d / "nogene.h5ad")
    groups = src.copy()
    groups.obs["one"] = "all"
    groups.obs["allnan"] = pd.Categorical([None] * groups.n_obs, categories=["x"])
    groups.write_h5ad(d / "groups.h5ad")
    odd = src.copy()
    odd.var_names = [odd.var_names[0], *odd.var_names[:-1]]  # the first gene twice
    odd.write_h5ad(d / "dup_genes.h5ad")
    odd = src.copy()
    odd.obs_names = [odd.obs_names[0], *odd.obs_names[:-1]]  # the first cell twice
    odd.write_h5ad(d / "dup_cells.h5ad")
    odd = src.copy()
    odd.obs["truth"] = odd.obs["truth"].astype(object).where(np.arange(odd.n_obs) % 10 != 0)
    odd.obs["truth"] = odd.obs["truth"].astype("category")
    odd.write_h5ad(d / "nan_groups.h5ad")
    _unsampled_row_matrix(-1.0).write_h5ad(d / "neg_row.h5ad")
    _unsampled_row_matrix(2.5).write_h5ad(d / "frac_row.h5ad")
    write_10x_mtx(make_planted_counts(n_per_type=4), d / "mtx")
    (d / "fake.h5ad").write_text("this is not an AnnData file\n")
    (d / "notes.txt").write_text("a file, not a folder\n")
    (d / "sub").mkdir()
    # markers
    (d / "m.csv").write_text(MARKERS)
    (d / "m_empty.csv").write_text("")
    (d / "m_header.csv").write_text("id,markers\n")
    (d / "m_cols.csv").write_text("foo,bar\n1,2\n")
    (d / "m_seurat_nofc.csv").write_text("p_val_adj,cluster,gene\n1e-9,0,CD3D\n")
    (d / "m_dup.csv").write_text('id,markers\n1,"CD3D"\n1,"MS4A1"\n')
    (d / "m_species.csv").write_text('id,markers,species\n1,"CD3D",zebrafish\n')
    (d / "m_nonnum.csv").write_text(
        "p_val,avg_log2FC,pct.1,pct.2,p_val_adj,cluster,gene\n1,high,1,1,1,0,CD3D\n")
    (d / "m_nogenes.csv").write_text('id,markers\n1,""\n')
    # score
    (d / "pred.csv").write_text(PRED)
    (d / "truth.csv").write_text(TRUTH)
    (d / "truth_noid.csv").write_text("truth\nB cell\nT cell\n")
    (d / "truth_otherids.csv").write_text("id,truth\nx,B cell\ny,T cell\n")
    (d / "pred_empty.csv").write_text("")
    (d / "pred_header.csv").write_text("id,prediction\n")
    (d / "pred_badid.csv").write_text("id,prediction\na,CL:9999999\nb,T cell\n")
    (d / "pred_conf.csv").write_text(PRED.replace("0.8", "1.5"))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bad_inputs")
    _write_inputs(d)
    return d


# ------------------------------------------------------------------------ the table

#: case -> (command line after ``llm4cell``, a fragment the one-line message must contain)
CASES: dict[str, tuple[str, str]] = {
    "annotate missing file": ("annotate missing.h5ad -o o.h5ad", "no such file"),
    "annotate not an h5ad": ("annotate fake.h5ad -o o.h5ad", "not a readable anndata"),
    "annotate unsupported suffix": ("annotate m.csv -o o.h5ad", "unsupported format"),
    "annotate neither data nor demo": ("annotate -o o.h5ad", "--demo"),
    "annotate data and demo": ("annotate in.h5ad --demo -o o.h5ad", "--demo"),
    "annotate output is input": ("annotate in.h5ad -o in.h5ad", "is the input"),
    "annotate output not .h5ad": ("annotate in.h5ad -o o.txt", ".h5ad"),
    "annotate csv is input": ("annotate in.h5ad -o o.h5ad --csv in.h5ad", "is the input"),
    "annotate report is input": ("annotate in.h5ad -o o.h5ad --report in.h5ad", "is the input"),
    "annotate csv is output": ("annotate in.h5ad -o o.h5ad --csv o.h5ad", "share the path"),
    "annotate report is csv": ("annotate in.h5ad -o o.h5ad --report o.csv", "share the path"),
    "annotate csv replaces a 10x input file": (
        "annotate mtx -o o.h5ad --csv mtx/barcodes.tsv.gz", "input"),
    "annotate output is a folder": ("annotate in.h5ad -o sub", ".h5ad"),
    "annotate output in /proc": (
        "annotate in.h5ad -o /proc/o.h5ad --groupby truth", "cannot write"),
    "annotate output below /proc": (
        "annotate in.h5ad -o /proc/x/y/o.h5ad --groupby truth", "cannot write"),
    "annotate output parent is a file": (
        "annotate in.h5ad -o notes.txt/o.h5ad --groupby truth", "notes.txt"),
    "annotate csv in /proc": (
        "annotate in.h5ad -o o.h5ad --csv /proc/o.csv --groupby truth", "cannot write"),
    "annotate csv parent is a file": (
        "annotate in.h5ad -o o.h5ad --csv notes.txt/o.csv --groupby truth", "notes.txt"),
    "annotate csv is a folder": ("annotate in.h5ad -o o.h5ad --csv sub --groupby truth", "folder"),
    "annotate report in /proc": (
        "annotate in.h5ad -o o.h5ad --report /proc/r.html --groupby truth", "cannot write"),
    "annotate report parent is a file": (
        "annotate in.h5ad -o o.h5ad --report notes.txt/r.html --groupby truth", "notes.txt"),
    "annotate key empty": (
        "annotate in.h5ad -o o.h5ad --key-added '' --groupby truth", "--key-added"),
    "annotate key blank": (
        "annotate in.h5ad -o o.h5ad --key-added '  ' --groupby truth", "--key-added"),
    "annotate key with slash": (
        "annotate in.h5ad -o o.h5ad --key-added a/b --groupby truth", "--key-added"),
    "annotate key exists in obs": (
        "annotate cxg.h5ad -o o.h5ad --groupby truth --key-added cell_type", "'cell_type'"),
    "annotate key is the groupby column": (
        "annotate in.h5ad -o o.h5ad --key-added truth --groupby truth", "'truth'"),
    "annotate resolution negative": ("annotate in.h5ad -o o.h5ad --resolution -1", "--resolution"),
    "annotate resolution zero": ("annotate in.h5ad -o o.h5ad --resolution 0", "--resolution"),
    "annotate resolution nan": ("annotate in.h5ad -o o.h5ad --resolution nan", "--resolution"),
    "annotate n-markers zero": (
        "annotate in.h5ad -o o.h5ad --n-markers 0 --groupby truth", "--n-markers"),
    "annotate random-state negative": (
        "annotate in.h5ad -o o.h5ad --random-state -1", "--random-state"),
    "annotate unknown backend": (
        "annotate in.h5ad -o o.h5ad --backend nope --groupby truth", "unknown backend"),
    "annotate species not a choice": ("annotate in.h5ad -o o.h5ad --species rat", "--species"),
    "annotate resolution not a number": (
        "annotate in.h5ad -o o.h5ad --resolution high", "--resolution"),
    "annotate unknown option": ("annotate in.h5ad -o o.h5ad --colour", "--colour"),
    "annotate missing groupby column": (
        "annotate in.h5ad -o o.h5ad --groupby nope", "'nope' not found"),
    "annotate groupby one group": ("annotate groups.h5ad -o o.h5ad --groupby one", "1 group"),
    "annotate groupby all NaN": ("annotate groups.h5ad -o o.h5ad --groupby allnan", "0 group"),
    "annotate one cell without groupby": ("annotate one_cell.h5ad -o o.h5ad", "cells"),
    "annotate one cell with groupby": (
        "annotate one_cell.h5ad -o o.h5ad --groupby truth", "1 group"),
    "annotate zero cells": ("annotate zero_cells.h5ad -o o.h5ad", "0 cells"),
    "annotate zero genes": ("annotate zero_genes.h5ad -o o.h5ad --groupby truth", "0 genes"),
    "annotate all-zero matrix": ("annotate zeros.h5ad -o o.h5ad --groupby truth", "only zeros"),
    "annotate NaN in X": ("annotate nan.h5ad -o o.h5ad --groupby truth", "NaN or infinite"),
    "annotate inf in X": ("annotate inf.h5ad -o o.h5ad --groupby truth", "NaN or infinite"),
    "annotate no gene matches": (
        "annotate nogene.h5ad -o o.h5ad --groupby truth", "marker database"),
    "annotate unknown layer": (
        "annotate in.h5ad -o o.h5ad --layer nope --groupby truth", "layer 'nope' not found"),
    "annotate negative count in an unsampled row": (
        "annotate neg_row.h5ad -o o.h5ad --groupby truth", "negative"),
    "annotate fractional count in an unsampled row": (
        "annotate frac_row.h5ad -o o.h5ad --groupby truth", "2.5"),
    "markers missing file": ("markers nope.csv -o p.csv", "no such file"),
    "markers empty file": ("markers m_empty.csv -o p.csv", "empty"),
    "markers header only": ("markers m_header.csv -o p.csv", "no rows"),
    "markers unknown columns": ("markers m_cols.csv -o p.csv", "cannot tell"),
    "markers seurat without fold change": ("markers m_seurat_nofc.csv -o p.csv", "cannot tell"),
    "markers repeated ids": ("markers m_dup.csv -o p.csv", "repeat"),
    "markers unknown species": ("markers m_species.csv -o p.csv", "unknown species"),
    "markers non-numbers": ("markers m_nonnum.csv -o p.csv", "non-numbers"),
    "markers no marker genes": ("markers m_nogenes.csv -o p.csv", "no cluster has a marker"),
    "markers h5ad given": ("markers in.h5ad -o p.csv", "in.h5ad"),
    "markers n-markers zero": ("markers m.csv -o p.csv --n-markers 0", "--n-markers"),
    "markers unknown backend": ("markers m.csv -o p.csv --backend nope", "unknown backend"),
    "markers output is input": ("markers m.csv -o m.csv", "is the input"),
    "markers output is a folder": ("markers m.csv -o sub", "folder"),
    "markers output in /proc": ("markers m.csv -o /proc/p.csv", "cannot write"),
    "markers output parent is a file": ("markers m.csv -o notes.txt/p.csv", "notes.txt"),
    "markers missing argument": ("markers -o p.csv", "MARKERS"),
    "score missing pred": ("score nope.csv --truth truth.csv", "no such file"),
    "score missing truth": ("score pred.csv --truth nope.csv", "no such file"),
    "score empty pred": ("score pred_empty.csv --truth truth.csv", "empty"),
    "score header-only pred": ("score pred_header.csv --truth truth.csv", "no rows"),
    "score truth without ids": ("score pred.csv --truth truth_noid.csv", "id column"),
    "score truth with other ids": ("score pred.csv --truth truth_otherids.csv", "do not match"),
    "score unknown CL ID": ("score pred_badid.csv --truth truth.csv", "CL:9999999"),
    "score confidence above 1": (
        "score pred_conf.csv --truth truth.csv --confidence-col confidence", "1.5"),
    "score missing pred column": (
        "score pred.csv --truth truth.csv --pred-col guess", "--pred-col"),
    "score h5ad without truth col": ("score in.h5ad", "--truth-col"),
    "score not an h5ad": ("score fake.h5ad --truth-col truth", "not a readable anndata"),
    "score csv is input": ("score pred.csv --truth truth.csv --csv truth.csv", "is the input"),
    "score json is input": ("score pred.csv --truth truth.csv --json pred.csv", "is the input"),
    "score json is csv": ("score pred.csv --truth truth.csv --json r.txt --csv r.txt", "share"),
    "score csv in /proc": ("score pred.csv --truth truth.csv --csv /proc/s.csv", "cannot write"),
    "score json parent is a file": (
        "score pred.csv --truth truth.csv --json notes.txt/s.json", "notes.txt"),
    "score csv is a folder": ("score pred.csv --truth truth.csv --csv sub", "folder"),
}


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` (hidden ones too) with the SHA-256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _copy_inputs(src: Path, dst: Path, args: list[str]) -> None:
    """Copy the input files an argument list names (and the plain file and folder)."""
    names = {a.split("/")[0] for a in args if not a.startswith("/")} | {"notes.txt", "sub"}
    for name in names - {"", ".", ".."}:
        p = src / name
        if p.is_dir():
            shutil.copytree(p, dst / name)
        elif p.is_file():
            shutil.copy2(p, dst / name)


@contextlib.contextmanager
def python_default_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Warnings as a plain ``python -m llm4cell`` run would show them (pytest's own
    filters and recording replaced), collected so that a test can count them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("default")
        for cat in (DeprecationWarning, PendingDeprecationWarning, ImportWarning,
                    ResourceWarning):
            warnings.simplefilter("ignore", cat)
        yield caught


def invoke(args: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch):
    """Run ``llm4cell ARGS`` in-process inside ``cwd``; return the result and the stderr
    lines a user would see (warnings included)."""
    monkeypatch.chdir(cwd)
    with python_default_warnings() as caught:
        result = runner.invoke(app, args, env=ENV)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    lines += [f"{w.category.__name__}: {w.message}" for w in caught]
    return result, lines


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_nothing_written(
    case: str, inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    command, fragment = CASES[case]
    args = shlex.split(command)
    _copy_inputs(inputs, tmp_path, args)
    before = snapshot(tmp_path)
    result, lines = invoke(args, tmp_path, monkeypatch)
    assert result.exit_code == 2, (result.exit_code, result.exception, result.output)
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and len(lines[0]) > len("error: "), lines
    assert "Traceback" not in result.output
    assert fragment.lower() in lines[0].lower(), lines[0]
    assert result.stdout.strip() == ""
    assert snapshot(tmp_path) == before  # no output, no temporary file, inputs unchanged


@pytest.mark.parametrize("name", ["dup_genes", "dup_cells", "nan_groups"])
def test_odd_but_usable_input_runs(
    name: str, inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Repeated gene names (made unique on llm4cell's working copy), repeated cell names
    (kept as the user's) and cells without a group (labelled unknown) are usable."""
    shutil.copy2(inputs / f"{name}.h5ad", tmp_path / "in.h5ad")
    before = snapshot(tmp_path)
    result, lines = invoke(["annotate", "in.h5ad", "-o", "o.h5ad", "--groupby", "truth"],
                           tmp_path, monkeypatch)
    assert result.exit_code == 0, (result.exception, lines)
    assert not any("Traceback" in ln for ln in lines)
    out = ad.read_h5ad(tmp_path / "o.h5ad")
    src = ad.read_h5ad(tmp_path / "in.h5ad")
    assert list(out.obs_names) == list(src.obs_names)
    assert list(out.var_names) == list(src.var_names)
    no_group = src.obs["truth"].isna().to_numpy()
    assert (out.obs["llm4cell"].astype(str)[no_group] == "unknown").all()
    assert (out.obs["llm4cell"].astype(str)[~no_group] != "unknown").any()
    assert snapshot(tmp_path)["in.h5ad"] == before["in.h5ad"]


# ------------------------------------------------------------------------ output sets


def test_cellxgene_columns_are_kept(
    inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CELLxGENE keeps the authors' labels in ``cell_type``: the default key (``llm4cell``)
    writes beside them; asking for ``cell_type`` is refused above, and with
    ``--overwrite-key`` the user's column is replaced as asked."""
    shutil.copy2(inputs / "cxg.h5ad", tmp_path / "cxg.h5ad")
    args = ["annotate", "cxg.h5ad", "-o", "o.h5ad", "--groupby", "truth"]
    result, lines = invoke(args, tmp_path, monkeypatch)
    assert result.exit_code == 0, (result.exception, lines)
    out = ad.read_h5ad(tmp_path / "o.h5ad")
    assert (out.obs["cell_type"].astype(str) == out.obs["truth"].astype(str)).all()
    assert {"llm4cell", "llm4cell_ontology_id", "llm4cell_confidence"} <= set(out.obs)

    result, lines = invoke([*args, "--key-added", "cell_type", "--overwrite-key"],
                           tmp_path, monkeypatch)
    assert result.exit_code == 0, (result.exception, lines)
    out = ad.read_h5ad(tmp_path / "o.h5ad")
    assert "cell_type_ontology_id" in out.obs
    assert out.obs["cell_type"].astype(str).str.startswith("CL:").sum() == 0
    assert (out.obs["cell_type"].astype(str) != out.obs["truth"].astype(str)).any()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


_KILLED_WRITER = """
import sys, time
from llm4cell._io import atomic_paths
with atomic_paths(*sys.argv[1:]) as tmps:
    for t in tmps:
        t.write_bytes(b"half of an output")
    print(" ".join(map(str, tmps)), flush=True)
    time.sleep(120)
"""


def test_killed_writer_leaves_temporaries_that_the_next_run_removes(
    inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real writer (llm4cell's own output-set code in a child process) is SIGKILLed
    in the middle of writing; its temporaries stay, and the next clean run removes them.
    A live writer's temporaries and other targets' temporaries are left alone; a
    temporary of a live process older than a day is stale too."""
    shutil.copy2(inputs / "in.h5ad", tmp_path / "in.h5ad")
    targets = [tmp_path / "o.csv", tmp_path / "o.h5ad"]
    child = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, *map(str, targets)],
                             stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()  # type: ignore[union-attr]
        killed = [Path(p) for p in line.split()]
        assert len(killed) == 2 and all(p.exists() for p in killed), line
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert all(TMP_PATTERN.search(p.name) and p.name.startswith(".") for p in killed)
    assert not any(t.exists() for t in targets)  # the kill left no output, only temps
    sleeper = subprocess.Popen(["sleep", "120"])
    try:
        live = tmp_path / f".o.h5ad.llm4cell-tmp-{sleeper.pid}-abcd1234"
        live.write_bytes(b"a concurrent writer")
        old_live = tmp_path / f".o.csv.llm4cell-tmp-{sleeper.pid}-00001111"
        old_live.write_bytes(b"two days old")
        two_days = time.time() - 2 * 86400
        os.utime(old_live, (two_days, two_days))
        other = tmp_path / f".x.csv.llm4cell-tmp-{_dead_pid()}-abcd1234"
        other.write_bytes(b"another target")
        result, lines = invoke(["annotate", "in.h5ad", "-o", "o.h5ad", "--groupby", "truth"],
                               tmp_path, monkeypatch)
        assert result.exit_code == 0, (result.exception, lines)
        assert all(t.exists() for t in targets)
        assert not any(p.exists() for p in killed)
        assert not old_live.exists()
        assert live.exists() and other.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Writes past ``limit`` bytes fail with EFBIG (the signal that would kill the
    process is ignored), as on a full disk or a quota; restored afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)


def _limited(limit: int) -> None:
    """``preexec_fn`` of a child whose writes past ``limit`` bytes fail with EFBIG (the
    signal that would kill it is ignored), as on a full disk or a quota."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))


def test_failure_mid_write_leaves_the_previous_set(
    inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real write failure (no fake): the process may write files of at most 30 kB, so
    the CSV (a few kB, written first) succeeds and the h5ad fails half-way with EFBIG.
    The previous run's CSV and h5ad must stay exactly as they were, with no new CSV
    beside an old h5ad and no temporary file. The limited run is a real ``llm4cell``
    process: an HDF5 library that failed mid-write is left in a state that crashes the
    interpreter at exit, which must not be the test process."""
    shutil.copy2(inputs / "in.h5ad", tmp_path / "in.h5ad")
    args = ["annotate", "in.h5ad", "-o", "o.h5ad", "--groupby", "truth"]
    result, lines = invoke(args, tmp_path, monkeypatch)
    assert result.exit_code == 0, (result.exception, lines)
    before = snapshot(tmp_path)
    assert (tmp_path / "o.h5ad").stat().st_size > 30_000 > (tmp_path / "o.csv").stat().st_size
    proc = subprocess.run(
        [sys.executable, "-m", "llm4cell", *args, "--tissue", "blood"], cwd=tmp_path,
        capture_output=True, text=True, env={**os.environ, **ENV}, timeout=300,
        preexec_fn=lambda: _limited(30_000), check=False,
    )
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, lines
    # the stages that finished are listed (ticked) before the one error line
    rest = [ln for ln in lines if not ln.startswith("✓ ")]
    assert len(rest) == 1 and rest[0].startswith("error: cannot write 'o.h5ad'"), lines
    assert lines[-1] == rest[0]
    assert snapshot(tmp_path) == before
    # and without the limit the same command writes the new set
    result, lines = invoke([*args, "--tissue", "blood"], tmp_path, monkeypatch)
    assert result.exit_code == 0, (result.exception, lines)
    assert llm4cell.get_provenance(ad.read_h5ad(tmp_path / "o.h5ad"))["params"]["tissue"] == "blood"
    assert sorted(snapshot(tmp_path)) == ["in.h5ad", "o.csv", "o.h5ad"]


def test_score_outputs_are_one_set(
    inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``score --csv --json`` (a real write failure, no fake): the JSON is larger than the
    CSV; with a file size limit between the two, the previous CSV and JSON both stay."""
    for name in ("pred.csv", "truth.csv"):
        shutil.copy2(inputs / name, tmp_path / name)
    args = ["score", "pred.csv", "--truth", "truth.csv", "--csv", "s.csv", "--json", "s.json"]
    result, lines = invoke(args, tmp_path, monkeypatch)
    assert result.exit_code == 0, (result.exception, lines)
    limit = 1_000
    assert (tmp_path / "s.csv").stat().st_size < limit < (tmp_path / "s.json").stat().st_size
    before = snapshot(tmp_path)
    with file_size_limit(limit):
        result, lines = invoke([*args, "--confidence-col", "confidence"], tmp_path,
                               monkeypatch)
    assert result.exit_code == 2, (result.exception, lines)
    assert len(lines) == 1 and lines[0].startswith("error: cannot write 's.json'"), lines
    assert snapshot(tmp_path) == before
