"""Two rules on top of the engine's answer: short specific lists, and mixed lists.

Both read only the knowledge base (no gene list is written here); the figures behind the
parameters are in ``docs/knowledge.md`` ("Short lists and mixtures").

Short lists
-----------
A query of one to :data:`SHORT_MAX_GENES` evidence genes that the engine would leave
``unknown`` (one gene is below ``min_matched``; two or three may match no type twice) is
answered when its genes are *specific*. For a database gene ``g`` let
``m(g, t) = prior(t) * p(g | t)`` be its profile share in each type that lists it, weighted
by the type's source prior. A term ``a`` is *supported* by ``g`` when

* ``g`` is among the :data:`SPECIFIC_TOP_RANK` (10, the top 5% of a 200-gene profile)
  strongest genes of ``a`` or of a descendant of ``a`` described by at least
  :data:`SPECIFIC_MIN_SOURCES` sources (a canonical marker, not a tail gene), and
* at least :data:`SPECIFIC_SHARE` of ``g``'s total ``m`` lies on ``a``, its descendants
  and its ancestors (types that agree with ``a``); mass on siblings and unrelated types
  counts against it.

The gene's term is the deepest supported term (among the engine's answerable terms when
the knowledge base decides by levels). The query is answered when a majority of its
evidence genes (one of one, two of two, two of three) have a term and those terms lie on
one ontology lineage; the answer is the deepest of them, with the engine's confidence
capped at :data:`SHORT_CONFIDENCE_CAP`.

Mixtures
--------
An answered query is flagged as a mixture of two cell types when, among the engine's
best-scoring types, there is a type ``B`` that

* shares no answerable ancestor with the best type ``A`` nor with the answer (the two
  lineages are unrelated in the Cell Ontology: a B cell and a hepatocyte, not a B cell and
  a T cell, which are both lymphocytes),
* scores at least :data:`MIXTURE_SCORE_RATIO` of ``A``'s score, and
* where ``A`` and ``B`` each list their own query genes that the other does not list, at
  least ``max(MIXTURE_MIN_GENES, MIXTURE_GENE_SHARE * known evidence genes)`` each.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .._records import Annotation, Candidate, MarkerQuery

if TYPE_CHECKING:
    from ._engine import KnowledgeBase

__all__ = [
    "MIXTURE_GENE_SHARE",
    "MIXTURE_MIN_GENES",
    "MIXTURE_SCORE_RATIO",
    "SHORT_CONFIDENCE_CAP",
    "SHORT_MAX_GENES",
    "SPECIFIC_MIN_SOURCES",
    "SPECIFIC_SHARE",
    "SPECIFIC_TOP_RANK",
    "Mixture",
    "gene_terms",
    "mixture",
    "mixture_note",
    "short_list_annotation",
    "short_list_term",
]

#: Lists of at most this many evidence genes may be answered from specific genes.
SHORT_MAX_GENES = 3
#: Share of a gene's (prior-weighted) profile mass that must agree with its term.
SPECIFIC_SHARE = 0.6
#: A specific gene is among this many strongest genes of a type under its term.
SPECIFIC_TOP_RANK = 10
#: ... of a type described by at least this many sources.
SPECIFIC_MIN_SOURCES = 2
#: Highest confidence of an answer given by the short-list rule.
SHORT_CONFIDENCE_CAP = 0.5
#: Fewest own genes each side of a mixture needs ...
MIXTURE_MIN_GENES = 3
#: ... or this share of the query's known evidence genes, if larger.
MIXTURE_GENE_SHARE = 0.2
#: The second type of a mixture scores at least this share of the best type's score.
MIXTURE_SCORE_RATIO = 0.5


class _GeneTable:
    """Per knowledge base: profile shares ``p(g | t)`` and each gene's rank per type."""

    def __init__(self, kb: KnowledgeBase) -> None:
        e = kb.enrichment.tocsr()
        rows = np.repeat(np.arange(e.shape[0]), np.diff(e.indptr))
        share = e.copy()
        share.data = np.expm1(share.data) * kb.background[rows]
        csc = share.tocsc()
        ranks = csc.copy()
        for j in range(csc.shape[1]):
            lo, hi = csc.indptr[j], csc.indptr[j + 1]
            order = np.lexsort((csc.indices[lo:hi], -csc.data[lo:hi]))
            rk = np.empty(hi - lo)
            rk[order] = np.arange(1, hi - lo + 1)
            ranks.data[lo:hi] = rk
        self.share = csc.tocsr()
        self.rank = ranks.tocsr()
        self.terms: dict[int, dict[str, float]] = {}

    def supported(self, kb: KnowledgeBase, row: int) -> dict[str, float]:
        """Terms a gene row may support (canonical marker below them) -> agreeing share."""
        got = self.terms.get(row)
        if got is not None:
            return got
        lo, hi = self.share.indptr[row], self.share.indptr[row + 1]
        cols = self.share.indices[lo:hi]
        mass = self.share.data[lo:hi] * kb.prior[cols]
        ranks = self.rank.data[lo:hi]
        total = float(mass.sum())
        below: dict[str, float] = {}  # mass on the term and its descendants
        strong: set[str] = set()
        own: dict[str, float] = {}
        for j, m, r in zip(cols.tolist(), mass.tolist(), ranks.tolist(), strict=True):
            tid = kb.type_ids[j]
            own[tid] = m
            canonical = r <= SPECIFIC_TOP_RANK and kb.n_sources[j] >= SPECIFIC_MIN_SOURCES
            for a in kb._lineage(tid):
                below[a] = below.get(a, 0.0) + m
                if canonical:
                    strong.add(a)
        got = {}
        for a in strong:
            above = sum(m for t, m in own.items() if t != a and t in kb._lineage(a))
            got[a] = (below[a] + above) / total if total else 0.0
        self.terms[row] = got
        return got


