"""Readers, matrix detection, input errors and atomic writers (API level, real files)."""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io
from conftest import PROGRAMS, make_planted_counts
from scipy import sparse

import llm4cell
from llm4cell import BackendError, InputError, Llm4cellError, get_provenance
from llm4cell._errors import OutputError
from llm4cell._io import (
    atomic_path,
    check_output_path,
    check_outputs,
    read_data,
    remove_stale_temporaries,
    write_csv,
    write_h5ad,
    write_set,
    write_text,
)
from llm4cell.preprocess import detect_matrix_kind, prepare_expression

# ---------------------------------------------------------------------------- helpers


def _gene_ids(n: int) -> list[str]:
    return [f"ENSG{i:011d}" for i in range(n)]


def _barcodes(n: int) -> list[str]:
    return [f"BC{i:06d}-1" for i in range(n)]


def write_10x_mtx(adata: ad.AnnData, folder: Path) -> Path:
    """Write raw counts as a CellRanger v3 ``filtered_feature_bc_matrix`` folder."""
    folder.mkdir(parents=True, exist_ok=True)
    counts = sparse.csr_matrix(adata.X).astype(np.int64)
    plain = folder / "matrix.mtx"
    scipy.io.mmwrite(str(plain), sparse.coo_matrix(counts.T), field="integer")  # genes x cells
    with open(plain, "rb") as src, gzip.open(folder / "matrix.mtx.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    plain.unlink()
    ids = _gene_ids(adata.n_vars)
    with gzip.open(folder / "features.tsv.gz", "wt") as fh:
        for gid, sym in zip(ids, adata.var_names, strict=True):
            fh.write(f"{gid}\t{sym}\tGene Expression\n")
    with gzip.open(folder / "barcodes.tsv.gz", "wt") as fh:
        fh.write("".join(f"{b}\n" for b in adata.obs_names))
    return folder


def write_10x_h5(adata: ad.AnnData, path: Path, symbols: list[str] | None = None) -> Path:
    """Write raw counts as a CellRanger v3 ``filtered_feature_bc_matrix.h5``."""
    m = sparse.csr_matrix(adata.X)  # cells x genes CSR == genes x cells CSC
    symbols = list(adata.var_names) if symbols is None else symbols
    n = adata.n_vars
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        g.create_dataset("barcodes", data=np.array(adata.obs_names, dtype="S"))
        g.create_dataset("data", data=m.data.astype(np.int32))
        g.create_dataset("indices", data=m.indices.astype(np.int64))
        g.create_dataset("indptr", data=m.indptr.astype(np.int64))
        g.create_dataset("shape", data=np.array([n, adata.n_obs], dtype=np.int32))
        feats = g.create_group("features")
        feats.create_dataset("id", data=np.array(_gene_ids(n), dtype="S"))
        feats.create_dataset("name", data=np.array(symbols, dtype="S"))
        feats.create_dataset("feature_type", data=np.array(["Gene Expression"] * n, dtype="S"))
        feats.create_dataset("genome", data=np.array(["GRCh38"] * n, dtype="S"))
    return path


def _with_barcodes(adata: ad.AnnData) -> ad.AnnData:
    adata.obs_names = _barcodes(adata.n_obs)
    return adata


def _dense(m: object) -> np.ndarray:
    return m.toarray() if sparse.issparse(m) else np.asarray(m)  # type: ignore[attr-defined]


def _scaled(adata: ad.AnnData) -> np.ndarray:
    x = _dense(adata.X).astype(np.float64)
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-9)
    return x.astype(np.float32)


def _lognorm(adata: ad.AnnData) -> np.ndarray:
    x = _dense(adata.X).astype(np.float64)
    return np.log1p(x / x.sum(axis=1, keepdims=True) * 1e4).astype(np.float32)


def _expected_root(truth: str) -> str:
    return PROGRAMS[truth][0]


# ---------------------------------------------------------------------------- readers


