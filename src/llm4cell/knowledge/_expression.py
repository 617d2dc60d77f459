"""Expression evidence: a univariate linear model (ulm) per cell over the knowledge network.

For each cell and type, the t-value of the slope of ``x_cell ~ e(., type)`` over the
network's genes (decoupler's ``ulm``, in numpy: one sparse x dense product). The network
holds the data genes the knowledge base knows (state and housekeeping genes are never in
it: :func:`llm4cell.genes.is_evidence_gene`), weighted by the engine's enrichment
``e(g, t)``; a type needs ``MIN_GENES`` of its genes in the data to be scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

if TYPE_CHECKING:
    from ._engine import KnowledgeBase

__all__ = ["MIN_GENES", "group_detection", "group_expression_scores", "ulm"]

#: Genes of a type that must be in the data for it to be scored (decoupler's ``tmin``).
MIN_GENES = 5


def ulm(X: sparse.spmatrix | np.ndarray, W: np.ndarray, batch_size: int = 20_000,
        columns: np.ndarray | None = None) -> np.ndarray:
    """t-values of ``x_cell ~ w_type`` per cell and type.

    Parameters
    ----------
    X
        Cells x genes expression.
    W
        Genes x types network weights: one row per column of ``X``, or per entry of
        ``columns``.
    batch_size
        Cells per batch (bounds memory at ``batch_size x types``).
    columns
        The columns of ``X`` that are the network's genes (rows of ``W``); by default
        all of them. The regression runs over these genes only, without copying them
        out of ``X``.

    Returns
    -------
    Cells x types float32 array, ``r * sqrt((G - 2) / (1 - r^2))`` with ``r`` the Pearson
    correlation of the cell's expression and the type's weights over the ``G`` genes.
    """
    W = np.asarray(W, dtype=np.float64)
    n_genes = W.shape[0]
    Wc = W - W.mean(axis=0)
    ssw = (Wc**2).sum(axis=0)
    X = sparse.csr_matrix(X)
    inside = None
    if columns is not None:  # zero rows for the other columns; sums over the network only
        full = np.zeros((X.shape[1], W.shape[1]))
        full[np.asarray(columns)] = Wc
        Wc = full
        inside = np.zeros(X.shape[1], dtype=np.float64)
        inside[np.asarray(columns)] = 1.0
    Wc32 = Wc.astype(np.float32)  # the product in float32: half the memory traffic
    out = np.empty((X.shape[0], W.shape[1]), dtype=np.float32)
    root_ssw = np.sqrt(np.maximum(ssw, 1e-12)).astype(np.float32)
    dof = np.float32(n_genes - 2)
    for start in range(0, X.shape[0], batch_size):
        B = X[start:start + batch_size]
        if B.dtype != np.float32:
            B = B.astype(np.float32)
        # float32 throughout: t-values need no more, and it halves the memory traffic
        r = np.asarray(B @ Wc32, dtype=np.float32)
        sq = sparse.csr_matrix((B.data.astype(np.float64) ** 2, B.indices, B.indptr),
                               shape=B.shape)
        if inside is None:
            total = np.asarray(B.sum(axis=1, dtype=np.float64)).ravel()
            total_sq = np.asarray(sq.sum(axis=1)).ravel()
        else:
            total = B @ inside
            total_sq = sq @ inside
        mx = total / n_genes
        ssx = total_sq - n_genes * mx**2
        r /= np.sqrt(np.maximum(ssx, 1e-12)).astype(np.float32)[:, None]
        r /= root_ssw[None, :]
        np.clip(r, -0.999999, 0.999999, out=r)
        out[start:start + batch_size] = r * np.sqrt(dof / (1 - r * r))
    return out


def network(kb: KnowledgeBase, symbols: Sequence[str], species: str,
            types: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Data genes x ``types`` enrichment weights.

    Returns the data columns used, the weights (those columns x types) and a mask of the
    types with at least :data:`MIN_GENES` genes in the data.
    """
    cols: list[int] = []
    rows: list[int] = []
    for i, s in enumerate(symbols):
        db = kb.resolve_gene(str(s), species)
        if db is not None:
            cols.append(i)
            rows.append(kb.gene_index[db])
    types = np.asarray(types, dtype=np.int64)
    if not cols or types.size == 0:
        return np.array([], dtype=np.int64), np.zeros((0, types.size)), np.zeros(types.size,
                                                                                  bool)
    W = kb.enrichment[np.asarray(rows)][:, types].toarray()
    keep = (W > 0).any(axis=1)
    return np.asarray(cols)[keep], W[keep], (W > 0).sum(axis=0) >= MIN_GENES


