"""Cell states per cell and per group, from the working expression.

For each program of :mod:`llm4cell._states` present in the data with at least
:data:`MIN_PROGRAM_GENES` genes, every cell gets a score with ``sc.tl.score_genes``
(Satija et al. 2015 / Tirosh et al. 2016: the mean log-expression of the program's genes
minus that of expression-matched control genes). The cycling score is the larger of the
S-phase and G2/M scores (the score of both lists together when neither phase has enough
genes in the data). A program is called for a group when the median score of its cells
exceeds, by at least :data:`MIN_LIFT`, the reference level of the program: the 25th
percentile of the median scores of all groups (:data:`REFERENCE_QUANTILE`), so the
reference is the least active quarter of the groups, whatever the share of cells in the
state. Both thresholds were set a priori (a lift of 0.5 in log1p units is a 1.65-fold
rise of the program over its matched controls; a quarter of the groups is assumed to be
in the resting state) and never tuned on benchmark labels. A data set whose groups are
all in one state (every cell stimulated) has no resting reference, and the state is
then not called.

The mitochondrial program is different: its share of a cell's transcripts differs
between healthy cell types by several fold (neutrophils hold few mitochondrial reads),
so the rule above would call whole types. Its per-cell value is the fraction of the
cell's normalised expression on mitochondrial genes, and it is called for a group whose
median cell is a quality-control outlier: above the data set's median fraction by more
than :data:`MITO_MADS` (3) median absolute deviations (the outlier rule of Heumos et al.
2023, Nat Rev Genet 24:550, for the mitochondrial fraction) and above the threshold of
Osorio & Cai 2021 (Bioinformatics 37:963): 10% in human, 5% in mouse
(:data:`MITO_FRACTION`). On a gene subset (a data set that kept only some genes) the
fraction is over the genes kept.

Each cell is also called on its own (:func:`call_cell_states`): a program is called for a
cell whose score reaches the same level (the reference plus :data:`MIN_LIFT`; for the
mitochondrial fraction, the same floor) and is an outlier among the resting cells (the
cells of the groups at or below the reference): above their median by :data:`CELL_MADS`
(3) scaled median absolute deviations, the convention used for the mitochondrial
fraction. So the interferon-stimulated half of a group that mixes stimulated and resting
cells is named cell by cell.
"""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from .._states import PROGRAMS, program_genes
from ..genes import state_gene_program

__all__ = ["CELL_MADS", "MIN_LIFT", "MIN_PROGRAM_GENES", "MITO_FRACTION", "MITO_MADS",
           "REFERENCE_QUANTILE", "STATE_RULE", "call_cell_states", "call_states", "score_states"]

#: A program needs this many of its genes in the data to be scored.
MIN_PROGRAM_GENES = 3
#: Lift of a group's median score over the reference that calls the program.
MIN_LIFT = 0.5
#: Quantile of the groups' median scores that is the reference (resting) level.
REFERENCE_QUANTILE = 0.25
#: Mitochondrial fraction of a cell's expression above which its group is called
#: "mitochondrial", by species (Osorio & Cai 2021).
MITO_FRACTION: dict[str, float] = {"human": 0.10, "mouse": 0.05}
#: ... and by this many median absolute deviations above the data set's median cell.
MITO_MADS = 3.0
#: A cell is called when its score is also this many scaled MADs above the resting cells'
#: median (the outlier rule of Heumos et al. 2023, as for the mitochondrial fraction).
CELL_MADS = 3.0
#: The rule, as recorded in the provenance.
STATE_RULE = (
    f"sc.tl.score_genes per program (cycling: max of S and G2M); called when a group's "
    f"median score exceeds the {REFERENCE_QUANTILE:.0%} quantile of the groups' medians by "
    f">= {MIN_LIFT} (programs with >= {MIN_PROGRAM_GENES} genes in the data); "
    f"mitochondrial: fraction of expression, called when a group's median exceeds the "
    f"cells' median + {MITO_MADS:g} MAD and {MITO_FRACTION['human']:.0%} (human) / "
    f"{MITO_FRACTION['mouse']:.0%} (mouse); per cell: the same level, and >= the resting "
    f"cells' median + {CELL_MADS:g} scaled MAD"
)


def _present(var_names: pd.Index, of: dict[str, str | None], name: str) -> list[str]:
    """The data's genes of a program (listed genes, family patterns, mouse orthologs);
    ``of`` maps each gene to its program."""
    if name in ("S", "G2M"):
        listed = program_genes(name)
        return [g for g in var_names if g in listed or g.upper() in listed]
    return [g for g in var_names if of[g] == name]