def test_read_h5ad_round_trip(tmp_path: Path, planted: ad.AnnData) -> None:
    path = tmp_path / "data.h5ad"
    planted.write_h5ad(path)
    got = read_data(path)
    assert got.shape == planted.shape == (200, 195)
    assert list(got.var_names) == list(planted.var_names)
    assert list(got.obs["truth"]) == list(planted.obs["truth"])
    np.testing.assert_array_equal(_dense(got.X), _dense(planted.X))


def test_read_h5ad_suffix_is_case_insensitive(tmp_path: Path, planted: ad.AnnData) -> None:
    path = tmp_path / "DATA.H5AD"
    planted.write_h5ad(path)
    assert read_data(str(path)).shape == planted.shape


def test_read_10x_mtx_folder(tmp_path: Path) -> None:
    src = _with_barcodes(make_planted_counts(n_per_type=10))
    folder = write_10x_mtx(src, tmp_path / "filtered_feature_bc_matrix")
    got = read_data(folder)
    assert got.shape == (50, 195)
    assert list(got.var_names) == list(src.var_names)  # symbols, not Ensembl IDs
    assert list(got.var["gene_ids"]) == _gene_ids(195)
    assert list(got.obs_names) == list(src.obs_names)
    np.testing.assert_array_equal(_dense(got.X), _dense(src.X))  # orientation kept


@pytest.mark.filterwarnings("ignore:Variable names are not unique")
def test_read_10x_h5_v3(tmp_path: Path) -> None:
    src = _with_barcodes(make_planted_counts(n_per_type=10))
    symbols = list(src.var_names)
    symbols[-1] = symbols[0]  # a duplicated symbol, as in real CellRanger output
    path = write_10x_h5(src, tmp_path / "filtered_feature_bc_matrix.h5", symbols)
    got = read_data(path)
    assert got.shape == (50, 195)
    assert got.var_names.is_unique
    assert list(got.var_names[:-1]) == symbols[:-1]
    assert got.var_names[-1] != symbols[0] and got.var_names[-1].startswith(symbols[0])
    assert list(got.var["gene_ids"]) == _gene_ids(195)
    assert list(got.obs_names) == list(src.obs_names)
    np.testing.assert_array_equal(_dense(got.X), _dense(src.X))


@pytest.fixture(scope="module")
def annotated_10x(tmp_path_factory: pytest.TempPathFactory) -> tuple[ad.AnnData, ad.AnnData]:
    """Planted counts annotated twice: read back from a 10x mtx folder, and in memory."""
    src = _with_barcodes(make_planted_counts())
    folder = write_10x_mtx(src, tmp_path_factory.mktemp("tenx") / "mtx")
    adata = read_data(folder)
    adata.obs["truth"] = src.obs["truth"].reindex(adata.obs_names).to_numpy()
    llm4cell.annotate(adata, groupby="truth")
    llm4cell.annotate(src, groupby="truth")
    return adata, src


def test_annotate_on_10x_mtx_matches_in_memory(annotated_10x) -> None:
    adata, src = annotated_10x
    cols = ["n_cells", "label", "ontology_id", "confidence", "markers"]
    got, want = get_provenance(adata)["groups"], get_provenance(src)["groups"]
    assert sorted(got.index) == sorted(PROGRAMS)
    pd.testing.assert_frame_equal(got.loc[sorted(PROGRAMS), cols], want.loc[sorted(PROGRAMS), cols])
    markers = got["markers"].str.split(", ")
    for truth, (_, planted_markers) in PROGRAMS.items():
        # the reader kept genes and cells aligned: the planted genes lead each group
        assert set(markers[truth][:8]) == set(planted_markers), (truth, markers[truth])


def test_annotate_on_10x_mtx_finds_planted_types(annotated_10x) -> None:
    adata, _ = annotated_10x
    onto = llm4cell.load_ontology()
    groups = get_provenance(adata)["groups"]
    wrong = {}
    for truth in PROGRAMS:
        term = groups.loc[truth, "ontology_id"]
        root = _expected_root(truth)
        if not term or root not in onto.ancestors(term, include_self=True):
            label = groups.loc[truth, "label"]
            wrong[truth] = f"{label} ({term or 'no ID'}), expected under {root}"
    assert not wrong, wrong
    per_cell = adata.obs["llm4cell_ontology_id"].astype(str)
    expected = adata.obs["truth"].map(groups["ontology_id"]).astype(str)
    assert (per_cell == expected).all()


