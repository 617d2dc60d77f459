"""Parameters and groupings refused before any work, each with the fix in one line."""

from __future__ import annotations

import math

import anndata as ad

from .._errors import InputError
from ._keys import DEFAULT_KEY, check_key

__all__ = ["MAX_GROUPS", "check_groupby", "check_params"]

#: More distinct values than this in a ``groupby`` column look like a per-cell column.
MAX_GROUPS = 1000


def check_params(
    *,
    key_added: object = DEFAULT_KEY,
    resolution: float = 1.0,
    n_markers: int = 25,
    random_state: int = 0,
    species: str = "human",
) -> None:
    """Refuse impossible parameters before any work.

    Raises
    ------
    InputError
        Naming the parameter (and its command-line flag), the value and the fix.
    """
    if species not in ("human", "mouse"):
        msg = f"species must be 'human' or 'mouse', got {species!r}"
        raise InputError(msg)
    check_key(key_added)
    if isinstance(resolution, bool) or not isinstance(resolution, (int, float)) or not (
        math.isfinite(resolution) and resolution > 0
    ):
        msg = (
            f"resolution (--resolution) must be a number above 0, got {resolution!r}; "
            "1.0 is the usual Leiden resolution, higher values give more clusters"
        )
        raise InputError(msg)
    if isinstance(n_markers, bool) or not isinstance(n_markers, int) or n_markers < 1:
        msg = f"n_markers (--n-markers) must be at least 1, got {n_markers!r}"
        raise InputError(msg)
    if isinstance(random_state, bool) or not isinstance(random_state, int) or not (
        0 <= random_state < 2**32
    ):
        msg = (
            f"random_state (--random-state) must be a whole number from 0 to 2**32 - 1, "
            f"got {random_state!r}"
        )
        raise InputError(msg)


def check_groupby(adata: ad.AnnData, groupby: str) -> None:
    """Refuse a ``groupby`` column that is missing, has fewer than two groups or looks
    like a per-cell column."""
    if groupby not in adata.obs.columns:
        cols = list(adata.obs.columns)
        shown = ", ".join(map(repr, cols[:12])) + (" ..." if len(cols) > 12 else "")
        msg = f"--groupby column {groupby!r} not found in obs (columns: {shown or 'none'})"
        raise InputError(msg)
    n = adata.obs[groupby].nunique(dropna=True)
    if n < 2:
        msg = (
            f"--groupby column {groupby!r} has {n} group(s); markers need at least two "
            "groups: choose another column or omit --groupby to cluster"
        )
        raise InputError(msg)
    if n > MAX_GROUPS:
        msg = (
            f"--groupby column {groupby!r} has {n} distinct values, more than {MAX_GROUPS}; "
            "it looks like a per-cell column: give a cluster or cell type column"
        )
        raise InputError(msg)
