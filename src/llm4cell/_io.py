"""Readers and atomic writers.

Inputs: ``.h5ad``, 10x Genomics ``.h5`` and 10x ``mtx`` folders. Outputs are written to a
temporary file next to the target and renamed into place, so a crash never leaves a
half-written file and an existing file is replaced only by a complete one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import anndata as ad
import pandas as pd

from ._errors import InputError

__all__ = [
    "atomic_path",
    "check_output_path",
    "read_data",
    "read_table",
    "write_csv",
    "write_h5ad",
    "write_text",
]


def read_data(path: str | os.PathLike[str]) -> ad.AnnData:
    """Read an ``.h5ad`` file, a 10x ``.h5`` file or a 10x ``mtx`` folder.

    Raises
    ------
    InputError
        When the path is missing, unreadable or not one of the supported formats.
    """
    p = Path(path)
    if not p.exists():
        msg = f"cannot read {str(p)!r}: no such file or folder; check the path"
        raise InputError(msg)
    if p.is_dir():
        return _read_mtx_dir(p)
    if not os.access(p, os.R_OK):
        msg = f"cannot read {str(p)!r}: permission denied; check the file's permissions"
        raise InputError(msg)
    suffix = p.suffix.lower()
    if suffix == ".h5ad":
        try:
            adata = ad.read_h5ad(p)
        except Exception as e:
            msg = (
                f"{str(p)!r} is not a readable AnnData .h5ad file "
                f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no detail'}); "
                "write it with anndata's `adata.write_h5ad()`"
            )
            raise InputError(msg) from e
        return adata
    if suffix == ".h5":
        import scanpy as sc

        try:
            adata = sc.read_10x_h5(p)
        except Exception as e:
            msg = (
                f"{str(p)!r} is not a readable 10x Genomics HDF5 matrix "
                f"({type(e).__name__}); give a CellRanger filtered_feature_bc_matrix.h5"
            )
            raise InputError(msg) from e
        adata.var_names_make_unique()
        return adata
    msg = (
        f"cannot read {str(p)!r}: unsupported format {suffix or '(no suffix)'!r}; "
        "give an .h5ad file, a 10x .h5 file or a 10x mtx folder"
    )
    raise InputError(msg)


def read_table(path: str | os.PathLike[str], what: str = "table") -> pd.DataFrame:
    """Read a CSV (``.csv``) or TSV (``.tsv``, ``.txt``, ``.tab``) table as strings.

    Raises
    ------
    InputError
        When the file is missing, a folder, empty, unparsable or has no rows.
    """
    p = Path(path)
    if not p.exists():
        msg = f"cannot read {what} {str(p)!r}: no such file; check the path"
        raise InputError(msg)
    if p.is_dir():
        msg = f"{what} {str(p)!r} is a folder; give a CSV or TSV file"
        raise InputError(msg)
    if p.stat().st_size == 0:
        msg = f"{what} {str(p)!r} is empty; give a table with a header row"
        raise InputError(msg)
    sep = "\t" if p.suffix.lower() in {".tsv", ".txt", ".tab"} else ","
    try:
        df = pd.read_csv(p, sep=sep, dtype=str, keep_default_na=False)
        if sep == "," and len(df.columns) == 1 and "\t" in str(df.columns[0]):
            df = pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        msg = f"{what} {str(p)!r} is not a readable CSV/TSV table ({e})"
        raise InputError(msg) from e
    if df.empty:
        msg = f"{what} {str(p)!r} has a header but no rows; give at least one row"
        raise InputError(msg)
    return df


def _read_mtx_dir(p: Path) -> ad.AnnData:
    import scanpy as sc

    names = {f.name for f in p.iterdir()}
    has_matrix = bool({"matrix.mtx", "matrix.mtx.gz"} & names)
    has_genes = bool({"features.tsv", "features.tsv.gz", "genes.tsv", "genes.tsv.gz"} & names)
    has_barcodes = bool({"barcodes.tsv", "barcodes.tsv.gz"} & names)
    if not (has_matrix and has_genes and has_barcodes):
        msg = (
            f"{str(p)!r} is a folder but not a 10x mtx folder: it needs matrix.mtx(.gz), "
            "features.tsv(.gz) (or genes.tsv) and barcodes.tsv(.gz)"
        )
        raise InputError(msg)
    try:
        return sc.read_10x_mtx(p, var_names="gene_symbols", make_unique=True)
    except Exception as e:
        msg = f"cannot read the 10x mtx folder {str(p)!r} ({type(e).__name__}: {e})"
        raise InputError(msg) from e


def check_output_path(output: str | os.PathLike[str], *inputs: str | os.PathLike[str]) -> Path:
    """Refuse an output path that is one of the inputs; return it as a Path."""
    out = Path(output)
    for i in inputs:
        if i is None:
            continue
        src = Path(i)
        if out.resolve() == src.resolve() or (
            out.exists() and src.exists() and os.path.samefile(out, src)
        ):
            msg = (
                f"the output {str(out)!r} is the input file; llm4cell never overwrites "
                "its input: choose another output path"
            )
            raise InputError(msg)
    if out.exists() and out.is_dir():
        msg = f"the output {str(out)!r} is a folder; give a file path"
        raise InputError(msg)
    return out


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_h5ad(adata: ad.AnnData, path: str | os.PathLike[str]) -> Path:
    """Write ``adata`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp)
    return Path(path)


def write_csv(df: pd.DataFrame, path: str | os.PathLike[str], *, index: bool = False) -> Path:
    """Write a table to ``path`` atomically."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=index)
    return Path(path)


def write_text(text: str, path: str | os.PathLike[str]) -> Path:
    """Write text (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