# ---------------------------------------------------------------------------- detection


def test_detect_matrix_kind_all_kinds(planted: ad.AnnData, pbmc: ad.AnnData) -> None:
    counts = planted.X
    lognorm = _lognorm(planted)
    normalized = np.expm1(lognorm)
    scaled = _scaled(planted)
    assert detect_matrix_kind(counts) == "counts"
    assert detect_matrix_kind(_dense(counts)) == "counts"
    assert detect_matrix_kind(lognorm) == "lognorm"
    assert detect_matrix_kind(sparse.csr_matrix(lognorm)) == "lognorm"
    assert detect_matrix_kind(normalized) == "normalized"
    assert detect_matrix_kind(scaled) == "scaled"
    assert detect_matrix_kind(pbmc.X) == "scaled"
    assert detect_matrix_kind(pbmc.raw.X) == "lognorm"


def test_prepare_expression_picks_the_usable_matrix(
    planted: ad.AnnData, pbmc: ad.AnnData
) -> None:
    expr = prepare_expression(pbmc)
    assert (expr.source, expr.kind) == (".raw", "lognorm")
    assert expr.adata.n_vars == pbmc.raw.n_vars

    counts = planted.X.copy()
    planted.X = _scaled(planted)
    planted.layers["counts"] = counts
    expr = prepare_expression(planted)
    assert (expr.source, expr.kind) == ("layers['counts']", "counts")
    x = expr.adata.X.toarray()
    # normalize_total(1e4) + log1p: every cell sums to 1e4 after expm1
    np.testing.assert_allclose(np.expm1(x).sum(axis=1), 1e4, rtol=1e-3)

    planted.layers["lognorm"] = _lognorm(ad.AnnData(X=counts))
    expr = prepare_expression(planted, layer="lognorm")
    assert (expr.source, expr.kind) == ("layers['lognorm']", "lognorm")
    np.testing.assert_allclose(expr.adata.X.toarray(), planted.layers["lognorm"], rtol=1e-6)


# ---------------------------------------------------------------------------- bad input


@contextlib.contextmanager
def _raises(exc: type[Exception], *fragments: str) -> Iterator[None]:
    """Expect ``exc`` with a message containing every fragment (case-insensitive)."""
    with pytest.raises(exc) as info:
        yield
    msg = str(info.value).lower()
    for frag in fragments:
        assert frag.lower() in msg, f"{frag!r} not in message: {info.value}"


def test_missing_file(tmp_path: Path) -> None:
    with _raises(InputError, "nope.h5ad", "no such file"):
        read_data(tmp_path / "nope.h5ad")


def test_text_file_named_h5ad(tmp_path: Path) -> None:
    path = tmp_path / "x.h5ad"
    path.write_text("gene,cell1\nCD3E,1\n")
    with _raises(InputError, "x.h5ad", "not a readable anndata"):
        read_data(path)


def test_corrupt_10x_h5(tmp_path: Path) -> None:
    path = tmp_path / "x.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with _raises(InputError, "x.h5", "10x genomics hdf5"):
        read_data(path)


def test_unsupported_suffix(tmp_path: Path) -> None:
    path = tmp_path / "counts.csv"
    path.write_text("gene,cell1\nCD3E,1\n")
    with _raises(InputError, "unsupported format", "'.csv'"):
        read_data(path)


def test_folder_that_is_not_10x(tmp_path: Path) -> None:
    (tmp_path / "matrix.mtx.gz").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("hello")
    with _raises(InputError, "not a 10x mtx folder", "barcodes.tsv"):
        read_data(tmp_path)


def test_inconsistent_10x_folder(tmp_path: Path) -> None:
    src = _with_barcodes(make_planted_counts(n_per_type=4))
    folder = write_10x_mtx(src, tmp_path / "mtx")
    with gzip.open(folder / "barcodes.tsv.gz", "wt") as fh:  # fewer barcodes than cells
        fh.write("BC1-1\nBC2-1\n")
    with _raises(InputError, "cannot read the 10x mtx folder"):
        read_data(folder)


