"""Readers and atomic writers.

Inputs: ``.h5ad``, 10x Genomics ``.h5`` and 10x ``mtx`` folders.

Outputs are checked before any work (:func:`check_outputs`: never an input, never a
folder, two outputs never one file, the folder can take new files) and written as a
set (:func:`write_set`, :func:`atomic_paths`): every file of the set goes to a
temporary file beside its target, named ``.<name>.llm4cell-tmp-<pid>-<random>``, and
only when all of them are complete are they renamed onto their targets. A failure
while writing leaves the previous files as they were and no temporary file (a failed
rename undoes the renames before it). A kill (SIGKILL, power loss) while writing leaves
temporary files only, which the next run writing the same target removes when their
process is gone (or they are more than a day old); only a kill in the microseconds
between the final renames can leave a mix of new and previous files.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import re
import secrets
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import anndata as ad
import pandas as pd

from ._errors import InputError, OutputError

__all__ = [
    "atomic_path",
    "atomic_paths",
    "check_output_path",
    "check_outputs",
    "h5ad_writer",
    "read_data",
    "read_table",
    "remove_stale_temporaries",
    "write_csv",
    "write_h5ad",
    "write_set",
    "write_text",
]

#: Marks llm4cell's temporary files: ``.<name>.llm4cell-tmp-<pid>-<random hex>``.
TMP_TAG = ".llm4cell-tmp-"
_TMP_REST = re.compile(r"^(?P<pid>\d+)-[0-9a-f]+$")
#: A temporary file older than this is stale even when its pid is in use (pid reuse).
STALE_AFTER_S = 24 * 3600.0
#: The files the 10x mtx reader reads from an input folder.
_TENX_FILES = frozenset({
    "matrix.mtx", "matrix.mtx.gz", "features.tsv", "features.tsv.gz", "genes.tsv",
    "genes.tsv.gz", "barcodes.tsv", "barcodes.tsv.gz",
})


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


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    return a.exists() and b.exists() and os.path.samefile(a, b)


def check_output_path(output: str | os.PathLike[str], *inputs: str | os.PathLike[str]) -> Path:
    """Refuse an output path that is one of the inputs (or a file read from an input
    folder) or a folder; return it as a Path."""
    out = Path(output)
    for i in inputs:
        if i is None:
            continue
        src = Path(i)
        if _same_file(out, src):
            msg = (
                f"the output {str(out)!r} is the input file; llm4cell never overwrites "
                "its input: choose another output path"
            )
            raise InputError(msg)
        if src.is_dir() and out.name in _TENX_FILES and _same_file(out.parent, src):
            msg = (
                f"the output {str(out)!r} is an input file of the 10x folder {str(src)!r}; "
                "llm4cell never overwrites its input: choose another output path"
            )
            raise InputError(msg)
    if out.exists() and out.is_dir():
        msg = f"the output {str(out)!r} is a folder; give a file path"
        raise InputError(msg)
    return out


def _check_writable(out: Path) -> None:
    """Refuse an output whose folder cannot take a new file (probed by creating one)."""
    folder = out.parent  # as the user spelled it; "." at the top of a relative path
    while not folder.exists() and folder != folder.parent:
        if folder.is_symlink():
            msg = (f"cannot write {str(out)!r}: {str(folder)!r} is a broken link; choose "
                   "another output path")
            raise OutputError(msg)
        folder = folder.parent
    if not folder.is_dir():
        msg = (f"cannot write {str(out)!r}: {str(folder)!r} is a file, not a folder; choose "
               "another output path")
        raise OutputError(msg)
    probe = folder / f".{out.name}{TMP_TAG}{os.getpid()}-{secrets.token_hex(4)}"
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError as e:
        msg = (f"cannot write {str(out)!r}: the folder {str(folder)!r} does not accept new "
               f"files ({e.strerror or e}); choose another output path")
        raise OutputError(msg) from None
    os.close(fd)
    probe.unlink()


def check_outputs(
    outputs: Sequence[str | os.PathLike[str] | None],
    inputs: Sequence[str | os.PathLike[str] | None] = (),
    *,
    flags: Sequence[str] | None = None,
) -> list[Path]:
    """Check every output before any work: not an input, not a folder, no two outputs
    one file, and a folder that takes new files (missing folders are created later).

    Parameters
    ----------
    outputs
        Output paths (``None`` entries are skipped).
    inputs
        Input files or folders.
    flags
        The option of each output, named in the error when two outputs share a path.

    Raises
    ------
    InputError
        For an output that is an input, a folder, or another output.
    OutputError
        For an output whose location cannot take a new file.
    """
    names = list(flags) if flags is not None else ["outputs"] * len(outputs)
    checked: list[tuple[Path, str]] = []
    for path, flag in zip(outputs, names, strict=True):
        if path is None:
            continue
        out = check_output_path(path, *[i for i in inputs if i is not None])
        for other, other_flag in checked:
            if _same_file(out, other):
                msg = (f"two outputs share the path {str(out)!r} ({other_flag} and {flag}); "
                       "give them different paths")
                raise InputError(msg)
        checked.append((out, flag))
    for out, _ in checked:
        _check_writable(out)
    return [out for out, _ in checked]


def _temp_path(target: Path) -> Path:
    return target.parent / f".{target.name}{TMP_TAG}{os.getpid()}-{secrets.token_hex(4)}"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists and belongs to someone else
        return True
    return True


def remove_stale_temporaries(target: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files a killed writer of ``target`` left beside it.

    Only llm4cell's temporaries of this very target are considered, and of those only
    the ones whose process is gone or that are older than :data:`STALE_AFTER_S`, so a
    concurrent writer's files are left alone.

    Returns
    -------
    The files removed.
    """
    target = Path(target)
    head = f".{target.name}{TMP_TAG}"
    removed: list[Path] = []
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return removed
    now = time.time()
    for f in entries:
        if not f.name.startswith(head):
            continue
        m = _TMP_REST.match(f.name[len(head):])
        if m is None:
            continue
        try:
            old = now - f.lstat().st_mtime > STALE_AFTER_S
            if old or not _pid_alive(int(m["pid"])):
                f.unlink()
                removed.append(f)
        except OSError:
            continue
    return removed


