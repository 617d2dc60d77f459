"""Self-contained HTML report: UMAP by label, marker dot plot, per-group evidence table,
parameters and versions. Images are embedded as base64 PNG, so the file works offline."""

from __future__ import annotations

import json
import os
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from .._io import write_text
from ._html import escape, figure, page, png_bytes

__all__ = ["render_report", "write_report"]

def _ensure_umap(
    adata: ad.AnnData, work: ad.AnnData, random_state: int
) -> np.ndarray:
    """UMAP coordinates: the user's ``obsm['X_umap']`` or computed on the working data."""
    import scanpy as sc

    existing = adata.obsm.get("X_umap")
    if existing is not None and np.asarray(existing).shape == (adata.n_obs, 2):
        return np.asarray(existing)
    if "neighbors" not in work.uns:
        if "highly_variable" not in work.var:
            sc.pp.highly_variable_genes(work, n_top_genes=min(2000, work.n_vars), flavor="seurat")
        n_hvg = int(work.var["highly_variable"].sum())
        n_comps = max(2, min(50, work.n_obs - 1, n_hvg - 1))
        sc.pp.pca(work, n_comps=n_comps, mask_var="highly_variable", random_state=random_state)
        sc.pp.neighbors(work, n_neighbors=min(15, work.n_obs - 1), random_state=random_state)
    sc.tl.umap(work, random_state=random_state)
    coords = np.asarray(work.obsm["X_umap"])
    adata.obsm["X_umap"] = coords
    return coords


def _umap_figure(coords: np.ndarray, labels: pd.Series) -> bytes:
    from matplotlib.figure import Figure

    cats = list(labels.value_counts().index)
    fig = Figure(figsize=(8.5, 6))
    ax = fig.add_subplot(111)
    try:
        import matplotlib

        cmap = matplotlib.colormaps["tab20"]
    except (AttributeError, KeyError):  # pragma: no cover - old matplotlib
        from matplotlib import cm

        cmap = cm.get_cmap("tab20")
    size = max(1.0, min(20.0, 30000 / max(1, len(labels))))
    for i, cat in enumerate(cats):
        mask = (labels == cat).to_numpy()
        color = "#bbbbbb" if cat == "unknown" else cmap(i % 20)
        ax.scatter(coords[mask, 0], coords[mask, 1], s=size, color=color, label=cat,
                   linewidths=0, rasterized=True)
    ax.set_xlabel("UMAP 1")
    ax.set_ylabel("UMAP 2")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False,
              markerscale=max(1.0, 6 / size))
    ax.set_title("Cells coloured by llm4cell label")
    return png_bytes(fig)


def _dotplot_figure(work: ad.AnnData, labels: pd.Series, result: Any) -> bytes | None:
    import matplotlib.pyplot as plt
    import scanpy as sc

    genes_by_label: dict[str, list[str]] = {}
    for g, a in result.annotations.items():
        genes = [x for x in result.queries[g].genes[:3] if x in work.var_names]
        bucket = genes_by_label.setdefault(a.label, [])
        bucket.extend(x for x in genes if x not in bucket)
    seen: set[str] = set()
    var_names: dict[str, list[str]] = {}
    for lab in sorted(genes_by_label):
        keep = [x for x in genes_by_label[lab] if x not in seen][:4]
        seen.update(keep)
        if keep:
            var_names[lab] = keep
    if not var_names:
        return None
    tmp = ad.AnnData(X=work.X, obs=pd.DataFrame(index=work.obs_names),
                     var=pd.DataFrame(index=work.var_names))
    tmp.obs["label"] = pd.Categorical(labels.astype(str).to_numpy())
    dp = sc.pl.dotplot(tmp, var_names=var_names, groupby="label", show=False,
                       return_fig=True, standard_scale="var")
    dp.make_figure()
    fig = dp.fig
    try:
        return png_bytes(fig)
    finally:
        plt.close(fig)