@pytest.mark.parametrize(("cells", "genes"), [(0, 195), (200, 0)])
def test_empty_matrix(planted: ad.AnnData, cells: int, genes: int) -> None:
    empty = planted[:cells, :genes].copy()
    assert empty.shape == (cells, genes)
    with _raises(InputError, "empty", f"{cells} cells x {genes} genes"):
        llm4cell.annotate(empty)
    with _raises(InputError, "empty"):
        detect_matrix_kind(empty.X)


def test_empty_h5ad_file(tmp_path: Path, planted: ad.AnnData) -> None:
    path = tmp_path / "empty.h5ad"
    planted[:0].copy().write_h5ad(path)
    adata = read_data(path)
    with _raises(InputError, "empty", "0 cells"):
        llm4cell.annotate(adata)


def test_all_zero_matrix(planted: ad.AnnData) -> None:
    planted.X = sparse.csr_matrix(planted.shape, dtype=np.float32)
    with _raises(InputError, "only zeros"):
        llm4cell.annotate(planted, groupby="truth")


def test_genes_matching_nothing(planted: ad.AnnData) -> None:
    planted.var_names = [f"XYZ{i}" for i in range(1, planted.n_vars + 1)]
    with _raises(InputError, "none of the 195 genes", "XYZ1", "marker database"):
        llm4cell.annotate(planted, groupby="truth")
    assert "llm4cell" not in planted.obs


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_x(planted: ad.AnnData, value: float) -> None:
    x = _dense(planted.X).astype(np.float32)
    x[3, 5] = value
    planted.X = x
    with _raises(InputError, "NaN or infinite"):
        llm4cell.annotate(planted, groupby="truth")


def test_non_finite_sparse_x(planted: ad.AnnData) -> None:
    planted.X.data[0] = np.nan
    with _raises(InputError, "NaN or infinite"):
        llm4cell.annotate(planted, groupby="truth")


def test_negative_counts_layer_with_scaled_x(planted: ad.AnnData) -> None:
    planted.X = _scaled(planted)
    planted.layers["counts"] = _scaled(planted) - 1.0
    with _raises(InputError, "layers['counts']", "negative"):
        llm4cell.annotate(planted, groupby="truth")


def test_scaled_x_without_raw_or_counts(planted: ad.AnnData) -> None:
    planted.X = _scaled(planted)
    with _raises(InputError, "scaled", "neither .raw nor layers['counts']"):
        llm4cell.annotate(planted, groupby="truth")


def test_scaled_x_and_scaled_raw(planted: ad.AnnData) -> None:
    planted.X = _scaled(planted)
    planted.raw = planted
    with _raises(InputError, ".raw", "scaled"):
        llm4cell.annotate(planted, groupby="truth")


def test_unknown_layer(planted: ad.AnnData) -> None:
    planted.layers["spliced"] = planted.X.copy()
    with _raises(InputError, "layer 'nope' not found", "'spliced'"):
        llm4cell.annotate(planted, groupby="truth", layer="nope")


def test_scaled_layer_is_refused(planted: ad.AnnData) -> None:
    planted.layers["z"] = _scaled(planted)
    with _raises(InputError, "layers['z']", "negative"):
        llm4cell.annotate(planted, groupby="truth", layer="z")


def test_missing_groupby_column(planted: ad.AnnData) -> None:
    with _raises(InputError, "'louvain' not found", "'truth'"):
        llm4cell.annotate(planted, groupby="louvain")


def test_groupby_with_single_group(planted: ad.AnnData) -> None:
    planted.obs["one"] = "all"
    with _raises(InputError, "'one'", "1 group"):
        llm4cell.annotate(planted, groupby="one")
    assert "llm4cell" not in planted.obs


def test_groupby_per_cell_column(planted: ad.AnnData) -> None:
    big = make_planted_counts(n_per_type=220)
    big.obs["barcode"] = big.obs_names
    with _raises(InputError, "'barcode'", "1100 distinct values"):
        llm4cell.annotate(big, groupby="barcode")