def _table(kb: KnowledgeBase) -> _GeneTable:
    table = kb.__dict__.get("_gene_table")
    if table is None:
        table = kb.__dict__["_gene_table"] = _GeneTable(kb)
    return table


def _allowed(kb: KnowledgeBase) -> frozenset[str] | None:
    levels = getattr(kb, "levels", None)
    if levels is None or not getattr(kb.params, "hierarchy", False):
        return None
    return getattr(levels, "answerable", None)


def gene_terms(kb: KnowledgeBase, rows: Mapping[int, float]) -> dict[int, str | None]:
    """The deepest term each gene row specifically supports (None: not specific)."""
    table = _table(kb)
    allowed = _allowed(kb)
    onto = kb.ontology
    out: dict[int, str | None] = {}
    for i in rows:
        shares = table.supported(kb, i)
        ok = [a for a, s in shares.items()
              if s >= SPECIFIC_SHARE and (allowed is None or a in allowed)]
        out[i] = max(ok, key=lambda a: (onto.depth(a), shares[a], a)) if ok else None
    return out


def short_list_term(
    kb: KnowledgeBase, rows: Mapping[int, float], n_evidence: int
) -> tuple[str | None, list[int]]:
    """The short-list rule: the answer and the specific gene rows (None: no answer)."""
    if not rows or n_evidence > SHORT_MAX_GENES:
        return None, []
    terms = gene_terms(kb, rows)
    specific = [i for i, t in terms.items() if t is not None]
    if len(specific) < n_evidence // 2 + 1:
        return None, specific
    deepest = max((terms[i] for i in specific),  # type: ignore[misc]
                  key=lambda a: (kb.ontology.depth(a), a))
    lineage = kb._lineage(deepest)
    if any(terms[i] not in lineage for i in specific):
        return None, specific
    return deepest, specific


class Mixture:
    """Two unrelated types that each explain their own part of a query."""

    def __init__(self, first: int, second: int, genes_first: list[str],
                 genes_second: list[str]) -> None:
        self.first, self.second = first, second
        self.genes_first, self.genes_second = genes_first, genes_second


