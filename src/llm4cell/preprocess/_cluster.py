"""Leiden clusters, when the user gives no groups.

The standard scanpy route on the working copy: highly variable genes (``flavor="seurat"``,
up to 2,000), PCA (up to 50 components on those genes, ``random_state=0``), a
15-nearest-neighbour graph and Leiden (igraph implementation, ``resolution=1.0``,
2 iterations, ``random_state=0``).
"""

from __future__ import annotations

import anndata as ad
import pandas as pd

from .._errors import InputError

__all__ = ["MIN_CELLS_TO_CLUSTER", "MIN_GENES_TO_CLUSTER", "check_can_cluster", "cluster"]

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
    # scanpy is imported on use: it takes about 2 s, which `import llm4cell` should not pay.
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