def test_bad_species_and_n_markers(planted: ad.AnnData) -> None:
    with _raises(InputError, "species", "'rat'"):
        llm4cell.annotate(planted, groupby="truth", species="rat")  # type: ignore[arg-type]
    with _raises(InputError, "n_markers"):
        llm4cell.annotate(planted, groupby="truth", n_markers=0)


def test_output_equal_to_input(tmp_path: Path) -> None:
    src = tmp_path / "in.h5ad"
    src.write_bytes(b"data")
    with _raises(InputError, "is the input file"):
        check_output_path(src, src)
    with _raises(InputError, "is the input file"):  # same file, another spelling
        check_output_path(tmp_path / "sub" / ".." / "in.h5ad", str(src))
    link = tmp_path / "link.h5ad"
    link.symlink_to(src)
    with _raises(InputError, "is the input file"):
        check_output_path(link, src)
    hard = tmp_path / "hard.h5ad"
    os.link(src, hard)
    with _raises(InputError, "is the input file"):
        check_output_path(hard, src)
    with _raises(InputError, "is a folder"):
        check_output_path(tmp_path, src)
    assert check_output_path(tmp_path / "out.h5ad", src, None) == tmp_path / "out.h5ad"
    assert src.read_bytes() == b"data"


def test_unknown_backend(planted: ad.AnnData) -> None:
    with _raises(BackendError, "unknown backend 'nope'", "knowledge"):
        llm4cell.annotate(planted, groupby="truth", backend="nope")
    with _raises(BackendError, "backend"):
        llm4cell.annotate(planted, groupby="truth", backend=42)  # type: ignore[arg-type]
    assert issubclass(BackendError, Llm4cellError)
    assert issubclass(InputError, Llm4cellError)


# ---------------------------------------------------------------------------- input untouched


def test_annotate_keeps_raw_counts_input(planted: ad.AnnData, tmp_path: Path) -> None:
    x_before = planted.X.copy()
    var_before = planted.var.copy()
    obs_before = planted.obs.copy()
    llm4cell.annotate(planted, groupby="truth", csv=tmp_path / "t.csv")
    assert sparse.issparse(planted.X)
    assert planted.X.dtype == x_before.dtype
    assert (planted.X != x_before).nnz == 0
    pd.testing.assert_frame_equal(planted.var, var_before)
    pd.testing.assert_frame_equal(planted.obs[obs_before.columns], obs_before)
    assert "llm4cell" in planted.obs  # and it did annotate in place
    assert not planted.layers.keys()


def test_annotate_copy_leaves_input_alone(planted: ad.AnnData) -> None:
    out = llm4cell.annotate(planted, groupby="truth", copy=True)
    assert out is not None and out is not planted
    assert "llm4cell" in out.obs
    assert "llm4cell" not in planted.obs
    assert "llm4cell" not in planted.uns


def test_annotate_keeps_scaled_x_and_raw(pbmc: ad.AnnData) -> None:
    x_before = np.array(pbmc.X, copy=True)
    raw_before = pbmc.raw.X.copy()
    raw_var_before = list(pbmc.raw.var_names)
    llm4cell.annotate(pbmc, groupby="louvain", tissue="blood")
    np.testing.assert_array_equal(np.asarray(pbmc.X), x_before)
    assert (pbmc.raw.X != raw_before).nnz == 0
    assert list(pbmc.raw.var_names) == raw_var_before
    assert get_provenance(pbmc)["input"]["matrix"] == ".raw"


# ---------------------------------------------------------------------------- atomic writes


def test_atomic_path_failure_creates_nothing(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(target) as tmp:
        tmp.write_text("half of a rep")
        assert tmp.parent == tmp_path and tmp != target
        raise RuntimeError("disk full")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_failure_keeps_old_content(tmp_path: Path) -> None:
    target = tmp_path / "table.csv"
    target.write_text("old content")
    with pytest.raises(OSError, match="boom"), atomic_path(target) as tmp:
        tmp.write_text("new but incomplete")
        raise OSError("boom")
    assert target.read_text() == "old content"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_write_h5ad_failing_midway(tmp_path: Path, planted: ad.AnnData) -> None:
    target = tmp_path / "out.h5ad"
    target.write_bytes(b"previous")
    planted.uns["unwritable"] = object()  # anndata starts the file, then fails here
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Exception):  # noqa: B017 - anndata's own error types
            write_h5ad(planted, target)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out.h5ad"]
    new = tmp_path / "new.h5ad"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Exception):  # noqa: B017
            write_h5ad(planted, new)
    assert not new.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out.h5ad"]


