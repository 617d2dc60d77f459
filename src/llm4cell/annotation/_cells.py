"""Per-cell evidence: candidate-type scores, support for the group's label, per-cell
confidence and groups that mix types.

Every cell has a ulm t-value for each candidate type (the union of every group's best
engine types; :func:`llm4cell.knowledge._expression.group_expression_scores`). From them:

* **support** of a cell for its group's label: the share of the cell's belief
  ``softmax(z / SUPPORT_TEMPERATURE)`` (``z``: the cell's t-values standardised over the
  candidates) on candidate types *consistent* with the label: the label itself, its
  ancestors and descendants, and the types of its family
  (:class:`~llm4cell.knowledge.Levels`);
* **per-cell confidence**: ``sigmoid(a + b logit(group confidence) + d logit(support))``
  (at most ``MAX_CONFIDENCE``) with ``(a, b, d) = CELL_CALIBRATION``, chosen
  leave-one-dataset-out on real data (``docs/knowledge.md``); used for the knowledge
  engine's answers only (an LLM's stated confidence is copied to its cells unchanged);
* **mixed groups**: each cell's best candidate type, after ``MIXED_SMOOTHING_STEPS``
  steps of averaging its scores over its neighbours in the k-NN graph (needs the graph
  of llm4cell's own clustering; without it no group is flagged, as per-cell argmaxes
  alone are too noisy), gives it a family (at most ``MIXED_MAX_CELLS`` seeded cells per
  group vote); a group is flagged
  when two families whose head terms are unrelated in the Cell Ontology each hold at least
  ``MIXED_SHARE`` of its cells (and ``MIXED_MIN_CELLS`` cells).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse

if TYPE_CHECKING:
    from .._records import Annotation
    from ..knowledge._engine import KnowledgeBase

__all__ = ["CELL_CALIBRATION", "MAX_CONFIDENCE", "MIXED_MAX_CELLS", "MIXED_MIN_CELLS",
           "MIXED_SHARE",
           "MIXED_SMOOTHING_STEPS", "SUPPORT_TEMPERATURE", "best_families",
           "cell_confidence", "cell_support", "family_scores", "mixed_groups", "smooth",
           "smoothed_families", "vote_sample"]

#: Temperature of the per-cell softmax over standardised candidate t-values (a priori).
SUPPORT_TEMPERATURE = 1.0
#: ``(a, b, d)`` of the per-cell confidence map (leave-one-dataset-out, docs/knowledge.md).
CELL_CALIBRATION: tuple[float, float, float] = (-0.396, 5.046, 0.0)
#: No answer from expression and markers is certain: the per-cell map stops here.
MAX_CONFIDENCE = 0.99
#: Steps of neighbour averaging of the per-cell scores before the mixed-group vote.
MIXED_SMOOTHING_STEPS = 2
#: Cells per group whose (smoothed) votes decide the mixed flag (a seeded sample above it).
MIXED_MAX_CELLS = 1000
#: Share of a group's cells each of two unrelated families needs for a mixed flag.
MIXED_SHARE = 0.2
#: ... and the number of cells.
MIXED_MIN_CELLS = 10


def _standardised(scores: np.ndarray) -> np.ndarray:
    """Per-cell z over the finite candidates (NaN stays NaN)."""
    with np.errstate(invalid="ignore"):
        mu = np.nanmean(scores, axis=1, keepdims=True)
        sd = np.nanstd(scores, axis=1, keepdims=True)
    return (scores - mu) / np.where(sd > 1e-9, sd, 1.0)


def _consistent(kb: KnowledgeBase, label: str, type_ids: Sequence[str]) -> np.ndarray:
    """Mask of the candidate types consistent with ``label`` (self, relatives, family)."""
    onto = kb.ontology
    family = kb.levels.of(label).family_key if kb.levels is not None else ""
    mask = np.zeros(len(type_ids), dtype=bool)
    for j, t in enumerate(type_ids):
        if t == label or onto.related(t, label):
            mask[j] = True
        elif family and kb.levels is not None and kb.levels.family_of(t) == family:
            mask[j] = True
    return mask


def cell_support(kb: KnowledgeBase, scores: np.ndarray, type_ids: Sequence[str],
                 labels: Sequence[str | None]) -> np.ndarray:
    """Each cell's belief share on types consistent with its label (NaN: no label or no
    scored candidate)."""
    z = _standardised(scores.astype(np.float64)) / SUPPORT_TEMPERATURE
    z = np.where(np.isfinite(z), z, -np.inf)
    zmax = z.max(axis=1, keepdims=True)
    scored = np.isfinite(zmax).ravel()
    with np.errstate(invalid="ignore"):
        e = np.exp(z - np.where(np.isfinite(zmax), zmax, 0.0))
    total = e.sum(axis=1)
    out = np.full(len(labels), np.nan)
    labels_arr = np.array([lb if lb else "" for lb in labels], dtype=object)
    for label in pd.unique(labels_arr):
        if not label:
            continue
        rows = np.flatnonzero((labels_arr == label) & scored)
        if rows.size == 0:
            continue
        mask = _consistent(kb, str(label), type_ids)
        out[rows] = e[np.ix_(rows, mask)].sum(axis=1) / total[rows]
    return out


def _logit(v: np.ndarray) -> np.ndarray:
    v = np.clip(v, 1e-4, 1 - 1e-4)
    return np.log(v / (1 - v))


def cell_confidence(group_confidence: np.ndarray, support: np.ndarray,
                    calibration: tuple[float, float, float] = CELL_CALIBRATION
                    ) -> np.ndarray:
    """``sigmoid(a + b logit(group confidence) + d logit(support))``, at most
    :data:`MAX_CONFIDENCE`; where the support is NaN the support term is left out; a group
    confidence of 0 ("unknown") stays 0."""
    a, b, d = calibration
    sup = np.where(np.isfinite(support), support, 0.5)
    z = a + b * _logit(group_confidence) + d * _logit(sup)
    out = np.minimum(1.0 / (1.0 + np.exp(-z)), MAX_CONFIDENCE)
    return np.where(group_confidence > 0, out, 0.0)


def family_scores(kb: KnowledgeBase, scores: np.ndarray, type_ids: Sequence[str]
                  ) -> tuple[np.ndarray, list[str]]:
    """Per cell and family, the best score of the family's candidate types (a type
    without levels is its own family, keyed by its CL ID); unscored types count as -inf,
    a family without a scored type as NaN. Returns the (cells x families) array and the
    family keys."""
    keys: list[str] = []
    index: dict[str, int] = {}
    col_family = np.empty(len(type_ids), dtype=np.int64)
    for j, t in enumerate(type_ids):
        key = (kb.levels.family_of(t) if kb.levels is not None else "") or t
        col_family[j] = index.setdefault(key, len(keys))
        if col_family[j] == len(keys):
            keys.append(key)
    out = np.full((scores.shape[0], len(keys)), -np.inf, dtype=np.float32)
    finite = np.where(np.isfinite(scores), scores, -np.inf).astype(np.float32)
    for f in range(len(keys)):
        cols = np.flatnonzero(col_family == f)
        out[:, f] = finite[:, cols].max(axis=1)
    out[~np.isfinite(out)] = np.nan
    return out, keys


def _transition(graph: sparse.spmatrix) -> sparse.csr_matrix:
    """Row-normalised ``graph + I`` (the cell itself weight 1), float32."""
    G = sparse.csr_matrix(graph, dtype=np.float32) + sparse.identity(
        graph.shape[0], format="csr", dtype=np.float32)
    norm = np.asarray(G.sum(axis=1), dtype=np.float32).ravel()
    return sparse.csr_matrix(sparse.diags(1.0 / norm) @ G, dtype=np.float32)


def smooth(scores: np.ndarray, graph: sparse.spmatrix,
           steps: int = MIXED_SMOOTHING_STEPS, rows: np.ndarray | None = None) -> np.ndarray:
    """``steps`` rounds of averaging each cell's scores with its neighbours' (weights: the
    graph's connectivities, the cell itself weight 1; unscored values count as 0), for
    the cells ``rows`` (default: all; only their neighbourhoods are computed)."""
    P = _transition(graph)
    values = np.asarray(scores, dtype=np.float32)  # no copy of a float32 table
    finite = np.isfinite(values)
    if not finite.all():
        values = np.where(finite, values, np.float32(0.0))
    if steps == 0:
        return values if rows is None else values[rows]
    walk = P if rows is None else P[rows]
    for _ in range(steps - 1):
        walk = walk @ P  # sparse: the rows' neighbourhoods only
    return np.asarray(walk @ values)


def best_families(kb: KnowledgeBase, scores: np.ndarray, type_ids: Sequence[str]
                  ) -> np.ndarray:
    """Each cell's best candidate type's family key (its CL ID without levels; "" when no
    candidate is scored)."""
    fam, keys = family_scores(kb, scores, type_ids)
    return _argmax_keys(fam, keys)


def _argmax_keys(values: np.ndarray, keys: Sequence[str]) -> np.ndarray:
    finite = np.isfinite(values).any(axis=1)
    if not len(keys):
        return np.full(values.shape[0], "", dtype=object)
    best = np.argmax(np.where(np.isfinite(values), values, -np.inf), axis=1)
    return np.where(finite, np.array(keys, dtype=object)[best], "")


def smoothed_families(kb: KnowledgeBase, scores: np.ndarray, type_ids: Sequence[str],
                      graph: sparse.spmatrix, rows: np.ndarray | None = None) -> np.ndarray:
    """The best candidate type's family of the cells ``rows`` (default: all) after
    :func:`smooth` of the type scores over the k-NN graph. (Smoothing the families'
    best-type scores instead was measured and rejected: a family with many types wins by
    the maximum of many noisy scores.)"""
    return best_families(kb, smooth(scores, graph, rows=rows), type_ids)


def vote_sample(groups: pd.Series, per_group: int = MIXED_MAX_CELLS,
                seed: int = 0) -> np.ndarray:
    """Positions of at most ``per_group`` cells of each group (all of a smaller group),
    drawn with a fixed seed: the cells whose votes decide the mixed flag."""
    rng = np.random.default_rng(seed)
    codes = pd.Categorical(groups.astype(object)).codes
    out = []
    for c in np.unique(codes[codes >= 0]):
        idx = np.flatnonzero(codes == c)
        out.append(idx if idx.size <= per_group else
                   np.sort(rng.choice(idx, per_group, replace=False)))
    return np.concatenate(out) if out else np.array([], dtype=np.int64)


def _family_term(kb: KnowledgeBase, family: str) -> str:
    if kb.levels is None or family.startswith("CL:"):
        return family
    return kb.levels.level_terms.get(family) or kb.levels.family_heads.get(family, family)


def _family_name(kb: KnowledgeBase, family: str) -> str:
    if kb.levels is None or family.startswith("CL:"):
        return kb.ontology.label(family) if family in kb.ontology else family
    return kb.levels.names.get(family, family)


def mixed_groups(kb: KnowledgeBase, families: np.ndarray, groups: pd.Series,
                 annotations: Mapping[str, Annotation]) -> dict[str, str]:
    """``"NAME_A 61% + NAME_B 32%"`` for each group whose cells split between two
    unrelated families (see the module docstring), by group id."""
    onto = kb.ontology
    out: dict[str, str] = {}
    codes = groups.astype(object).to_numpy()
    for g in annotations:
        fams = families[codes == g]
        fams = fams[fams != ""]
        n = len(fams)
        if n < MIXED_MIN_CELLS:
            continue
        counts = pd.Series(fams).value_counts()
        top = [(f, c) for f, c in counts.items()
               if c >= max(MIXED_MIN_CELLS, math.ceil(MIXED_SHARE * n))]
        found = None
        for i, (fa, ca) in enumerate(top):
            ta = _family_term(kb, str(fa))
            for fb, cb in top[i + 1:]:
                tb = _family_term(kb, str(fb))
                if ta != tb and not onto.related(ta, tb):
                    found = (fa, ca, fb, cb)
                    break
            if found:
                break
        if found:
            fa, ca, fb, cb = found
            out[g] = (f"{_family_name(kb, str(fa))} {ca / n:.0%} + "
                      f"{_family_name(kb, str(fb))} {cb / n:.0%}")
    return out