def group_expression_scores(
    kb: KnowledgeBase, X: sparse.spmatrix | np.ndarray, symbols: Sequence[str],
    species: str, codes: np.ndarray, n_groups: int, types: Sequence[int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-cell ulm t-values and their mean per group, over the types ``types``.

    ``codes`` gives each cell's group (0 .. ``n_groups - 1``; negative: no group).

    Returns
    -------
    The group means (groups x types; NaN for a type with fewer than :data:`MIN_GENES`
    genes in the data, and for a group without cells), the per-cell t-values of the
    scored types (cells x scored types, float32), and the mask of scored types.
    """
    cols, W, ok = network(kb, symbols, species, types)
    out = np.full((n_groups, len(types)), np.nan)
    if not ok.any() or cols.size < 3:
        ok = np.zeros(len(types), dtype=bool)
        return out, np.zeros((X.shape[0], 0), dtype=np.float32), ok
    # the network's columns are used in place (a column copy would cost as much as ulm)
    t = ulm(X, W[:, ok], columns=cols)
    member, counts = _membership(codes, n_groups)
    sums = np.asarray(member @ t)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, ok] = sums / counts[:, None]
    out[counts == 0] = np.nan
    return out, t, ok


def _membership(codes: np.ndarray, n_groups: int) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Groups x cells indicator matrix and the cells per group."""
    codes = np.asarray(codes)
    valid = codes >= 0
    member = sparse.csr_matrix(
        (np.ones(int(valid.sum())), (codes[valid], np.flatnonzero(valid))),
        shape=(n_groups, len(codes)))
    return member, np.bincount(codes[valid], minlength=n_groups).astype(np.float64)


def group_detection(
    kb: KnowledgeBase, X: sparse.spmatrix | np.ndarray, symbols: Sequence[str],
    species: str, codes: np.ndarray, n_groups: int, batch_size: int = 20_000,
) -> tuple[list[str], np.ndarray]:
    """Fraction of each group's cells in which each database gene is detected (> 0).

    Returns the database symbols of the data genes the knowledge base knows (a symbol
    two data genes map to gets the larger of their rates) and the groups x genes rates
    (NaN for a group without cells). One pass over the non-zeros, in batches of cells.
    """
    cols: dict[str, list[int]] = {}
    for i, s in enumerate(symbols):
        db = kb.resolve_gene(str(s), species)
        if db is not None:
            cols.setdefault(db, []).append(i)
    names = sorted(cols)
    codes = np.asarray(codes, dtype=np.int64)  # Categorical codes may be int8
    counts = np.bincount(codes[codes >= 0], minlength=n_groups).astype(np.float64)
    if not names:
        return [], np.zeros((n_groups, 0))
    X = sparse.csr_matrix(X)
    n_vars = X.shape[1]
    hits = np.zeros(n_groups * n_vars, dtype=np.int64)
    for start in range(0, X.shape[0], batch_size):
        B = X[start:start + batch_size]
        row_group = np.repeat(codes[start:start + batch_size], np.diff(B.indptr))
        keep = (B.data > 0) & (row_group >= 0)
        hits += np.bincount(row_group[keep] * n_vars + B.indices[keep],
                            minlength=n_groups * n_vars)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_column = hits.reshape(n_groups, n_vars) / counts[:, None]
    rates = np.column_stack([per_column[:, cols[n]].max(axis=1) for n in names])
    rates[counts == 0] = np.nan
    return names, rates