def test_successful_writes(tmp_path: Path, planted: ad.AnnData) -> None:
    text = tmp_path / "sub" / "a.txt"
    text.parent.mkdir()
    text.write_text("old")
    assert write_text("héllo\n", text) == text
    assert text.read_text(encoding="utf-8") == "héllo\n"
    umask = os.umask(0)
    os.umask(umask)
    assert text.stat().st_mode & 0o777 == 0o666 & ~umask

    df = pd.DataFrame({"group": ["a", "b"], "n_cells": [3, 4]})
    csv = write_csv(df, tmp_path / "t.csv")
    pd.testing.assert_frame_equal(pd.read_csv(csv), df)

    h5 = write_h5ad(planted, tmp_path / "deep" / "x.h5ad")  # creates the folder
    back = ad.read_h5ad(h5)
    assert back.shape == planted.shape
    names = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert names == ["a.txt", "t.csv", "x.h5ad"]  # no temp file left anywhere


def test_failed_annotate_writes_no_csv(tmp_path: Path, planted: ad.AnnData) -> None:
    csv = tmp_path / "t.csv"
    with pytest.raises(InputError):
        llm4cell.annotate(planted, groupby="nope", csv=csv)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- whole matrix


def _counts_with(value: float, *, dense: bool) -> object:
    """Counts in which the sampled check cannot see row 1 (dense: more than 4,000 rows,
    every second one sampled) or stored value 1 (sparse: more than 400,000 values, every
    second one sampled)."""
    rng = np.random.default_rng(0)
    x = rng.poisson(2.0, size=(4100, 100)).astype(np.float32) + 1  # 410,000 values
    if dense:
        x[1, 0] = value
        return x
    x[0, 1] = value  # stored value 1
    return sparse.csr_matrix(x)


@pytest.mark.parametrize("dense", [True, False], ids=["dense", "sparse"])
@pytest.mark.parametrize(("value", "words"), [(-1.0, "negative"), (2.5, "2.5")])
def test_bad_count_outside_the_sample_is_found(value: float, words: str, dense: bool) -> None:
    """Negative or fractional "counts" in rows (or stored values) the sampled check skips
    were normalised and log1p gave NaN; what counts require is checked on every value."""
    with _raises(InputError, "counts", words):
        detect_matrix_kind(_counts_with(value, dense=dense))


def test_negative_value_among_lognormalised_values() -> None:
    x = np.log1p(np.asarray(_counts_with(1.0, dense=True)))
    x[1, 0] = -0.5
    with _raises(InputError, "log-normalised", "negative", "-0.5"):
        detect_matrix_kind(x)


def test_clean_counts_still_detected() -> None:
    assert detect_matrix_kind(_counts_with(3.0, dense=True)) == "counts"
    assert detect_matrix_kind(_counts_with(3.0, dense=False)) == "counts"


# ---------------------------------------------------------------------------- output checks


