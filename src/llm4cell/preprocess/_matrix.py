"""What a matrix holds: counts, normalised, log-normalised or scaled values.

The kind is detected from the values (:func:`detect_matrix_kind`):

* ``"counts"``: non-negative whole numbers -> ``normalize_total(target_sum=1e4)`` + ``log1p``;
* ``"normalized"``: non-negative, not whole, maximum above 50 -> ``log1p``;
* ``"lognorm"``: non-negative, not whole, maximum at most 50 -> used as is;
* ``"scaled"``: any negative value (z-scores) -> not usable for markers: llm4cell takes
  ``layers["counts"]`` if present, else ``.raw``, else stops with an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import sparse

from .._errors import InputError

__all__ = ["LOGNORM_MAX", "MatrixKind", "detect_matrix_kind"]

MatrixKind = Literal["counts", "normalized", "lognorm", "scaled"]

#: Largest value a log-normalised matrix holds; above it, non-whole values are normalised.
LOGNORM_MAX = 50.0

#: Values per block when scanning a matrix (bounds the temporary memory).
_BLOCK = 1 << 22

_KIND_TEXT = {"counts": "counts", "normalized": "normalised values",
              "lognorm": "log-normalised values"}


def _sample_values(X: object, n: int = 200_000) -> np.ndarray:
    if sparse.issparse(X):
        data = X.data  # type: ignore[attr-defined]
    else:
        arr = np.asarray(X)
        rows = arr.shape[0]
        step = max(1, rows // 2000)
        data = arr[::step].ravel()
    if data.size > n:
        data = data[:: data.size // n]
    return np.asarray(data)


@dataclass(frozen=True)
class _Scan:
    """What holds on a whole matrix (every stored value)."""

    finite: bool
    any_nonzero: bool
    minimum: float
    maximum: float
    first_fraction: float | None  # a non-whole value, if any


def _blocks(X: object) -> Iterator[np.ndarray]:
    """The stored values of ``X`` in flat blocks, without densifying a sparse matrix or
    copying a dense one whole."""
    if sparse.issparse(X):
        data = np.asarray(X.data)  # type: ignore[attr-defined]
        for i in range(0, data.size, _BLOCK):
            yield data[i:i + _BLOCK]
        return
    arr = np.asarray(X)
    if arr.ndim < 2:
        yield arr.ravel()
        return
    rows = max(1, _BLOCK // max(1, arr.shape[1]))
    for i in range(0, arr.shape[0], rows):
        yield arr[i:i + rows].ravel()


def _scan(X: object) -> _Scan:
    finite, nonzero, lo, hi, fraction = True, False, np.inf, -np.inf, None
    for block in _blocks(X):
        if block.size == 0:
            continue
        if not np.isfinite(block).all():
            finite = False
            break
        lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
        nonzero = nonzero or bool(np.any(block))
        if fraction is None and np.issubdtype(block.dtype, np.floating):
            odd = block != np.floor(block)
            if odd.any():
                fraction = float(block[np.argmax(odd)])
    return _Scan(finite, nonzero, float(lo), float(hi), fraction)


def _check_not_empty(shape: tuple[int, ...], what: str) -> None:
    if shape[0] == 0 or shape[1] == 0:
        msg = f"{what} is empty ({shape[0]} cells x {shape[1]} genes); give a non-empty matrix"
        raise InputError(msg)


def _check_values(scan: _Scan, what: str) -> None:
    """Refuse a matrix with non-finite values or only zeros."""
    if not scan.finite:
        msg = (
            f"{what} holds NaN or infinite values; counts or normalised expression must "
            "be finite: fix or remove those entries before annotating"
        )
        raise InputError(msg)
    if not scan.any_nonzero:
        msg = f"{what} holds only zeros; give a matrix with expression values"
        raise InputError(msg)


def _sampled_kind(X: object, scan: _Scan) -> MatrixKind:
    """The kind from a sample of the values, as a reader of the matrix would judge it."""
    values = _sample_values(X)
    values = values[values != 0]
    if values.size:
        negative = bool(values.min() < 0)
        whole = bool(np.all(np.mod(values, 1) == 0))
        top = float(values.max())
    else:  # the sample holds only zeros: judge by the whole matrix
        negative, whole, top = scan.minimum < 0, scan.first_fraction is None, scan.maximum
    if negative:
        return "scaled"
    if whole:
        return "counts"
    return "normalized" if top > LOGNORM_MAX else "lognorm"


def detect_matrix_kind(X: object, *, what: str = "X") -> MatrixKind:
    """What a matrix holds: counts, normalised, log-normalised or scaled values.

    The kind is read from a sample of the values; what that kind requires is then checked
    on every stored value (in blocks, without densifying): counts are whole numbers and
    not negative, normalised values not negative.

    Raises
    ------
    InputError
        When the matrix is empty, holds NaN or infinite values, only zeros, or values its
        kind cannot hold (a negative or fractional value among counts, a negative value
        among normalised values).
    """
    shape = getattr(X, "shape", (0, 0))
    _check_not_empty(shape, what)
    scan = _scan(X)
    _check_values(scan, what)
    kind = _sampled_kind(X, scan)
    if kind == "scaled":
        return kind
    if scan.minimum < 0:
        msg = (
            f"{what} looks like {_KIND_TEXT[kind]} but holds negative values (minimum "
            f"{scan.minimum:g}); fix those entries or give another matrix with --layer"
        )
        raise InputError(msg)
    if kind == "counts" and scan.first_fraction is not None:
        msg = (
            f"{what} looks like counts (whole numbers) but holds fractional values (e.g. "
            f"{scan.first_fraction:g}); give whole counts, or normalised values throughout"
        )
        raise InputError(msg)
    return kind
