"""From an AnnData to log-normalised expression, groups and ranked marker genes.

What ``X`` holds is detected from its values (:func:`detect_matrix_kind`):

* ``"counts"``: non-negative whole numbers -> ``normalize_total(target_sum=1e4)`` + ``log1p``;
* ``"normalized"``: non-negative, not whole, maximum above 50 -> ``log1p``;
* ``"lognorm"``: non-negative, not whole, maximum at most 50 -> used as is;
* ``"scaled"``: any negative value (z-scores) -> not usable for markers: llm4cell takes
  ``layers["counts"]`` if present, else ``.raw``, else stops with an error.

``layer=`` picks the matrix explicitly. The input is never modified: transformations
run on a private working copy.

Clusters, when the user gives none, come from the standard scanpy route on that
working copy: highly variable genes (``flavor="seurat"``, up to 2,000), PCA (up to 50
components on those genes, ``random_state=0``), a 15-nearest-neighbour graph and Leiden
(igraph implementation, ``resolution=1.0``, 2 iterations, ``random_state=0``).

Markers per group come from ``rank_genes_groups`` (Wilcoxon, each group against the
rest). A gene is marker evidence when its adjusted p-value is below 0.05, its log2 fold
change above 0.25, at least 10% of the group's cells express it, and it is not a
mitochondrial, ribosomal or unannotated gene (:func:`llm4cell.genes.is_evidence_gene`).
Small groups rarely reach significance: when fewer than 3 genes pass, the p-value
filter is dropped for that group and its best-ranked eligible genes are used (the
per-group table records how many markers were significant).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from .._errors import InputError
from ..genes import is_evidence_gene, resolve_var_symbols

__all__ = [
    "Expression",
    "MatrixKind",
    "check_can_cluster",
    "cluster",
    "detect_matrix_kind",
    "prepare_expression",
    "rank_markers",
]

MatrixKind = Literal["counts", "normalized", "lognorm", "scaled"]

#: Marker filters (documented above and in the README).
MAX_PVAL_ADJ = 0.05
MIN_LOGFC = 0.25
MIN_PCT = 0.10
LOGNORM_MAX = 50.0
#: Below this many significant markers, the best-ranked eligible genes are used instead.
MIN_SIGNIFICANT = 3


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


#: Values per block when scanning a matrix (bounds the temporary memory).
_BLOCK = 1 << 22


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
    if shape[0] == 0 or shape[1] == 0:
        msg = f"{what} is empty ({shape[0]} cells x {shape[1]} genes); give a non-empty matrix"
        raise InputError(msg)
    scan = _scan(X)
    if not scan.finite:
        msg = (
            f"{what} holds NaN or infinite values; counts or normalised expression must "
            "be finite: fix or remove those entries before annotating"
        )
        raise InputError(msg)
    if not scan.any_nonzero:
        msg = f"{what} holds only zeros; give a matrix with expression values"
        raise InputError(msg)
    values = _sample_values(X)
    values = values[values != 0]
    if values.size:  # the kind from a sample, as a reader of the matrix would judge it
        negative = bool(values.min() < 0)
        whole = bool(np.all(np.mod(values, 1) == 0))
        top = float(values.max())
    else:  # the sample holds only zeros: judge by the whole matrix
        negative, whole, top = scan.minimum < 0, scan.first_fraction is None, scan.maximum
    if negative:
        return "scaled"
    kind: MatrixKind = "counts" if whole else (
        "normalized" if top > LOGNORM_MAX else "lognorm")
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


_KIND_TEXT = {"counts": "counts", "normalized": "normalised values",
              "lognorm": "log-normalised values"}


@dataclass
class Expression:
    """Log-normalised expression used for clustering and markers.

    Attributes
    ----------
    adata
        Working AnnData: ``X`` log-normalised (CSR, float32), ``var_names`` unique symbols.
    source
        Which matrix of the input was used (``"X"``, ``".raw"``, ``"layers['counts']"``).
    kind
        What that matrix held.
    transform
        What was applied to reach log-normalised values.
    symbols_from
        Where gene symbols came from.
    """

    adata: ad.AnnData
    source: str
    kind: MatrixKind
    transform: str
    symbols_from: str

    def describe(self) -> dict[str, str]:
        """Plain dict for provenance records."""
        return {
            "matrix": self.source,
            "kind": self.kind,
            "transform": self.transform,
            "gene_symbols": self.symbols_from,
        }


def _pick_matrix(
    adata: ad.AnnData, layer: str | None
) -> tuple[object, pd.DataFrame, str, MatrixKind]:
    if layer is not None:
        if layer not in adata.layers:
            have = ", ".join(map(repr, adata.layers.keys())) or "none"
            msg = f"layer {layer!r} not found (layers present: {have}); pick one with --layer"
            raise InputError(msg)
        M = adata.layers[layer]
        kind = detect_matrix_kind(M, what=f"layers[{layer!r}]")
        if kind == "scaled":
            msg = (
                f"layers[{layer!r}] holds negative values; markers need counts or "
                "log-normalised values: choose another --layer"
            )
            raise InputError(msg)
        return M, adata.var, f"layers[{layer!r}]", kind
    kind = detect_matrix_kind(adata.X, what="X")
    if kind != "scaled":
        return adata.X, adata.var, "X", kind
    if "counts" in adata.layers:
        M = adata.layers["counts"]
        k = detect_matrix_kind(M, what="layers['counts']")
        if k == "scaled":
            msg = (
                "layers['counts'] holds negative values where counts are expected; "
                "store raw counts there or pass --layer"
            )
            raise InputError(msg)
        return M, adata.var, "layers['counts']", k
    if adata.raw is not None:
        M = adata.raw.X
        k = detect_matrix_kind(M, what=".raw.X")
        if k == "scaled":
            msg = (
                "both X and .raw hold scaled (negative) values; give counts or "
                "log-normalised values in .raw, layers['counts'] or --layer"
            )
            raise InputError(msg)
        return M, adata.raw.var, ".raw", k
    msg = (
        "X holds scaled values (negative z-scores) and the file has neither .raw nor "
        "layers['counts']; markers need counts or log-normalised values: pass --layer"
    )
    raise InputError(msg)


def prepare_expression(
    adata: ad.AnnData, *, layer: str | None = None, species: str = "human"
) -> Expression:
    """Build the working log-normalised AnnData without touching ``adata``.

    Raises
    ------
    InputError
        For empty, non-finite or unusable matrices, and unknown layers.
    """
    import scanpy as sc

    if adata.n_obs == 0 or adata.n_vars == 0:
        msg = (
            f"the data is empty ({adata.n_obs} cells x {adata.n_vars} genes); "
            "give a non-empty matrix"
        )
        raise InputError(msg)
    M, var, source, kind = _pick_matrix(adata, layer)
    symbols, symbols_from = resolve_var_symbols(var, species)
    needs_copy = kind in ("counts", "normalized")
    X = sparse.csr_matrix(M, dtype=np.float32, copy=needs_copy)
    if X is M:
        needs_copy = False
    work = ad.AnnData(
        X=X,
        obs=pd.DataFrame(index=adata.obs_names.copy()),
        var=pd.DataFrame(index=pd.Index(symbols.astype(str), name=None)),
    )
    work.var_names_make_unique()
    if kind == "counts":
        sc.pp.normalize_total(work, target_sum=1e4)
        sc.pp.log1p(work)
        transform = "normalize_total(target_sum=1e4) + log1p"
    elif kind == "normalized":
        sc.pp.log1p(work)
        transform = "log1p"
    else:
        transform = "none (already log-normalised)"
    return Expression(work, source, kind, transform, symbols_from)


#: Fewest cells and genes the Leiden route (PCA, neighbours) works with.
MIN_CELLS_TO_CLUSTER = 10
MIN_GENES_TO_CLUSTER = 10


def check_can_cluster(adata: ad.AnnData) -> None:
    """Refuse data too small for the Leiden route (give ``groupby`` instead).

    Raises
    ------
    InputError
        With fewer than :data:`MIN_CELLS_TO_CLUSTER` cells or
        :data:`MIN_GENES_TO_CLUSTER` genes (an empty matrix is reported as such later).
    """
    n_obs, n_vars = adata.n_obs, adata.n_vars
    if n_obs == 0 or n_vars == 0:
        return
    if n_obs < MIN_CELLS_TO_CLUSTER or n_vars < MIN_GENES_TO_CLUSTER:
        msg = (
            f"too few cells or genes to cluster ({n_obs} cells x {n_vars} genes; Leiden "
            f"needs at least {MIN_CELLS_TO_CLUSTER} cells and {MIN_GENES_TO_CLUSTER} genes): "
            "give your own groups with --groupby"
        )
        raise InputError(msg)


def cluster(
    work: ad.AnnData, *, resolution: float = 1.0, random_state: int = 0, key: str = "leiden"
) -> pd.Series:
    """Leiden clusters by the standard scanpy route (see module docstring)."""
    import scanpy as sc

    check_can_cluster(work)
    n_top = min(2000, work.n_vars)
    sc.pp.highly_variable_genes(work, n_top_genes=n_top, flavor="seurat")
    n_hvg = int(work.var["highly_variable"].sum())
    n_comps = max(2, min(50, work.n_obs - 1, n_hvg - 1))
    sc.pp.pca(work, n_comps=n_comps, mask_var="highly_variable", random_state=random_state)
    sc.pp.neighbors(work, n_neighbors=min(15, work.n_obs - 1), random_state=random_state)
    sc.tl.leiden(
        work, resolution=resolution, flavor="igraph", n_iterations=2, directed=False,
        random_state=random_state, key_added=key,
    )
    return work.obs[key]


def rank_markers(
    work: ad.AnnData, groupby: str, *, n_markers: int = 25, min_cells: int = 2
) -> dict[str, pd.DataFrame]:
    """Marker genes per group, best first, filtered to evidence genes.

    Returns
    -------
    Group -> table with ``gene``, ``score``, ``logfoldchange``, ``pct_in``, ``pct_out``,
    ``pval_adj`` and ``significant`` (at most ``n_markers`` rows). Groups with fewer
    than ``min_cells`` cells are present with an empty table.
    """
    import scanpy as sc

    labels = work.obs[groupby]
    counts = labels.value_counts()
    order = list(labels.cat.categories) if hasattr(labels, "cat") else sorted(counts.index)
    order = [g for g in order if counts.get(g, 0) > 0]
    valid = [str(g) for g in order if counts[g] >= min_cells]
    out: dict[str, pd.DataFrame] = {str(g): _empty_markers() for g in order}
    if len(valid) < 2:
        return out
    with warnings.catch_warnings():
        # scanpy (1.11) grows its result table one column per group and statistic, and
        # pandas warns once per column beyond 100: about 1,900 lines for 400 groups. The
        # filter covers that module's PerformanceWarning during this call only.
        warnings.filterwarnings("ignore", category=pd.errors.PerformanceWarning,
                                module=r"scanpy\.tools\._rank_genes_groups")
        sc.tl.rank_genes_groups(
            work, groupby, groups=valid, reference="rest", method="wilcoxon", pts=True,
            n_genes=min(300, work.n_vars), use_raw=False, key_added="_llm4cell_rgg",
        )
    res = work.uns["_llm4cell_rgg"]
    pts = res["pts"]
    pts_rest = res.get("pts_rest")
    for g in valid:
        names = np.asarray(res["names"][g]).astype(str)
        df = pd.DataFrame({
            "gene": names,
            "score": np.asarray(res["scores"][g], dtype=float),
            "logfoldchange": np.asarray(res["logfoldchanges"][g], dtype=float),
            "pval_adj": np.asarray(res["pvals_adj"][g], dtype=float),
        })
        df["pct_in"] = pts.loc[names, g].to_numpy(dtype=float)
        df["pct_out"] = (
            pts_rest.loc[names, g].to_numpy(dtype=float) if pts_rest is not None else np.nan
        )
        eligible = (
            (df["logfoldchange"] > MIN_LOGFC)
            & (df["pct_in"] >= MIN_PCT)
            & df["gene"].map(is_evidence_gene)
        )
        df["significant"] = df["pval_adj"] < MAX_PVAL_ADJ
        chosen = df[eligible & df["significant"]]
        if len(chosen) < min(MIN_SIGNIFICANT, n_markers):
            # Small groups rarely reach significance: keep the best-ranked eligible genes.
            chosen = df[eligible]
        out[g] = chosen.head(n_markers).reset_index(drop=True)
    del work.uns["_llm4cell_rgg"]
    return out


def _empty_markers() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype=float) for c in
         ["score", "logfoldchange", "pval_adj", "pct_in", "pct_out"]}
    ).assign(gene=pd.Series(dtype=str))[
        ["gene", "score", "logfoldchange", "pval_adj", "pct_in", "pct_out"]
    ]