def _table(result: Any) -> str:
    df = result.to_df()
    head = (
        "<tr><th>group</th><th>cells</th><th>label</th><th>CL ID</th><th>confidence</th>"
        "<th>top markers</th><th>evidence</th><th>next candidates</th></tr>"
    )
    rows = []
    for _, r in df.sort_values("group", key=_natural_key).iterrows():
        unknown = r["label"] == "unknown"
        bar = f'<span class="bar" style="width:{60 * float(r["confidence"]):.0f}px"></span>'
        cands = "<br>".join(escape(c) for c in (r["candidate_2"], r["candidate_3"],
                                               r["candidate_4"]) if c)
        rows.append(
            f"<tr><td>{escape(r['group'])}</td><td>{int(r['n_cells'])}</td>"
            f"<td{' class=unknown' if unknown else ''}>{escape(r['label'])}</td>"
            f"<td>{escape(r['ontology_id'])}</td>"
            f"<td>{float(r['confidence']):.2f} {bar}</td>"
            f"<td>{escape(r['top_markers'])}</td><td>{escape(r['evidence'])}</td>"
            f"<td>{cands}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _natural_key(s: pd.Series) -> pd.Series:
    return s.map(lambda x: (0, int(x), "") if str(x).isdigit() else (1, 0, str(x)))


def write_report(
    adata: ad.AnnData,
    result: Any,
    expr: Any,
    path: str | os.PathLike[str],
    *,
    random_state: int = 0,
) -> None:
    """Write the HTML report for an annotation run (atomically).

    Parameters
    ----------
    adata
        The annotated AnnData (``obsm['X_umap']`` is used, or computed and stored).
    result
        The :class:`~llm4cell.AnnotationResult`.
    expr
        The working expression of the run (for the dot plot and, if needed, the UMAP).
    path
        Where to write the ``.html`` file.
    """
    write_text(render_report(adata, result, expr, random_state=random_state), path)


def render_report(adata: ad.AnnData, result: Any, expr: Any, *, random_state: int = 0) -> str:
    """The HTML report of an annotation run as a string (see :func:`write_report`)."""
    work = expr.adata
    labels = result.cell_table()["label"]
    coords = _ensure_umap(adata, work, random_state)
    umap_png = _umap_figure(coords, labels)
    dot_png = _dotplot_figure(work, labels, result)
    prov = dict(result.provenance)
    n_unknown = int((labels == "unknown").sum())
    counts = labels.value_counts()
    summary = "".join(
        f"<tr><td>{escape(k)}</td><td>{int(v)}</td><td>{100 * v / len(labels):.1f}%</td></tr>"
        for k, v in counts.items()
    )
    dot_html = figure(dot_png, "dot plot") if dot_png else "<p>No marker genes to plot.</p>"
    body = f"""<h1>llm4cell annotation report</h1>
<p class="meta">{len(labels)} cells, {len(result.annotations)} groups
(by <code>{escape(result.groupby)}</code>), backend <code>{escape(prov.get('backend'))}</code>,
Cell Ontology {escape(prov.get('cl_version'))}, llm4cell {escape(prov.get('version'))},
{escape(prov.get('created'))}. {n_unknown} cells labelled <i>unknown</i>.</p>
<h2>Cells by label</h2>
{figure(umap_png, "UMAP coloured by label")}
<table style="width:auto;margin-top:1em"><tr><th>label</th><th>cells</th><th>share</th></tr>
{summary}</table>
<h2>Top markers by label</h2>
{dot_html}
<h2>Groups, labels and evidence</h2>
<p class="meta">Confidence in [0, 1]: how strongly and how distinctly the markers
support the label (see the README). Next candidates: name (CL ID, score).</p>
{_table(result)}
<h2>Parameters and versions</h2>
<pre>{escape(json.dumps(prov, indent=2, default=str))}</pre>
"""
    return page("llm4cell annotation report", body)
