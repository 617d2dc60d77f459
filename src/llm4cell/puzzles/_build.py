"""Drawing CellPuzzles from labelled data (:func:`build_puzzles`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from .._errors import InputError
from .._records import Species
from ..ontology._graph import load_ontology
from ..ontology._matcher import get_matcher
from ..preprocess._expression import prepare_expression
from ._records import Puzzle, PuzzleCell

__all__ = ["build_puzzles", "candidate_ids", "id_column"]


def _check_build_args(n_min: int, n_max: int, top_genes: int, per_n: int) -> None:
    if n_min < 2:
        msg = f"--n-min must be at least 2, got {n_min}"
        raise InputError(msg)
    if n_max < n_min:
        msg = f"--n-max ({n_max}) must be at least --n-min ({n_min})"
        raise InputError(msg)
    if top_genes < 1 or per_n < 1:
        msg = f"--top-genes and --per-n must be at least 1, got {top_genes} and {per_n}"
        raise InputError(msg)


def _column(adata: ad.AnnData, col: str, option: str) -> pd.Series:
    if col not in adata.obs.columns:
        cols = ", ".join(map(repr, list(adata.obs.columns)[:12]))
        msg = f"{option} {col!r} is not an obs column; choose one of: {cols}"
        raise InputError(msg)
    return adata.obs[col]


def id_column(adata: ad.AnnData, label_col: str, label_id_col: str | None) -> str | None:
    """The obs column of the labels' CL IDs: ``label_id_col`` (checked), else
    ``{label_col}_ontology_term_id`` or ``{label_col}_ontology_id`` when present."""
    if label_id_col is not None:
        _column(adata, label_id_col, "--label-id-col")
        return label_id_col
    for guess in (f"{label_col}_ontology_term_id", f"{label_col}_ontology_id"):
        if guess in adata.obs.columns:
            return guess
    return None


def candidate_ids(
    labels: Iterable[str], ids: Mapping[str, str] | None, tissue: str | None
) -> dict[str, str | None]:
    """Label -> CL ID: the given ID (resolved, obsolete terms replaced), else the label
    matcher's term for the text (None when nothing matches)."""
    onto = load_ontology()
    matcher = get_matcher()
    out: dict[str, str | None] = {}
    for label in labels:
        given = (ids or {}).get(label)
        tid = onto.resolve(given.replace("_", ":")) if given else None
        out[label] = tid if tid is not None else matcher.match(label, tissue=tissue).ontology_id
    return out


def _context(obs: pd.DataFrame, cols: Sequence[str], tissue: str | None) -> str:
    parts = []
    for col in cols:
        values = [str(v) for v in pd.unique(obs[col].dropna().astype(str)) if str(v).strip()]
        if values:
            parts.append(f"{col.replace('_', ' ')}: {', '.join(values[:5])}")
    if tissue and not any(c.lower() == "tissue" for c in cols):
        parts.append(f"tissue: {tissue}")
    if not parts:
        return "The cells come from one donor."
    return "The cells come from one donor (" + "; ".join(parts) + ")."


def _top_genes(X: Any, names: np.ndarray, row: int, k: int) -> tuple[str, ...]:
    values = X[row]
    values = values.toarray().ravel() if hasattr(values, "toarray") else np.asarray(values).ravel()
    nz = np.flatnonzero(values > 0)
    if nz.size == 0:
        return ()
    order = nz[np.lexsort((names[nz], -values[nz]))][:k]
    return tuple(str(g) for g in names[order])


