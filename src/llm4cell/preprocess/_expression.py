"""The working log-normalised expression: which matrix, which symbols, which transform.

``layer=`` picks the matrix explicitly; otherwise ``X`` is used unless it holds scaled
values (then ``layers["counts"]``, else ``.raw``; see :mod:`._matrix`). The input is never
modified: transformations run on a private working copy whose ``var_names`` are unique
gene symbols (:func:`llm4cell.genes.resolve_var_symbols`).
"""

from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from .._errors import InputError
from ..genes import resolve_var_symbols
from ._matrix import MatrixKind, detect_matrix_kind

__all__ = ["Expression", "prepare_expression"]


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


def _pick_layer(adata: ad.AnnData, layer: str) -> tuple[object, pd.DataFrame, str, MatrixKind]:
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


def _pick_unscaled(adata: ad.AnnData) -> tuple[object, pd.DataFrame, str, MatrixKind]:
    """``layers['counts']``, else ``.raw``, when ``X`` holds scaled values."""
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


def _pick_matrix(
    adata: ad.AnnData, layer: str | None
) -> tuple[object, pd.DataFrame, str, MatrixKind]:
    if layer is not None:
        return _pick_layer(adata, layer)
    kind = detect_matrix_kind(adata.X, what="X")
    if kind != "scaled":
        return adata.X, adata.var, "X", kind
    return _pick_unscaled(adata)


def prepare_expression(
    adata: ad.AnnData, *, layer: str | None = None, species: str = "human"
) -> Expression:
    """Build the working log-normalised AnnData without touching ``adata``.

    Raises
    ------
    InputError
        For empty, non-finite or unusable matrices, and unknown layers.
    """
    # scanpy is imported on use: it takes about 2 s, which `import llm4cell` and the CLI's
    # --help should not pay.
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