def test_check_outputs_refuses_unwritable_places(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with _raises(OutputError, "notes.txt", "is a file"):
        check_outputs([tmp_path / "notes.txt" / "deeper" / "o.csv"])
    with _raises(OutputError, "cannot write", "/proc"):
        check_outputs([tmp_path / "fine.csv", "/proc/o.csv"])
    with _raises(InputError, "share the path", "--csv", "--json"):
        check_outputs([tmp_path / "a.csv", tmp_path / "sub" / ".." / "a.csv"],
                      flags=["--csv", "--json"])
    # a missing folder is fine (created when writing); nothing is left by the checks
    assert check_outputs([tmp_path / "new" / "o.csv"]) == [tmp_path / "new" / "o.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_check_outputs_refuses_files_of_an_input_10x_folder(tmp_path: Path) -> None:
    folder = write_10x_mtx(make_planted_counts(n_per_type=2), tmp_path / "mtx")
    with _raises(InputError, "barcodes.tsv.gz", "10x folder"):
        check_outputs([folder / "barcodes.tsv.gz"], [folder])
    assert check_outputs([folder / "annotated.h5ad"], [folder])  # beside them is fine


def test_write_set_failure_keeps_the_previous_set(tmp_path: Path) -> None:
    """A real failure half-way (a folder appears where the second output goes while
    the first is written): the first target keeps its old bytes, nothing is left."""
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("old a")

    def write_a(p: Path) -> None:
        p.write_text("new a")
        b.mkdir()  # os.replace cannot put a file over a folder
        (b / "keep").write_text("x")

    with pytest.raises(OSError):
        write_set([(a, write_a), (b, lambda p: p.write_text("new b"))])
    assert a.read_text() == "old a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.csv"]


def test_write_set_error_is_one_output_error(tmp_path: Path) -> None:
    def fail(p: Path) -> None:
        raise OSError(28, "No space left on device")

    with _raises(OutputError, "cannot write", "b.txt", "No space left"):
        write_set([(tmp_path / "a.txt", lambda p: p.write_text("a")), (tmp_path / "b.txt", fail)])
    assert list(tmp_path.iterdir()) == []


def test_write_set_h5py_close_error_is_one_output_error(tmp_path: Path) -> None:
    """h5py reports a failed flush at close as a RuntimeError naming the errno (seen on
    pbmc68k_reduced under a 300 kB file size limit). The exact point where HDF5 fails is
    not reproducible on demand, so this writer raises h5py's message itself (a fake)."""
    def fail(p: Path) -> None:
        p.write_bytes(b"half")
        msg = ("Can't decrement id ref count (unable to extend file properly, errno = 27, "
               "error message = 'File too large')")
        raise RuntimeError(msg)

    with _raises(OutputError, "cannot write", "o.h5ad", "File too large"):
        write_set([(tmp_path / "o.csv", lambda p: p.write_text("a")), (tmp_path / "o.h5ad", fail)])
    assert list(tmp_path.iterdir()) == []

    def bug(p: Path) -> None:
        raise RuntimeError("a bug, not a write failure")

    with pytest.raises(RuntimeError, match="a bug"):
        write_set([(tmp_path / "o.csv", bug)])
    assert list(tmp_path.iterdir()) == []


def test_h5ad_writer_survives_a_crashing_writer(tmp_path: Path, planted) -> None:
    """The h5ad is written in a forked child: a writer that dies of a signal (as HDF5 can
    after a failed write) is one OutputError here, and this process goes on."""
    import signal

    from llm4cell._io import _in_child, h5ad_writer

    with pytest.raises(OSError, match="signal 11"):
        _in_child(lambda: os.kill(os.getpid(), signal.SIGSEGV))
    with pytest.raises(OSError, match="No space left"):
        _in_child(lambda: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    write_set([(tmp_path / "o.h5ad", h5ad_writer(planted))])
    back = ad.read_h5ad(tmp_path / "o.h5ad")
    assert back.shape == planted.shape and list(back.obs_names) == list(planted.obs_names)


def test_stale_temporaries(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    dead = int(child.stdout)
    target = tmp_path / "o.csv"
    stale = tmp_path / f".o.csv.llm4cell-tmp-{dead}-0a1b2c3d"
    live = tmp_path / f".o.csv.llm4cell-tmp-{os.getppid()}-0a1b2c3d"
    old = tmp_path / f".o.csv.llm4cell-tmp-{os.getppid()}-99999999"
    other = tmp_path / f".p.csv.llm4cell-tmp-{dead}-0a1b2c3d"
    unrelated = tmp_path / ".o.csv.backup"
    for p in (stale, live, old, other, unrelated):
        p.write_text("x")
    two_days = time.time() - 2 * 86400
    os.utime(old, (two_days, two_days))
    assert sorted(remove_stale_temporaries(target)) == sorted([stale, old])
    assert live.exists() and other.exists() and unrelated.exists()