def _score(work: ad.AnnData, genes: list[str], random_state: int) -> np.ndarray:
    # scanpy is imported on use: it takes about 2 s, which `import llm4cell` should not pay.
    import scanpy as sc

    probe = ad.AnnData(X=work.X, obs=pd.DataFrame(index=work.obs_names),
                       var=pd.DataFrame(index=work.var_names))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # score_genes warns about genes it drops
        sc.tl.score_genes(probe, genes, ctrl_size=min(50, max(1, probe.n_vars // 4)),
                          n_bins=25, random_state=random_state, use_raw=False,
                          score_name="_score")
    return probe.obs["_score"].to_numpy(dtype=np.float32)


def _fraction(work: ad.AnnData, genes: list[str]) -> np.ndarray:
    """Per cell, the share of normalised expression (``expm1`` of log1p values) on
    ``genes``."""
    X = work.X.tocsr() if sparse.issparse(work.X) else sparse.csr_matrix(work.X)
    linear = X.copy()
    linear.data = np.expm1(linear.data)
    total = np.asarray(linear.sum(axis=1)).ravel()
    idx = work.var_names.get_indexer(genes)
    part = np.asarray(linear[:, idx].sum(axis=1)).ravel()
    return (part / np.where(total > 0, total, 1.0)).astype(np.float32)


def score_states(work: ad.AnnData, *, random_state: int = 0) -> pd.DataFrame:
    """Per-cell program scores (index: ``work.obs_names``; one column per program, in
    the order of :data:`llm4cell._states.PROGRAMS`; NaN for programs with fewer than
    :data:`MIN_PROGRAM_GENES` genes in the data). ``mitochondrial`` is the fraction of
    the cell's expression on mitochondrial genes (any number of them)."""
    names = pd.Index(work.var_names.astype(str))
    of = {g: state_gene_program(g) for g in names}
    out = pd.DataFrame(index=work.obs_names.copy())
    for program in PROGRAMS:
        if program.name == "cycling":
            parts = [_present(names, of, phase) for phase in ("S", "G2M")]
            union = [g for p in parts for g in p]
            parts = [p for p in parts if len(p) >= MIN_PROGRAM_GENES] or (
                [union] if len(union) >= MIN_PROGRAM_GENES else [])
            scores = [_score(work, p, random_state) for p in parts]
            col = np.maximum.reduce(scores) if scores else None
        elif program.name == "mitochondrial":
            genes = _present(names, of, program.name)
            col = _fraction(work, genes) if genes else None
        else:
            genes = _present(names, of, program.name)
            col = _score(work, genes, random_state) if len(genes) >= MIN_PROGRAM_GENES else None
        out[program.name] = (np.full(work.n_obs, np.nan, dtype=np.float32)
                             if col is None else col)
    return out


def _thresholds(scores: pd.DataFrame, medians: pd.DataFrame, species: str
                ) -> dict[str, float]:
    """The level above which a program is called (group median or cell), per program."""
    out: dict[str, float] = {}
    for name in scores.columns:
        col = medians[name].dropna()
        if name == "mitochondrial":
            cells = scores[name].dropna().to_numpy()
            if not len(cells):
                continue
            centre = float(np.median(cells))
            mad = float(np.median(np.abs(cells - centre)))
            out[name] = max(MITO_FRACTION.get(species, 0.10), centre + MITO_MADS * mad)
            continue
        if len(col) < 2:
            continue
        out[name] = float(np.quantile(col.to_numpy(), REFERENCE_QUANTILE)) + MIN_LIFT
    return out


def _called(values: np.ndarray, names: list[str], level: dict[str, float]) -> np.ndarray:
    """(rows x programs) values at their program's level: above it for the mitochondrial
    fraction, at or above it for the scores; NaN is never called."""
    limit = np.array([level[n] for n in names])
    with np.errstate(invalid="ignore"):
        called = np.where(np.array([n == "mitochondrial" for n in names]),
                          values > limit, values >= limit - 1e-12)
    return called & ~np.isnan(values)


def _join(called: np.ndarray, names: list[str]) -> list[str]:
    """Per row of a (rows x programs) boolean array, the called names joined by "; "."""
    return ["; ".join(n for n, c in zip(names, row, strict=True) if c) for row in called]


def call_states(scores: pd.DataFrame, groups: pd.Series, *,
                species: str = "human") -> dict[str, str]:
    """The state of every group: the programs called for it (rule in the module
    docstring), joined by ``"; "`` in program order, or ``""``."""
    keys = groups.astype(object).to_numpy()
    medians = scores.groupby(keys, sort=False).median()
    level = _thresholds(scores, medians, species)
    names = [n for n in scores.columns if n in level]
    if not names:
        return {str(g): "" for g in medians.index}
    called = _called(medians[names].to_numpy(), names, level)
    return dict(zip(map(str, medians.index), _join(called, names), strict=True))


def _cell_levels(scores: pd.DataFrame, medians: pd.DataFrame, keys: np.ndarray,
                 level: dict[str, float]) -> dict[str, float]:
    """Per-cell levels: the group level, raised to the resting cells' median plus
    :data:`CELL_MADS` scaled MADs (resting: cells of the groups whose median is at or below
    the reference); the mitochondrial floor is already a cell outlier rule."""
    out: dict[str, float] = {}
    for name, lvl in level.items():
        if name == "mitochondrial":
            out[name] = lvl
            continue
        col = medians[name].dropna()
        resting_groups = col.index[col <= lvl - MIN_LIFT + 1e-12]
        rest = scores[name][np.isin(keys, resting_groups)].dropna().to_numpy()
        if rest.size:
            centre = float(np.median(rest))
            mad = 1.4826 * float(np.median(np.abs(rest - centre)))
            lvl = max(lvl, centre + CELL_MADS * mad)
        out[name] = lvl
    return out


def call_cell_states(scores: pd.DataFrame, groups: pd.Series, *,
                     species: str = "human") -> pd.Series:
    """The state of every cell (index: the cells): the programs whose per-cell score
    reaches the level that calls a group (:func:`call_states`) and is an outlier among
    the resting cells (above their median by :data:`CELL_MADS` scaled MADs), joined by
    ``"; "`` in program order, or ``""``."""
    keys = groups.astype(object).to_numpy()
    medians = scores.groupby(keys, sort=False).median()
    level = _cell_levels(scores, medians, keys, _thresholds(scores, medians, species))
    names = [n for n in scores.columns if n in level]
    if not names:
        return pd.Series([""] * len(scores), index=scores.index, dtype=object)
    called = _called(scores[names].to_numpy(), names, level)
    return pd.Series(_join(called, names), index=scores.index, dtype=object)