def mixture(kb: KnowledgeBase, scores: np.ndarray, rows: Mapping[int, float],
            top: np.ndarray, answer: str) -> Mixture | None:
    """The mixture rule on an answered query (``top``: best types, best first)."""
    first = int(top[0])
    best = float(scores[first])
    if best <= 0:
        return None
    need = max(MIXTURE_MIN_GENES, math.ceil(MIXTURE_GENE_SHARE * len(rows)))
    a_lineage = kb._lineage(kb.type_ids[first]) | kb._lineage(answer)
    order = list(rows)
    sub = kb.enrichment[order]
    listed_a = sub[:, first].toarray().ravel() > 0
    if listed_a.sum() < need:
        return None
    for j in top[1:]:
        j = int(j)
        if scores[j] < MIXTURE_SCORE_RATIO * best:
            break
        if kb._lineage(kb.type_ids[j]) & a_lineage:
            continue
        listed_b = sub[:, j].toarray().ravel() > 0
        own_a = [str(kb.genes[i]) for i, x, y in zip(order, listed_a, listed_b, strict=True)
                 if x and not y]
        own_b = [str(kb.genes[i]) for i, x, y in zip(order, listed_a, listed_b, strict=True)
                 if y and not x]
        if len(own_a) >= need and len(own_b) >= need:
            return Mixture(first, j, own_a, own_b)
    return None


def short_list_annotation(
    kb: KnowledgeBase, query: MarkerQuery, rows: Mapping[int, float], total: float,
    n_evidence: int, top: np.ndarray, prob: np.ndarray,
    candidates: Sequence[Candidate], note: str,
) -> Annotation | None:
    """The engine's answer for a short list it would leave unknown (None: still unknown).

    ``rows``/``total``: the query's database gene rows with their rank weights and the
    weights' normaliser; ``top``/``prob``: the engine's belief; ``note``: the state-gene
    note ending the evidence text.
    """
    term, specific = short_list_term(kb, rows, n_evidence)
    if term is None:
        return None
    types = [kb.type_ids[j] for j in top]
    expected = kb.expected_agreement(term, types, prob)
    confidence = min(SHORT_CONFIDENCE_CAP,
                     kb.calibrate(expected, kb.coverage(int(top[0]), rows, total)))
    label = kb.ontology.label(term)
    genes = ", ".join(str(kb.genes[i]) for i in specific)
    return Annotation(
        id=query.id, label=label, ontology_id=term, confidence=round(confidence, 4),
        candidates=tuple(candidates),
        evidence=(
            f"short list: {len(specific)} of {n_evidence} evidence markers ({genes}) are "
            f"specific markers of {label} (a top-{SPECIFIC_TOP_RANK} marker of a type "
            f"under it, >= {SPECIFIC_SHARE:.0%} of each gene's database weight agrees "
            f"with it); confidence at most {SHORT_CONFIDENCE_CAP}{note}"
        ),
    )


def mixture_note(kb: KnowledgeBase, scores: np.ndarray, rows: Mapping[int, float],
                 answer: str) -> tuple[str, dict[str, float | int | bool | str]]:
    """Evidence text and ``details`` for an answered query: the mixture flag, if any."""
    k = min(kb.params.posterior_size, len(scores))
    top = np.lexsort((np.arange(len(scores)), -scores))[:k]
    mix = mixture(kb, scores, rows, top, answer)
    if mix is None:
        return "", {}
    b_id = kb.type_ids[mix.second]
    flag = (f"{kb.ontology.label(answer)} ({answer}) + {kb.type_names[mix.second]} "
            f"({b_id})")
    text = (f"; mixture? markers of two unrelated types: {kb.type_names[mix.first]} "
            f"({', '.join(mix.genes_first[:5])}) and {kb.type_names[mix.second]} "
            f"({', '.join(mix.genes_second[:5])}, score "
            f"{scores[mix.second] / scores[mix.first]:.0%} of the best)")
    return text, {"mixture": flag}