def _create_temp(target: Path) -> Path:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(target)
        tmp = _temp_path(target)
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError as e:
        msg = f"cannot write {str(target)!r}: {e.strerror or e}; choose another output path"
        raise OutputError(msg) from None
    return tmp


def _commit(pairs: list[tuple[Path, Path]]) -> None:
    """Rename every temporary onto its target; undo the renames done when one fails."""
    umask = os.umask(0)
    os.umask(umask)
    backups: dict[Path, Path] = {}
    done: list[Path] = []
    try:
        for target, tmp in pairs:
            os.chmod(tmp, 0o666 & ~umask)
            if target.is_file():
                backup = _temp_path(target)
                with contextlib.suppress(OSError):  # no hard links: no way back
                    os.link(target, backup)
                    backups[target] = backup
            os.replace(tmp, target)
            done.append(target)
    except BaseException:
        for target in reversed(done):
            with contextlib.suppress(OSError):
                if target in backups:
                    os.replace(backups.pop(target), target)
                else:
                    target.unlink()
        raise
    finally:
        for backup in backups.values():
            with contextlib.suppress(OSError):
                backup.unlink()


@contextlib.contextmanager
def atomic_paths(*targets: str | os.PathLike[str]) -> Iterator[list[Path]]:
    """Yield one temporary path beside each target; rename them all onto their targets
    when the block ends without an error, else remove them all.

    The temporary files exist (empty) when the block starts. Stale temporaries of the
    same targets left by killed runs are removed first (:func:`remove_stale_temporaries`).
    """
    paths = [Path(t) for t in targets]
    tmps: list[Path] = []
    try:
        for p in paths:
            tmps.append(_create_temp(p))
        yield list(tmps)
        _commit(list(zip(paths, tmps, strict=True)))
    finally:
        for tmp in tmps:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success."""
    with atomic_paths(target) as (tmp,):
        yield tmp


_held = threading.local()
_next_hooks: dict[str, Callable[..., object]] = {}


def _make_dispatch(name: str) -> Callable[..., None]:
    def dispatch(*args: object) -> None:
        held = getattr(_held, "reports", None)
        if held is not None:
            held.append((name, args))
        else:
            _next_hooks.get(name, getattr(sys, f"__{name}__"))(*args)

    dispatch.__name__ = f"llm4cell_{name}"
    return dispatch


#: ``sys.unraisablehook`` and ``sys.excepthook`` while llm4cell writes an output set.
_DISPATCH = {name: _make_dispatch(name) for name in ("unraisablehook", "excepthook")}


@contextlib.contextmanager
def _holding_reports() -> Iterator[list[tuple[str, tuple[object, ...]]]]:
    """Hold back this thread's 'exception ignored' reports: h5py prints a traceback for
    every open object (through both hooks) when a write fails half-way, e.g. on a full
    disk. The caller passes them on (success) or drops them (failure, reported once)."""
    for name, dispatch in _DISPATCH.items():
        current = getattr(sys, name)
        if current is not dispatch:
            _next_hooks[name] = current
            setattr(sys, name, dispatch)
    held: list[tuple[str, tuple[object, ...]]] = []
    _held.reports = held
    try:
        yield held
    finally:
        _held.reports = None


def _reason(e: OSError) -> str:
    if e.errno:
        return os.strerror(e.errno)
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text[:200]


_H5_ERRNO = re.compile(r"errno = (\d+)")


def _write_one(write: Callable[[Path], object], tmp: Path) -> str | None:
    """Run one writer; the reason it failed (an OSError, or h5py's RuntimeError naming
    an errno when the file cannot be closed), or None."""
    try:
        write(tmp)
    except OSError as e:
        return _reason(e)
    except RuntimeError as e:
        m = _H5_ERRNO.search(str(e))
        if m is None:
            raise
        return os.strerror(int(m.group(1)))
    return None


def write_set(writers: Sequence[tuple[str | os.PathLike[str], Callable[[Path], object]]]
              ) -> list[Path]:
    """Write several outputs all or nothing.

    Parameters
    ----------
    writers
        ``(target, write)`` pairs; ``write(path)`` writes the complete file at ``path``
        (a temporary file beside ``target``). They run in order, so put the largest
        (slowest, most likely to fail) last.

    Returns
    -------
    The targets, all written.

    Raises
    ------
    OutputError
        When a file cannot be written (disk full, permissions, a vanished folder); then
        no target was changed and no temporary file is left.
    """
    import gc

    targets = [Path(t) for t, _ in writers]
    with atomic_paths(*targets) as tmps:
        for (target, write), tmp in zip(writers, tmps, strict=True):
            with _holding_reports() as held:
                reason = _write_one(write, tmp)
                if reason is not None:
                    gc.collect()  # the half-written file's objects go now, quietly
            if reason is not None:
                msg = (f"cannot write {str(target)!r}: {reason}; nothing was written "
                       "(free space or choose another output path)")
                raise OutputError(msg)
            for name, args in held:
                _DISPATCH[name](*args)
    return targets


def h5ad_writer(adata: ad.AnnData) -> Callable[[Path], None]:
    """A writer of ``adata`` as ``.h5ad`` for :func:`write_set`, run in a forked child
    process where the platform has ``fork``.

    When a write fails half-way (a full disk, a quota), HDF5 cannot close the file it was
    writing and may crash the process, during the failed write or at exit. In a child
    (the AnnData is shared copy-on-write, not copied) such a crash only ends the child:
    this process reports one error and its own HDF5 state stays clean.
    """
    def write(path: Path) -> None:
        if not hasattr(os, "fork"):  # pragma: no cover - Windows
            adata.write_h5ad(path)
            return
        _in_child(lambda: adata.write_h5ad(path))

    return write


def _in_child(work: Callable[[], object]) -> None:
    """Run ``work`` in a forked child; an OSError with the child's reason if it failed."""
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    with warnings.catch_warnings():  # Python >= 3.12 warns about fork beside threads;
        warnings.simplefilter("ignore", DeprecationWarning)  # the child only writes a file
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child (coverage cannot follow it)
        os.close(read_end)
        faulthandler.disable()  # a crash here is reported by the parent, in one line
        code = 0
        try:
            work()
        except BaseException as e:
            code = e.errno if isinstance(e, OSError) and e.errno else 1
            m = _H5_ERRNO.search(str(e))
            if code == 1 and m is not None:
                code = int(m.group(1))
            os.write(write_end, f"{type(e).__name__}: {e}"[:500].encode("utf-8", "replace"))
        os.close(write_end)
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        detail = f.read().decode("utf-8", "replace")
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        msg = f"the writer process crashed (signal {os.WTERMSIG(status)})"
        raise OSError(msg)
    code = os.WEXITSTATUS(status)
    if code == 1:
        raise OSError(detail.splitlines()[0] if detail else "the writer process failed")
    if code:
        raise OSError(code, os.strerror(code))


def write_h5ad(adata: ad.AnnData, path: str | os.PathLike[str]) -> Path:
    """Write ``adata`` to ``path`` atomically."""
    write_set([(path, h5ad_writer(adata))])
    return Path(path)


def write_csv(df: pd.DataFrame, path: str | os.PathLike[str], *, index: bool = False) -> Path:
    """Write a table to ``path`` atomically."""
    write_set([(path, lambda p: df.to_csv(p, index=index))])
    return Path(path)


def write_text(text: str, path: str | os.PathLike[str]) -> Path:
    """Write text (UTF-8) to ``path`` atomically."""
    write_set([(path, lambda p: p.write_text(text, encoding="utf-8"))])
    return Path(path)