def build_puzzles(
    adata: ad.AnnData,
    *,
    label_col: str,
    donor_col: str | None = None,
    batch_col: str | None = None,
    context_cols: Sequence[str] = (),
    label_id_col: str | None = None,
    n_min: int = 8,
    n_max: int = 15,
    top_genes: int = 50,
    per_n: int = 40,
    seed: int = 0,
    tissue: str | None = None,
    species: Species = "human",
    layer: str | None = None,
    source: str = "",
) -> list[Puzzle]:
    """Draw CellPuzzles instances from a labelled AnnData.

    Cells are grouped by donor (and batch); rounds over the groups draw, per group, a
    size N among those still wanted (``per_n`` puzzles per N from ``n_min`` to
    ``n_max``, at most the group's number of types), N distinct types and one random
    cell of each type, until every N is filled or no group can give more.

    Parameters
    ----------
    adata
        Labelled data (counts, normalised or log-normalised; scaled ``X`` uses ``.raw``
        or ``layers["counts"]``, as in :func:`~llm4cell.annotate`).
    label_col
        ``obs`` column of the true cell types.
    donor_col, batch_col
        ``obs`` columns to group by (all cells form one group without them).
    context_cols
        ``obs`` columns written into the context sentence (sex, age, disease, ...).
    label_id_col
        ``obs`` column of the labels' Cell Ontology IDs (default:
        ``{label_col}_ontology_term_id`` when present; otherwise labels are mapped to CL
        by the label matcher).
    n_min, n_max
        Puzzle sizes.
    top_genes
        Genes per cell, by expression, descending (Cell-o1 uses 50).
    per_n
        Puzzles wanted per size N.
    seed
        Random seed (same seed, same puzzles).
    tissue, species
        Written into each puzzle (the knowledge engine uses them).
    layer
        Matrix to use instead of the detected one.
    source
        Recorded in each puzzle (file name).

    Returns
    -------
    The puzzles, in drawing order.

    Raises
    ------
    InputError
        For unknown columns, bad sizes, or when no group holds ``n_min`` distinct types.
    """
    _check_build_args(n_min, n_max, top_genes, per_n)
    labels = _column(adata, label_col, "--label-col")
    group_cols = [c for c in (donor_col, batch_col) if c is not None]
    for col, opt in zip((donor_col, batch_col), ("--donor-col", "--batch-col"), strict=True):
        if col is not None:
            _column(adata, col, opt)
    for col in context_cols:
        _column(adata, col, "--context-cols")
    id_col = id_column(adata, label_col, label_id_col)

    obs = adata.obs
    ok = labels.notna().to_numpy() & (labels.astype(str).str.strip() != "").to_numpy()
    for col in group_cols:
        ok &= obs[col].notna().to_numpy()
    positions = np.flatnonzero(ok)
    label_arr = labels.astype(str).to_numpy()
    if group_cols:
        keys = obs[group_cols].astype(str).agg(" / ".join, axis=1).to_numpy()
    else:
        keys = np.full(adata.n_obs, "all cells", dtype=object)
    groups: dict[str, dict[str, list[int]]] = {}
    for i in positions:
        groups.setdefault(str(keys[i]), {}).setdefault(str(label_arr[i]), []).append(int(i))
    most = max((len(t) for t in groups.values()), default=0)
    if most < n_min:
        where = "per donor" if group_cols else "in the data"
        msg = (f"--label-col {label_col!r} has at most {most} distinct types {where}, but "
               f"puzzles need {n_min} (--n-min): lower --n-min or use a finer label column")
        raise InputError(msg)

    expr = prepare_expression(adata, layer=layer, species=species)
    X = expr.adata.X
    X = X.tocsr() if hasattr(X, "tocsr") else np.asarray(X)
    names = np.asarray(expr.adata.var_names.astype(str), dtype=object)
    genes_of: dict[int, tuple[str, ...]] = {}

    def genes(row: int) -> tuple[str, ...]:
        if row not in genes_of:
            genes_of[row] = _top_genes(X, names, row, top_genes)
        return genes_of[row]

    id_map: dict[str, str] | None = None
    if id_col is not None:
        pairs = pd.DataFrame({"l": label_arr, "i": obs[id_col].astype(str).to_numpy()})
        id_map = dict(pairs.loc[positions].drop_duplicates("l").itertuples(index=False))
    all_labels = sorted({str(label_arr[i]) for i in positions})
    cl_ids = candidate_ids(all_labels, id_map, tissue)

    rng = np.random.default_rng(seed)
    remaining = dict.fromkeys(range(n_min, n_max + 1), per_n)
    group_keys = sorted(groups)
    puzzles: list[Puzzle] = []
    progress = True
    while progress and any(remaining.values()):
        progress = False
        for g in group_keys:
            types = sorted(groups[g])
            sizes = [n for n in range(n_min, min(len(types), n_max) + 1) if remaining[n] > 0]
            if not sizes:
                continue
            n = int(rng.choice(sizes))
            chosen = [types[k] for k in rng.choice(len(types), size=n, replace=False)]
            rows = [int(rng.choice(groups[g][t])) for t in chosen]
            cells = tuple(PuzzleCell(id=str(adata.obs_names[r]), genes=genes(r)) for r in rows)
            group_obs = obs.iloc[rows]
            first = obs.iloc[rows[0]]
            puzzles.append(Puzzle(
                id=f"p{len(puzzles):05d}-n{n}",
                cells=cells,
                candidates=tuple(sorted(chosen, key=lambda s: (s.casefold(), s))),
                answer=tuple(chosen),
                context=_context(group_obs, context_cols, tissue),
                candidate_ids={t: cl_ids[t] for t in chosen},
                tissue=tissue, species=species,
                donor=str(first[donor_col]) if donor_col else None,
                batch=str(first[batch_col]) if batch_col else None,
                source=source,
            ))
            remaining[n] -= 1
            progress = True
    return puzzles

